"""The one JSON error shape of the API (DESIGN.md section 6) and the HTTP status of each code."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

STATUS_BY_CODE = {
    "ValidationError": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "RecipientNotFound": 404,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "RecipientUnreachable": 409,
    "RecipientOptedOut": 409,
    "MessageNotDelivered": 409,
    "SubscriptionLimitReached": 409,
    "IdempotencyKeyReused": 409,
    "BroadcastRecalled": 409,
    "InstallNotEnabled": 409,  # installIfMissing while the operator has not switched GRAPH_INSTALL on
    "GraphNotConfigured": 409,  # groups/teams without Graph credentials on the service
    "MessageTooLarge": 413,
    "UnsupportedMediaType": 415,
    "Throttled": 429,
    # Teams itself failed a change we passed on: our request was fine, the dependency was not.
    "TeamsError": 424,
    "InternalError": 500,
    # A dependency we cannot work without (Microsoft's token signing keys) did not answer in time.
    "ServiceUnavailable": 503,
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        target: str | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = target
        self.status = status or STATUS_BY_CODE.get(code, 400)
        self.retry_after = retry_after


def error_response(error: ApiError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.target:
        body["target"] = error.target
    response = jsonify({"error": body})
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    return response


def validation_error(messages: dict[str, Any]) -> ApiError:
    """One readable sentence naming each field at fault (webargs groups them by location)."""
    problems: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                name = key if key != "_schema" else prefix
                walk(f"{prefix}.{name}" if prefix and key != "_schema" else name, inner)
        elif isinstance(value, list):
            text = " ".join(str(v) for v in value if not isinstance(v, dict | list))
            if text:
                problems.append((prefix, text))
            for v in value:
                if isinstance(v, dict | list):
                    walk(prefix, v)

    for location_messages in messages.values():
        walk("", location_messages)
    if not problems:
        return ApiError("ValidationError", "The request is not valid.")
    problems = [(field or "body", text.replace("Unknown field.", "is not a known field.")) for field, text in problems]
    message = "; ".join(f"{field}: {text}" for field, text in problems)
    return ApiError("ValidationError", message, problems[0][0])
