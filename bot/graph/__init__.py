"""Microsoft Graph access: app-only tokens, a paced client, proactive installation and audiences."""
