"""teams-proactive: proactive Microsoft Teams messages sent by your own bot, from flows and agents.

The one import name the wheel installs. ``teams_proactive.bot`` (the repository's ``bot/``) holds the
bot, the stores and the delivery engine; ``teams_proactive.connector`` (``connector/``) the Flask API,
the custom connector's definition and the command line.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("teams-proactive")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
