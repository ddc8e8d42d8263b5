"""The sample flows, installed as ``teams_proactive.samples``: package data read by connector/solution.py."""
