"""Importing conversation references another bot collected (botbuilder, Agents SDK): shapes, sources, the importer."""
