"""POST /api/messages: the Bot Framework endpoint, handed to the SDK adapter on the bot loop."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from bot.adapter import InboundAuthError
from connector.errors import ApiError
from connector.views.common import runtime

blp = Blueprint("bot", __name__)

TURN_TIMEOUT_SECONDS = 60


def _activity_body() -> dict[str, Any]:
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise ApiError("ValidationError", "The body must be a Bot Framework activity (a JSON object).")
    if not isinstance(body.get("type"), str) or not body["type"]:
        raise ApiError("ValidationError", "The activity has no type.", "type")
    for name in ("conversation", "from", "recipient", "channelData", "value"):
        if name in body and body[name] is not None and not isinstance(body[name], dict):
            if name != "value":
                raise ApiError("ValidationError", f"The activity's {name} must be an object.", name)
    for name in ("serviceUrl", "channelId", "text", "id", "locale", "localTimezone", "action", "name"):
        if name in body and body[name] is not None and not isinstance(body[name], str):
            raise ApiError("ValidationError", f"The activity's {name} must be a string.", name)
    for name in ("membersAdded", "membersRemoved", "entities", "attachments"):
        if name in body and body[name] is not None and not isinstance(body[name], list):
            raise ApiError("ValidationError", f"The activity's {name} must be a list.", name)
    return body


@blp.post("/api/messages")
def messages() -> Response:
    body = _activity_body()
    auth_header = request.headers.get("Authorization", "")
    try:
        result = runtime().call(runtime().endpoint.process(auth_header, body), timeout=TURN_TIMEOUT_SECONDS)
    except InboundAuthError as exc:
        raise ApiError("Unauthorized", "The request does not carry a valid Bot Framework token.") from exc
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # The SDK could not make sense of the activity's shape.
        raise ApiError("ValidationError", f"The activity could not be read ({type(exc).__name__}).") from exc
    if result.body is None:
        return Response(status=result.status)
    response = jsonify(result.body)
    response.status_code = result.status
    return response
