"""POST /mcp: the same capabilities as MCP tools (Streamable HTTP, official SDK), with the REST API's keys and limits."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, current_app, request
from mcp_types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from teams_proactive.bot import text
from teams_proactive.connector.auth import authenticated_caller
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.extension import runtime_of
from teams_proactive.connector.mcp.bridge import McpBridge, asgi_scope
from teams_proactive.connector.mcp.server import SCOPE_KEY, build_server
from werkzeug.exceptions import RequestEntityTooLarge

log = logging.getLogger(__name__)

EXTENSION = "teams_proactive.mcp"
PATH = "/mcp"
# A tool call may wait for delivery (send_message's wait, at most 90 s) plus the store's own time.
CALL_TIMEOUT_SECONDS = 150
NOT_JSON_RPC = 'Send one JSON-RPC 2.0 message per POST (an object with "jsonrpc": "2.0").'


def init_mcp(app: Flask) -> None:
    settings = app.extensions["teams_proactive.connector_settings"]
    runtime = runtime_of(app)
    bridge = McpBridge(build_server(app), runtime.loop, max_body_bytes=settings.max_body_bytes)
    runtime.on_close(bridge.close)
    app.extensions[EXTENSION] = bridge
    app.add_url_rule(PATH, "mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"])


def mcp_endpoint() -> Response:
    """Authenticate as the REST API does, then let the SDK answer the JSON-RPC message."""
    try:
        caller = authenticated_caller()
    except ApiError as exc:
        return refusal(exc)
    if request.method == "GET":
        # Stateless: the server never sends on its own, so there is no stream to open; the transport's
        # answer for that is 405 (a GET stream would only hold a worker thread until it timed out).
        response = refusal(
            ApiError("MethodNotAllowed", "This MCP endpoint is stateless: POST each message.", status=405)
        )
        response.headers["Allow"] = "POST"
        return response
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return refusal(ApiError("MessageTooLarge", "The request body is larger than this service accepts.", status=413))
    if body.lstrip().startswith(b"["):
        # JSON-RPC batches left MCP in the 2025-06-18 revision; say so plainly before anything is parsed or run.
        return refusal(ApiError("ValidationError", "JSON-RPC batches are not accepted: send one message per POST."))
    problem = _unfit_message(body)
    if problem is not None:
        return refusal(*problem)
    bridge: McpBridge = current_app.extensions[EXTENSION]
    established = {"caller": caller, "base_url": request.host_url}
    scope = asgi_scope(request.environ, request.method, list(request.headers.items()), established, SCOPE_KEY)
    answer = runtime_of(current_app).call(bridge.handle(scope, body), timeout=CALL_TIMEOUT_SECONDS)
    headers = [(name, value) for name, value in answer.headers if name.lower() != "content-length"]
    sdk_code = _sdk_parse_error(bytes(answer.body)) if answer.status == 400 else None
    if sdk_code is not None:
        # The SDK's parse and validation errors quote pydantic at length, the input included: a short one instead.
        return refusal(ApiError("ValidationError", NOT_JSON_RPC), sdk_code)
    if answer.status >= 400 and not any(n.lower() == "content-type" and "json" in v for n, v in headers):
        # The transport's few plain-text refusals (e.g. a wrong Content-Type) in the same JSON-RPC shape as the rest.
        said = bytes(answer.body).decode("utf-8", "replace").strip() or "The request was refused."
        return refusal(ApiError("ValidationError", f"{said}.", status=answer.status))
    return Response(bytes(answer.body), status=answer.status, headers=headers)


def _unfit_message(body: bytes) -> tuple[ApiError, int] | None:
    """Why the body cannot be handed to the SDK, in a short sentence that quotes none of it (None: it can).

    Checked here, before the SDK parses it: not JSON, not one JSON-RPC 2.0 message, or a string in it
    that is not valid Unicode text (``teams_proactive.bot.text``: the same check as the REST API's).
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return ApiError("ValidationError", "The body is not JSON. " + NOT_JSON_RPC), PARSE_ERROR
    shaped = isinstance(message, dict) and message.get("jsonrpc") == "2.0"
    if not shaped or not (isinstance(message.get("method"), str) or "result" in message or "error" in message):
        return ApiError("ValidationError", NOT_JSON_RPC), INVALID_PARAMS
    bad = text.find(message)
    if bad is None:
        return None
    # A tool's argument is named as the tool's input schema names it ("text", not "params.arguments.text").
    target = bad.target.removeprefix("params.arguments.").removeprefix("params.")
    return ApiError("ValidationError", str(text.UnreadableText(target, bad.reason)), target), INVALID_PARAMS


def _sdk_parse_error(body: bytes) -> int | None:
    """The JSON-RPC code of the SDK's own parse or validation error in ``body`` (None: not one)."""
    try:
        error = json.loads(body).get("error", {})
        message, code = error.get("message", ""), error.get("code")
    except (ValueError, AttributeError):
        return None
    if isinstance(message, str) and message.startswith(("Parse error", "Validation error")) and isinstance(code, int):
        return code
    return None


def refusal(error: ApiError, rpc_code: int = INVALID_REQUEST) -> Response:
    """A request refused before MCP sees it: the HTTP status the SDK's own auth uses (401, 403, 429, 413),
    with a JSON-RPC error body that MCP clients show (the SDK's client surfaces it as the call's error),
    and our error object in ``data``."""
    data: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.target:
        data["target"] = error.target
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=rpc_code, message=error.message, data=data))
    response = Response(body.model_dump_json(by_alias=True, exclude_unset=True), status=error.status,
                        mimetype="application/json")  # fmt: skip
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if error.status == 401:
        settings = current_app.extensions["teams_proactive.connector_settings"]
        if "apikey" in settings.auth_modes:
            response.headers.add("WWW-Authenticate", 'ApiKey header="X-API-Key"')
        if "entra" in settings.auth_modes:
            response.headers.add(
                "WWW-Authenticate", f'Bearer error="invalid_token", error_description="{error.message}"'
            )
    return response
