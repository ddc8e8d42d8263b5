"""Where a message leaves for Teams: the Bot Connector REST API over one pooled aiohttp session.

Proactive sends skip the SDK's per-turn client construction (about 12 ms of CPU per message in
botbuilder 4.17); inbound turns still use the SDK. The JSON call itself (timeout, error bodies,
Retry-After, the one retry after a 401) is ``teams_proactive.bot.jsonhttp``'s, shared with Graph.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from teams_proactive.bot.jsonhttp import JsonHttp, ServiceError, error_of, parse_retry_after
from yarl import URL

log = logging.getLogger(__name__)

# Where they were first defined: callers and tests import them from here too.
__all__ = ["BotConnectorClient", "ConnectorError", "error_of", "parse_retry_after"]


class ConnectorError(ServiceError):
    """The Bot Connector refused or failed a call; ``status`` 0 means no answer (timeout, network)."""


def _url(service_url: str, *parts: str) -> URL:
    base = service_url.rstrip("/")
    # Already percent-encoded here (each part quoted whole): yarl need not parse and quote it again.
    return URL(base + "/v3/conversations" + "".join("/" + quote(p, safe="") for p in parts), encoded=True)


class BotConnectorClient:
    """Send, update and delete activities, and create 1:1 conversations."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token: Callable[[], Awaitable[str | None]],
        *,
        timeout_seconds: float = 15.0,
        forget_token: Callable[[str], None] | None = None,
    ) -> None:
        self._http = JsonHttp(session, timeout_seconds=timeout_seconds, error=ConnectorError, service="Teams")
        self._token = token
        self._forget_token = forget_token

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        answer = await self._call("POST", _url(service_url, conversation_id, "activities"), activity)
        return str(answer.get("id") or "")

    async def update(self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> None:
        body = dict(activity, id=activity_id)
        await self._call("PUT", _url(service_url, conversation_id, "activities", activity_id), body)

    async def delete(self, service_url: str, conversation_id: str, activity_id: str) -> None:
        await self._call("DELETE", _url(service_url, conversation_id, "activities", activity_id), None)

    async def create_conversation(self, service_url: str, *, bot_id: str, user_id: str, tenant_id: str) -> str:
        """Create (or get back) the personal chat between the bot and a user."""
        body = {
            "isGroup": False,
            "bot": {"id": bot_id},
            "members": [{"id": user_id}],
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        answer = await self._call("POST", _url(service_url), body)
        conversation_id = answer.get("id")
        if not conversation_id:
            raise ConnectorError(502, "BadConnectorAnswer", "create conversation returned no id")
        return str(conversation_id)

    async def _call(self, method: str, url: URL, body: dict[str, Any] | None) -> dict[str, Any]:
        return await self._http.call_with_fresh_token(
            method, url, body, token=self._bearer, forget_token=self._forget_token
        )

    async def _bearer(self) -> str | None:
        try:
            return await self._token()
        except PermissionError as exc:  # Entra ID refused the bot's credentials: no retry helps
            raise ConnectorError(401, "BotTokenRefused", str(exc)) from exc
        except Exception as exc:  # the authority did not answer (network, TLS, timeout): retried later
            log.warning("the bot's token could not be fetched: %s", type(exc).__name__)
            raise ConnectorError(
                0, "TokenUnavailable", f"no token for the Bot Connector ({type(exc).__name__})"
            ) from exc
