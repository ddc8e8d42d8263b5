"""The connector definition: flask-smorest/apispec generate Swagger 2.0 from the views and schemas,
and this module adds what Power Platform's importer asks for (DESIGN.md section 10)."""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask, jsonify
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from connector.errors import ApiError

TITLE = "Teams Proactive Messages"
VERSION = "1.0"
DESCRIPTION = (
    "Send messages and Adaptive Cards to people's Microsoft Teams chat with your organisation's own bot,"
    " from Power Automate flows and Copilot Studio agents."
)

# operationId and designer visibility of every operation (DESIGN.md section 6 names).
OPERATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("/api/v1/messages", "post"): ("SendMessage", "important"),
    ("/api/v1/messages/{message_id}", "get"): ("GetMessage", "advanced"),
    ("/api/v1/messages/{message_id}", "put"): ("UpdateMessage", "advanced"),
    ("/api/v1/messages/{message_id}", "delete"): ("DeleteMessage", "advanced"),
    ("/api/v1/recipients/{recipient}", "get"): ("GetRecipient", "important"),
    ("/api/v1/recipients", "get"): ("ListRecipients", "advanced"),
    ("/api/v1/recipients/{recipient}", "delete"): ("ForgetRecipient", "advanced"),
    ("/api/v1/broadcasts", "post"): ("StartBroadcast", "important"),
    ("/api/v1/broadcasts/{broadcast_id}", "get"): ("GetBroadcast", "advanced"),
}

PATH_PARAMETER_TEXT = {
    "message_id": ("Message ID", "The ID returned by Send a message."),
    "broadcast_id": ("Broadcast ID", "The ID returned by Send one message to many people."),
    "recipient": ("Recipient", "The person's user principal name, email address or Microsoft Entra object ID."),
}


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE=TITLE,
        API_VERSION=VERSION,
        OPENAPI_VERSION="2.0",
        OPENAPI_URL_PREFIX=None,  # served by our own /openapi.json route, post-processed
        API_SPEC_OPTIONS={
            "info": {"description": DESCRIPTION, "title": TITLE, "version": VERSION},
            "schemes": ["https"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "security": [{"apiKey": []}],
        },
    )
    api = Api(app)
    from connector.views import bot_endpoint, broadcasts, health, messages, recipients

    for blueprint in (messages.blp, recipients.blp, broadcasts.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(health.blp)
    app.register_blueprint(bot_endpoint.blp)
    app.extensions["teams_proactive.api"] = api

    @app.get("/openapi.json")
    def openapi_json() -> Any:
        return jsonify(connector_definition(app))

    return api


def connector_definition(app: Flask, host: str | None = None) -> dict[str, Any]:
    """The Swagger 2.0 definition Power Platform imports, generated from the code."""
    api: Api = app.extensions["teams_proactive.api"]
    spec = copy.deepcopy(api.spec.to_dict())
    spec["host"] = host or "teams-proactive.example.invalid"
    spec["basePath"] = "/"
    spec.pop("responses", None)  # flask-smorest's shared error responses: replaced below
    definitions = spec.setdefault("definitions", {})
    definitions.setdefault("Error", _error_schema())
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
            operation_id, visibility = OPERATIONS.get((path, method), (operation.get("operationId"), "advanced"))
            operation["operationId"] = operation_id
            operation["x-ms-visibility"] = visibility
            operation.setdefault("description", operation.get("summary", ""))
            _fix_parameters(operation)
            _fix_responses(operation)
    return spec


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "x-ms-summary": "Error",
                "description": "What went wrong.",
                "properties": {
                    "code": {"type": "string", "x-ms-summary": "Code", "description": "Machine-readable error code."},
                    "message": {"type": "string", "x-ms-summary": "Message", "description": "What went wrong."},
                    "target": {"type": "string", "x-ms-summary": "Target", "description": "The field concerned."},
                },
            }
        },
    }


def _fix_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path":
            summary, description = PATH_PARAMETER_TEXT.get(parameter["name"], (parameter["name"], parameter["name"]))
            parameter.update(
                {"required": True, "x-ms-url-encoding": "single", "x-ms-summary": summary, "description": description}
            )
            parameter.setdefault("x-ms-visibility", "important")
        elif parameter.get("in") == "body":
            parameter["x-ms-summary"] = "Request"
            parameter["description"] = "The request body."


def _fix_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    responses["default"] = {"description": "An error: see error.code and error.message."}
    for status in ("400", "401", "404", "409"):
        responses.setdefault(status, {"description": _STATUS_TEXT[status], "schema": {"$ref": "#/definitions/Error"}})


_STATUS_TEXT = {
    "400": "The request is not valid.",
    "401": "Missing or wrong API key.",
    "404": "Not found (unknown person or id).",
    "409": "The person cannot be messaged (opted out, blocked or uninstalled).",
}


def http_exception_to_api_error(exc: HTTPException) -> ApiError:
    """Turn framework errors (webargs validation, 404, 405, body too large) into our JSON error."""
    code = exc.code or 500
    if code == 422:
        messages = getattr(exc, "data", {}).get("messages", {}) if hasattr(exc, "data") else {}
        return _validation_error(messages)
    if code == 404:
        return ApiError("NotFound", "There is nothing at this address.")
    if code == 405:
        return ApiError("MethodNotAllowed", "This address does not accept that method.", status=405)
    if code == 413:
        return ApiError("MessageTooLarge", "The request body is larger than this service accepts.")
    if code == 415:
        return ApiError("UnsupportedMediaType", "Send the body as application/json.", status=415)
    if code == 400:
        return ApiError("ValidationError", "The body must be valid JSON.")
    return ApiError("InternalError" if code >= 500 else "ValidationError", exc.description or "Error.", status=code)


def _validation_error(messages: dict[str, Any]) -> ApiError:
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
