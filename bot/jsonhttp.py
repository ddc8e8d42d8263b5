"""One JSON call over a pooled aiohttp session, shared by the Bot Connector and Graph clients.

It encodes the body (``jsoncodec``), applies the timeout, decodes the answer, and turns a refusal into
the caller's error type with the code and message read from any of the error bodies Microsoft documents
(see ``error_of``) and the Retry-After header. Pacing and retries stay with each client: they differ
(the dispatcher paces Teams per chat and per tenant and retries through the outbox; Graph paces per
lane and retries a few times in place).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from teams_proactive.bot import jsoncodec
from yarl import URL


class ServiceError(Exception):
    """A call refused or failed; ``status`` 0 means no answer (timeout, network). Each client subclasses it."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None, *, inner_code: str = ""
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.inner_code = inner_code  # Graph's innerError code, when given


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


def json_object(raw: bytes) -> dict[str, Any]:
    """The answer as a JSON object; ``{}`` for an empty body, a body that is not JSON, or not an object."""
    if not raw:
        return {}
    try:
        value = jsoncodec.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_of(raw: bytes, status: int) -> tuple[str, str]:
    """The error's code and message, from any of the shapes Microsoft documents (see ``_error_body``)."""
    code, message, _ = _error_body(raw, status)
    return code, message


def _error_body(raw: bytes, status: int) -> tuple[str, str, str]:
    r"""Code, message and inner code of an error answer, from any of the shapes Microsoft documents.

    - ``{"error": {"code", "message"}}``: the Bot Framework ErrorResponse ("Bot Connector API
      reference"; the codes of Teams' "Status codes from bot conversational APIs" table), and Graph's
      ("Microsoft Graph error responses"), whose ``innerError`` (or ``innererror``) may carry a code;
    - ``{"errorCode": 209, "message": "{\r\n  \"subCode\": \"MessageWritesBlocked\", ...}"}``:
      the code is inside a JSON document carried as a string ("Send proactive messages");
    - plain text or nothing at all (503/504 from a gateway): ``Http<status>`` and the text.
    """
    body = json_object(raw)
    if not body:
        text = raw.decode("utf-8", "replace").strip() if raw else ""
        # Not JSON: a gateway's text (or HTML); enough of it to say what happened, never a whole page.
        return f"Http{status}", " ".join(text.split())[:200], ""
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    code = error.get("code") or error.get("subCode")
    message = error.get("message")
    if isinstance(message, str) and message.lstrip().startswith("{"):
        inner = json_object(message.encode("utf-8"))
        code = inner.get("subCode") or inner.get("code") or code
        message = inner.get("details") or inner.get("message") or message
    if not code and error.get("errorCode") is not None:
        code = f"ErrorCode{error['errorCode']}"
    inner_error = error.get("innerError") or error.get("innererror") or {}
    inner_code = str(inner_error.get("code") or "") if isinstance(inner_error, dict) else ""
    return str(code or f"Http{status}"), str(message or ""), inner_code


class JsonHttp:
    """Sends JSON and reads JSON back; a refusal or no answer raises ``error`` (a ServiceError type).

    ``service`` names the other end in the messages of a timeout or network failure ("Teams").
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_seconds: float,
        error: type[ServiceError],
        service: str,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._error = error
        self._timed_out = f"{service} did not answer in time"
        self._service = service

    async def call(
        self, method: str, url: str | URL, body: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """One call; the answer's JSON object (``{}`` when it has none)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = jsoncodec.dumps_bytes(body)
        try:
            async with self._session.request(method, url, data=data, headers=headers, timeout=self._timeout) as resp:
                raw = await resp.read()
                if resp.status < 300:
                    return json_object(raw)
                code, message, inner_code = _error_body(raw, resp.status)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                raise self._error(resp.status, code, message, retry_after, inner_code=inner_code)
        except TimeoutError as exc:
            raise self._error(0, "Timeout", self._timed_out) from exc
        except aiohttp.ClientError as exc:
            raise self._error(0, "NetworkError", f"could not reach {self._service} ({type(exc).__name__})") from exc

    async def call_with_fresh_token(
        self,
        method: str,
        url: str | URL,
        body: dict[str, Any] | None,
        *,
        token: Callable[[], Awaitable[str | None]],
        forget_token: Callable[[str], None] | None,
    ) -> dict[str, Any]:
        """``call`` with a bearer token; a 401 forgets the token and asks once more with a fresh one.

        A token the other end no longer accepts (revoked, rotated secret, clock skew) is answered 401
        before it expires; a second 401 is the answer.
        """
        first = await token()
        try:
            return await self.call(method, url, body, token=first)
        except ServiceError as refused:
            if refused.status != 401 or forget_token is None or first is None:
                raise
            forget_token(first)
        return await self.call(method, url, body, token=await token())
