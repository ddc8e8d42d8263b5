"""Where the bot may send its Bot Connector token: the service URLs of Microsoft's Bot Connector.

Every activity Teams sends carries a service URL inside a token the channel signed, so a captured
reference's URL is Microsoft's. An imported reference's URL is only what a file says: with the bot's
identity set, the dispatcher would post the bot's bearer token there, so an import accepts only https
URLs on the Bot Connector's hosts (all clouds: public, GCC, GCC High, DoD). In local mode outbound
calls carry no token, so any http(s) URL is accepted (Agents Playground, tests).
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Host suffixes of the Bot Connector service in Microsoft's clouds: smba.trafficmanager.net (public,
# regional paths such as /amer/), smba.infra.gcc.teams.microsoft.com (GCC),
# smba.infra.gov.teams.microsoft.us and smba.infra.dod.teams.microsoft.us (GCC High, DoD), and the
# Bot Framework's own service hosts.
BOT_CONNECTOR_HOST_SUFFIXES = (
    ".trafficmanager.net",
    ".teams.microsoft.com",
    ".teams.microsoft.us",
    ".botframework.com",
    ".botframework.azure.us",
)


def untrusted_service_url(url: str, *, local_mode: bool) -> str | None:
    """Why the bot must not send its token to ``url``; None when it may."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        return "serviceUrl must be an absolute https URL."
    if local_mode:
        return None
    if parts.scheme != "https":
        return "serviceUrl must be https: the bot's token would travel in the clear."
    if not any(host.endswith(suffix) for suffix in BOT_CONNECTOR_HOST_SUFFIXES):
        return f"serviceUrl host {host!r} is not a Microsoft Bot Connector host; the bot's token would be sent there."
    return None
