"""Where a message leaves for Teams: the Bot Connector REST API over one pooled aiohttp session.

Proactive sends skip the SDK's per-turn client construction (about 12 ms of CPU per message in
botbuilder 4.17); inbound turns still use the SDK.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from teams_proactive.bot import jsoncodec
from yarl import URL

log = logging.getLogger(__name__)


class ConnectorError(Exception):
    """The Bot Connector refused or failed a call; ``status`` 0 means no answer (timeout, network)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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
        self._session = session
        self._token = token
        self._forget_token = forget_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

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
        try:
            return await self._call_once(method, url, body)
        except _Unauthorized as refused:
            # A token the Bot Connector no longer accepts (revoked, rotated secret, clock skew): forget it
            # and ask once more with a fresh one; a second 401 is the answer.
            if self._forget_token is None or refused.token is None:
                raise refused.error from None
            self._forget_token(refused.token)
        try:
            return await self._call_once(method, url, body)
        except _Unauthorized as refused:
            raise refused.error from None

    async def _call_once(self, method: str, url: URL, body: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        try:
            token = await self._token()
        except PermissionError as exc:  # Entra ID refused the bot's credentials: no retry helps
            raise ConnectorError(401, "BotTokenRefused", str(exc)) from exc
        except Exception as exc:  # the authority did not answer (network, TLS, timeout): retried later
            log.warning("the bot's token could not be fetched: %s", type(exc).__name__)
            raise ConnectorError(
                0, "TokenUnavailable", f"no token for the Bot Connector ({type(exc).__name__})"
            ) from exc
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = jsoncodec.dumps_bytes(body) if body is not None else None
        try:
            async with self._session.request(method, url, data=data, headers=headers, timeout=self._timeout) as resp:
                raw = await resp.read()
                if resp.status < 300:
                    return _json_object(raw)
                code, message = _error_of(raw, resp.status)
                error = ConnectorError(resp.status, code, message, parse_retry_after(resp.headers.get("Retry-After")))
                if resp.status == 401:
                    raise _Unauthorized(error, token)
                raise error
        except TimeoutError as exc:
            raise ConnectorError(0, "Timeout", "Teams did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise ConnectorError(0, "NetworkError", f"could not reach Teams ({type(exc).__name__})") from exc


class _Unauthorized(Exception):
    """A 401 and the token it was answered to (internal: ``_call`` retries once with a fresh token)."""

    def __init__(self, error: ConnectorError, token: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.token = token


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = jsoncodec.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_of(raw: bytes, status: int) -> tuple[str, str]:
    r"""The Bot Connector's error code and message, from any of the shapes Microsoft documents.

    - ``{"error": {"code", "message"}}``: the Bot Framework ErrorResponse ("Bot Connector API
      reference"; the codes of Teams' "Status codes from bot conversational APIs" table);
    - ``{"errorCode": 209, "message": "{\r\n  \"subCode\": \"MessageWritesBlocked\", ...}"}``:
      the code is inside a JSON document carried as a string ("Send proactive messages");
    - plain text or nothing at all (503/504 from a gateway): ``Http<status>`` and the text.
    """
    body = _json_object(raw)
    if not body:
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        # Not JSON: a gateway's text (or HTML); enough of it to say what happened, never a whole page.
        return f"Http{status}", " ".join(text.split())[:200]
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = error.get("code") or error.get("subCode")
    message = error.get("message")
    if isinstance(message, str) and message.lstrip().startswith("{"):
        inner = _json_object(message.encode("utf-8"))
        code = inner.get("subCode") or inner.get("code") or code
        message = inner.get("details") or inner.get("message") or message
    if not code and error.get("errorCode") is not None:
        code = f"ErrorCode{error['errorCode']}"
    return str(code or f"Http{status}"), str(message or "")
