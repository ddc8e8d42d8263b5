"""POST /api/messages: the Bot Framework endpoint, handed to the SDK adapter on the bot loop."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from teams_proactive.bot import text
from teams_proactive.bot.adapter import InboundAuthError, InboundUnavailable
from teams_proactive.connector.errors import ApiError, error_response
from teams_proactive.connector.views.common import runtime

blp = Blueprint("bot", __name__)

TURN_TIMEOUT_SECONDS = 60
SIGNING_KEYS_RETRY_AFTER_SECONDS = 30
MAX_ACTIVITY_BODY_BYTES = 256 * 1024

# The SDK's deserialiser coerces wrong types (an id of [1] becomes the string "[1]"), so the shape is
# checked on the raw JSON first: a malformed activity is refused before anything can be recorded from it.
_STRINGS = (
    "id",
    "serviceUrl",
    "channelId",
    "text",
    "textFormat",
    "locale",
    "localTimezone",
    "action",
    "name",
    "replyToId",
    "timestamp",
    "localTimestamp",
    "summary",
    "inputHint",
    "speak",
    "importance",
    "deliveryMode",
    "attachmentLayout",
    "topicName",
    "callerId",
    "label",
    "valueType",
    "code",
)
_OBJECTS = ("conversation", "from", "recipient", "channelData", "relatesTo", "semanticAction", "suggestedActions")
_LISTS = ("membersAdded", "membersRemoved", "entities", "attachments", "reactionsAdded", "reactionsRemoved")
_ACCOUNT_STRINGS = ("id", "name", "aadObjectId", "role", "tenantId", "conversationType")


def _problem(message: str, target: str) -> ApiError:
    return ApiError("ValidationError", message, target)


def _check_account(value: dict[str, Any], where: str) -> None:
    for name in _ACCOUNT_STRINGS:
        if value.get(name) is not None and not isinstance(value[name], str):
            raise _problem(f"The activity's {where}.{name} must be a string.", f"{where}.{name}")
    if value.get("isGroup") is not None and not isinstance(value["isGroup"], bool):
        raise _problem(f"The activity's {where}.isGroup must be true or false.", f"{where}.isGroup")


def _activity_body() -> dict[str, Any]:
    # Smaller than the API's cap: Teams activities are tens of kilobytes, and this route is reached
    # before any token is checked.
    request.max_content_length = MAX_ACTIVITY_BODY_BYTES
    try:
        body = request.get_json(silent=True, force=True)
    except RecursionError:  # thousands of nested brackets: the decoder gives up before we could
        body = None
    if not isinstance(body, dict):
        raise _problem("The body must be a Bot Framework activity (a JSON object).", "body")
    # Before the turn, so capture, card answers and trigger events never hold text the store cannot read.
    bad = text.find(body)
    if bad is not None:
        raise _problem(f"The activity's {bad}", bad.target)
    if not isinstance(body.get("type"), str) or not body["type"]:
        raise _problem("The activity has no type.", "type")
    for name in _STRINGS:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _problem(f"The activity's {name} must be a string.", name)
    for name in _OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise _problem(f"The activity's {name} must be an object.", name)
    for name in _LISTS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise _problem(f"The activity's {name} must be a list of objects.", name)
        if name.startswith("members"):
            for member in value:
                _check_account(member, name)
    for name in ("from", "recipient", "conversation"):
        if isinstance(body.get(name), dict):
            _check_account(body[name], name)
    # Every activity the channel sends belongs to a conversation and says where to answer.
    conversation = body.get("conversation")
    if not isinstance(conversation, dict) or not conversation.get("id"):
        raise _problem("The activity has no conversation id.", "conversation")
    if not body.get("serviceUrl"):
        raise _problem("The activity has no serviceUrl.", "serviceUrl")
    tenant = (body.get("channelData") or {}).get("tenant")
    if tenant is not None and (not isinstance(tenant, dict) or not isinstance(tenant.get("id", ""), str)):
        raise _problem("The activity's channelData.tenant must be an object with a string id.", "channelData.tenant")
    return body


@blp.post("/api/messages")
def messages() -> Response:
    body = _activity_body()
    auth_header = request.headers.get("Authorization", "")
    try:
        result = runtime().call(runtime().endpoint.process(auth_header, body), timeout=TURN_TIMEOUT_SECONDS)
    except InboundUnavailable as exc:
        # Neither accepted nor refused: the channel retries a 503, and the activity is not lost.
        raise ApiError(
            "ServiceUnavailable",
            "The bot cannot check Bot Framework tokens right now: Microsoft's signing keys could not be fetched.",
            retry_after=SIGNING_KEYS_RETRY_AFTER_SECONDS,
        ) from exc
    except InboundAuthError:
        refused = error_response(ApiError("Unauthorized", "The request does not carry a valid Bot Framework token."))
        refused.headers["WWW-Authenticate"] = "Bearer"
        return refused
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # The SDK could not make sense of the activity's shape (its deserialiser raises a ValueError).
        raise ApiError("ValidationError", f"The activity could not be read ({type(exc).__name__}).") from exc
    if result.body is None:
        return Response(status=result.status)
    response = jsonify(result.body)
    response.status_code = result.status
    return response
