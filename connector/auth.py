"""Who is calling the connector API: an API key (X-API-Key) or an Entra ID bearer token."""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections import deque

from flask import current_app, g, request
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.connector import keys
from teams_proactive.connector.client_limits import client_address, failure_limiter
from teams_proactive.connector.entra import verify_bearer
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.extension import runtime_of
from teams_proactive.connector.operations import OPERATIONS
from teams_proactive.connector.settings import ConnectorSettings

API_KEY_HEADER = "X-API-Key"


def current_caller(scope: str) -> Caller:
    """Authenticate the request once (cached on ``g``) and require ``scope``."""
    caller = authenticated_caller()
    require_scope(caller, scope)
    return caller


def authenticated_caller() -> Caller:
    """Authenticate the request once (cached on ``g``) and count it against the key's rate limit."""
    caller: Caller | None = g.get("caller")
    if caller is None:
        caller = _authenticate_limited()
        _rate_limit(caller)
        g.caller = caller
    return caller


def require_scope(caller: Caller, scope: str, operation: str | None = None) -> None:
    """Refuse a caller without ``scope`` (admin has every scope), saying in a maker's words what was refused
    (``operation``, or the REST operation being called) and how to get a key that may do it."""
    if scope in caller.scopes or "admin" in caller.scopes:
        return
    what = operation or _current_operation()
    raise ApiError(
        "Forbidden",
        f"This connection may not {what}: that needs the '{scope}' permission, and its API key or sign-in"
        f" has only {', '.join(sorted(caller.scopes)) or 'none'}. Ask the service's admin for a key with"
        f" '{scope}' (teams-proactive keys create --scopes {scope}, or --for-samples for the sample flows)"
        " and put it in the connection.",
    )


def _current_operation() -> str:
    """The operation of this request as the flow designer shows it: "'Summary' (OperationId)"."""
    rule = request.url_rule
    if rule is None:
        return "do this"
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    known = OPERATIONS.get((path, request.method.lower()))
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), None)
    summary = ((handler.__doc__ or "").strip().splitlines() or [""])[0] if handler else ""
    if known and summary:
        return f"'{summary}' ({known.operation_id})"
    return f"'{known.operation_id}'" if known else "do this"


def _authenticate_limited() -> Caller:
    """``_authenticate``, with wrong credentials counted per client address: past the limit, every
    attempt from that address is refused (429) before it is checked, so guessing cannot go on."""
    presented = bool(request.headers.get(API_KEY_HEADER) or request.headers.get("Authorization"))
    if not presented:
        return _authenticate()  # 401: nothing to guess with, nothing to count
    client = client_address()
    limiter = failure_limiter()
    wait = limiter.retry_after(client)
    if wait is not None:
        raise ApiError(
            "Throttled",
            "Too many wrong API keys or tokens from your address; wait a minute, then check the key.",
            retry_after=wait,
        )
    try:
        return _authenticate()
    except ApiError as exc:
        if exc.code == "Unauthorized":
            limiter.record(client)
        raise


def _authenticate() -> Caller:
    settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
    presented = request.headers.get(API_KEY_HEADER, "")
    bearer = request.headers.get("Authorization", "")
    if presented and "apikey" in settings.auth_modes:
        if settings.bootstrap_api_key and hmac.compare_digest(presented.encode(), settings.bootstrap_api_key.encode()):
            return Caller(name="bootstrap", key_id=keys.BOOTSTRAP_ID, tenant_id=None, scopes=frozenset(keys.SCOPES))
        runtime = runtime_of(current_app)
        record = runtime.call(keys.verify(runtime.store, presented))
        if record is None:
            raise ApiError("Unauthorized", "The API key is not valid (unknown, revoked or mistyped).")
        return Caller(
            name=record.name,
            key_id=record.id,
            tenant_id=record.tenant_id,
            scopes=frozenset(record.scopes),
            legacy_owner=None if keys.reserved(record.name) else record.name,
        )
    if bearer.lower().startswith("bearer ") and "entra" in settings.auth_modes:
        return verify_bearer(bearer[7:].strip(), settings)
    expected = " or ".join(
        m for m, on in (("an X-API-Key header", "apikey" in settings.auth_modes),
                        ("an Entra ID bearer token", "entra" in settings.auth_modes)) if on
    )  # fmt: skip
    raise ApiError("Unauthorized", f"Sign in with {expected}.")


class _Window:
    """Requests per key id in the last minute (per process; each instance enforces its own share)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: dict[str, deque[float]] = {}


WINDOW_EXTENSION = "teams_proactive.rate_window"


def _window() -> _Window:
    # Per app, not per module: two apps in one process (tests, or an app factory called twice)
    # must not share one budget.
    window: _Window | None = current_app.extensions.get(WINDOW_EXTENSION)
    if window is None:
        window = current_app.extensions.setdefault(WINDOW_EXTENSION, _Window())
    return window


def _rate_limit(caller: Caller) -> None:
    settings: ConnectorSettings = current_app.extensions["teams_proactive.connector_settings"]
    limit = settings.requests_per_minute_per_key
    if limit <= 0:
        return
    at = time.monotonic()
    window = _window()
    with window.lock:
        hits = window.hits.setdefault(caller.key_id, deque())
        while hits and hits[0] <= at - 60:
            hits.popleft()
        if len(hits) >= limit:
            retry_after = hits[0] + 60 - at
            raise ApiError(
                "Throttled",
                f"More than {limit} requests in a minute with this key; wait and retry."
                " For many recipients, use one StartBroadcast instead of many sends.",
                retry_after=retry_after,
            )
        hits.append(at)
