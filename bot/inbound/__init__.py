"""Inbound: what the bot does with every activity it receives, except talking (one place for our bot and the middleware)."""
