"""Local mode only on purpose: without MicrosoftAppId the service starts on loopback, or with LOCAL_MODE=true.

Local mode (no ``MicrosoftAppId``) means ``/api/messages`` checks no token: anyone who reaches the port
can post activities as anyone. That is what the Agents Playground and a laptop quick start need, on
127.0.0.1. Anywhere else (``serve --host 0.0.0.0``, gunicorn, any WSGI server, whose bind we cannot
see) one missing App Service setting would publish an unauthenticated bot endpoint, so the service
refuses to start unless ``LOCAL_MODE=true`` says it is meant.
"""

from __future__ import annotations

import ipaddress

from teams_proactive.bot.settings import BotSettings


class LocalModeRefused(RuntimeError):
    """The service would run without inbound authentication where it was not asked to."""


def is_loopback(host: str) -> bool:
    """True for a bind address that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0 / :: : assume reachable from elsewhere


def refusal(settings: BotSettings, *, where: str) -> str | None:
    """The message explaining why the service must not start ``where``, or None when it may."""
    if not settings.local_mode or settings.local_mode_allowed:
        return None
    return (
        f"MicrosoftAppId is not set, so /api/messages would accept unauthenticated activities, and {where}"
        " can be reached from other machines. Set MicrosoftAppId (with MicrosoftAppPassword or a managed"
        " identity) from your Azure Bot resource, or, if you really want local mode there (a test"
        " environment behind your own access control), set LOCAL_MODE=true. On 127.0.0.1 local mode needs"
        " nothing: teams-proactive serve --host 127.0.0.1."
    )


def check_bind(settings: BotSettings, host: str) -> None:
    """``serve``'s check, before it binds: loopback is always fine, anything else needs an identity."""
    if is_loopback(host):
        return
    message = refusal(settings, where=f"--host {host}")
    if message:
        raise LocalModeRefused(message)


def check_wsgi(settings: BotSettings) -> None:
    """A WSGI server's check (gunicorn, App Service): its bind is not ours to see, so assume it is public."""
    message = refusal(settings, where="a WSGI server (gunicorn, Azure App Service)")
    if message:
        raise LocalModeRefused(message)
