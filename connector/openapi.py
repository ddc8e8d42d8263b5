"""The connector definition: flask-smorest/apispec generate Swagger 2.0 from the views and schemas,
and this module adds what Power Platform's importer and designer ask for (DESIGN.md section 10).

Nothing here is hand-written per field: names, types, validation limits, labels (``x-ms-summary``),
help texts and visibility come from ``teams_proactive.connector.schemas``; summaries and descriptions from the view
docstrings. This module only names the operations, marks the asynchronous and trigger shapes, and
inlines nested objects so the designer shows their fields.

``host``: the exported file carries ``PLACEHOLDER_HOST`` unless ``export-connector --host`` names
the real one; the served ``/openapi.json`` carries the deployment's own host (``PUBLIC_BASE_URL``,
else the request's). Both are made by ``definition_text`` from the same code, so with the same host
they are byte for byte the same.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from flask_smorest import Api
from teams_proactive.connector.agent_guidance import AGENT_GUIDANCE
from teams_proactive.connector.errors import ApiError, validation_error
from teams_proactive.connector.operations import OPERATIONS
from teams_proactive.connector.schemas import ErrorSchema
from werkzeug.exceptions import HTTPException

# Certification: at most 30 characters, no "API"/"Connector", no product names (Microsoft's, Teams').
TITLE = "Proactive Messages"
VERSION = "1.0"
# Certification: 30 to 500 characters, no Power Apps / Power Automate / Logic Apps.
DESCRIPTION = (
    "Send messages and Adaptive Cards to people in their Microsoft Teams chat with your organisation's own"
    " bot, wait for answers to cards, and start flows when people write to the bot. For flows and agents."
)
PUBLISHER_NAME = "teams-proactive"
# Microsoft's list of connector categories (x-ms-connector-metadata "Categories").
CATEGORIES = "Communication;Collaboration"
PRIVACY_PATH = "/privacy"
PLACEHOLDER_HOST = "teams-proactive.example.com"
API_KEY_HEADER = "X-API-Key"
BASE_PATH = "/"


PATH_PARAMETER_TEXT = {
    "message_id": ("Message ID", "The ID returned by Send a message."),
    "card_id": ("Card ID", "The ID returned by Send a card and wait for a response."),
    "broadcast_id": ("Broadcast ID", "The ID returned by Send one message to many people."),
    "recipient": ("Recipient", "The person's user principal name, email address or Microsoft Entra object ID."),
    "subscription_id": ("Subscription ID", "The ID returned when the trigger was set up."),
}

# The schemas posted to trigger callbacks: registered by name, referenced by x-ms-notification-content.
EVENT_SCHEMAS = (
    "BotEvent", "UserMessageEvent", "CardSubmittedEvent", "InstallationEvent", "DeliveryFailedEvent", "CardWaitResult",
    "MessageReadEvent",
)  # fmt: skip

# One documented error shape: every error answers {"error": {"code", "message", "target"}}. It is written in
# the descriptions, not as a schema on each status: certification allows a schema on the success response
# only (OperationHasManyResponsesWithSchema), and a flow reads the error from the failed action anyway.
ERROR_SHAPE = 'The body is {"error": {"code", "message", "target"}}.'
ERROR_STATUSES = {
    "400": "The request is not valid (error.code ValidationError).",
    "401": "Missing or wrong credentials (Unauthorized).",
    "403": "The key may not do this (Forbidden).",
    "404": "Unknown person or ID (RecipientNotFound, NotFound).",
    "409": "The person cannot be messaged: opted out, blocked or uninstalled.",
    "429": "Too many requests; retry after Retry-After (Throttled).",
}

SUCCESS_TEXT = {
    "200": "Done.",
    "201": "Created.",
    "202": "Accepted; the flow engine polls the Location until the work is final.",
    "204": "Done; nothing to return.",
}

LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Status URL",
    "description": "The URL the flow engine polls until the operation is done.",
    "x-ms-visibility": "internal",
}
RETRY_AFTER_HEADER = {
    "type": "integer",
    "x-ms-summary": "Retry After",
    "description": "Seconds to wait before polling the status URL again.",
    "x-ms-visibility": "internal",
}
CARD_WAIT_LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Wait URL",
    "description": "The URL the flow engine deletes to stop waiting when the run is cancelled.",
    "x-ms-visibility": "internal",
}
SUBSCRIPTION_LOCATION_HEADER = {
    "type": "string",
    "x-ms-summary": "Subscription URL",
    "description": "The URL the flow engine deletes to stop the trigger.",
    "x-ms-visibility": "internal",
}

# Key order of the written file: stable and readable (properties keep their schema order).
TOP_ORDER = (
    "swagger", "info", "host", "basePath", "schemes", "consumes", "produces", "paths", "definitions",
    "parameters", "responses", "securityDefinitions", "security", "tags", "x-ms-connector-metadata",
)  # fmt: skip
OPERATION_ORDER = (
    "tags", "summary", "description", "operationId", "x-ms-visibility", "x-ms-trigger", "x-ms-trigger-hint",
    "x-ms-pageable", "consumes", "produces", "parameters", "responses",
)  # fmt: skip
SCHEMA_ORDER = (
    "type", "format", "x-ms-summary", "description", "x-ms-visibility", "x-ms-notification-url", "enum",
    "default", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "x-nullable",
    "required", "items", "properties", "additionalProperties",
)  # fmt: skip
METHODS = ("get", "put", "post", "delete", "patch")


class ConnectorApi(Api):
    """flask-smorest's Api, documenting our one error shape as the "Error" definition."""

    ERROR_SCHEMA = ErrorSchema


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE=TITLE,
        API_VERSION=VERSION,
        OPENAPI_VERSION="2.0",
        OPENAPI_URL_PREFIX=None,  # served by our own /openapi.json route, post-processed
        API_SPEC_OPTIONS={
            "info": {"title": TITLE, "description": DESCRIPTION, "version": VERSION},
            "schemes": ["https"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}},
            "security": [{"apiKey": []}],
        },
    )
    api = ConnectorApi(app)
    from teams_proactive.connector import schemas
    from teams_proactive.connector.views import (
        bot_endpoint,
        broadcasts,
        cards,
        health,
        messages,
        people,
        privacy,
        recipients,
        references,
        subscriptions,
    )

    blueprints = (messages.blp, cards.blp, recipients.blp, people.blp, broadcasts.blp, subscriptions.blp, references.blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    for name in EVENT_SCHEMAS:
        api.spec.components.schema(name, schema=getattr(schemas, f"{name}Schema"))
    app.register_blueprint(health.blp)
    app.register_blueprint(privacy.blp)
    app.register_blueprint(bot_endpoint.blp)
    app.extensions["teams_proactive.api"] = api

    @app.get("/openapi.json")
    def openapi_json() -> Response:
        host, scheme = served_host()
        return Response(definition_text(app, host, scheme=scheme), mimetype="application/json")

    return api


def served_host() -> tuple[str, str]:
    """The host and scheme this deployment is reached at (PUBLIC_BASE_URL, else the request)."""
    base = current_app.extensions["teams_proactive.connector_settings"].public_base_url
    if base:
        parts = urlsplit(base)
        return parts.netloc, parts.scheme or "https"
    return request.host, "https"


def definition_app() -> Flask:
    """A bare app with the API registered: enough to generate the definition (no bot runtime)."""
    app = Flask("connector-definition")
    init_api(app)
    return app


def definition_text(app: Flask, host: str | None = None, *, scheme: str = "https", auth: str = "apikey") -> str:
    """The definition as written to apiDefinition.swagger.json (and served at /openapi.json)."""
    return json.dumps(connector_definition(app, host, scheme=scheme, auth=auth), indent=2, ensure_ascii=False) + "\n"


def connector_definition(
    app: Flask, host: str | None = None, *, scheme: str = "https", auth: str = "apikey"
) -> dict[str, Any]:
    """The Swagger 2.0 definition Power Platform imports, generated from the code.

    ``auth`` is ``apikey`` (the X-API-Key header) or ``entra`` (Microsoft Entra ID OAuth)."""
    api: Api = app.extensions["teams_proactive.api"]
    spec = copy.deepcopy(api.spec.to_dict())
    spec["host"] = host or PLACEHOLDER_HOST
    spec["basePath"] = BASE_PATH
    spec["schemes"] = [scheme]
    spec.pop("responses", None)  # flask-smorest's shared error responses: replaced per operation
    spec.pop("parameters", None)
    definitions = spec.setdefault("definitions", {})
    _inline_nested(definitions)
    for path, item in spec.get("paths", {}).items():
        # Path-level parameters go into each operation: the connector wizard reads them only there.
        shared = item.pop("parameters", [])
        for method in METHODS:
            if method in item:
                operation = item[method]
                operation["parameters"] = copy.deepcopy(shared) + operation.get("parameters", [])
                item[method] = _operation(path, method, operation)
        if path in _trigger_paths():
            schema = _trigger_paths()[path]
            item["x-ms-notification-content"] = {
                "description": "The event sent to the flow.",
                "schema": {"$ref": f"#/definitions/{schema}"},
            }
        if path == _card_wait_path():
            # The webhook action's outputs: what its callback posts (CyberProof's shape, see views.cards).
            item["x-ms-notification-content"] = {
                "description": "The answer to the card, posted when the person answers or the wait ends.",
                "schema": {"$ref": "#/definitions/CardWaitResult"},
            }
    if auth == "entra":
        spec["securityDefinitions"] = {"oauth2_auth": ENTRA_SECURITY}
        spec["security"] = [{"oauth2_auth": []}]
    website = f"{scheme}://{spec['host']}/"
    # Certification asks for a contact and for Website, Privacy policy and Categories metadata.
    spec["info"]["contact"] = {
        "name": PUBLISHER_NAME,
        "url": website,
        "email": f"support@{spec['host'].split(':')[0]}",
    }
    spec["x-ms-connector-metadata"] = [
        {"propertyName": "Website", "propertyValue": website},
        {"propertyName": "Privacy policy", "propertyValue": f"{scheme}://{spec['host']}{PRIVACY_PATH}"},
        {"propertyName": "Categories", "propertyValue": CATEGORIES},
    ]
    _drop_unreferenced(spec)
    _open_outputs(spec)
    for schema in spec["definitions"].values():
        _order_schema(schema)
    return _ordered(spec, TOP_ORDER)


# Entra ID (Azure AD) sign-in as Power Platform writes it for the "Azure Active Directory" identity provider.
ENTRA_SECURITY = {
    "type": "oauth2",
    "flow": "accessCode",
    "authorizationUrl": "https://login.microsoftonline.com/common/oauth2/authorize",
    "tokenUrl": "https://login.windows.net/common/oauth2/authorize",
    "scopes": {},
}


def _card_wait_path() -> str:
    from teams_proactive.connector.views.cards import WAIT_PATH

    return WAIT_PATH


def _trigger_paths() -> dict[str, str]:
    from teams_proactive.connector.views.subscriptions import TRIGGER_PATHS

    return TRIGGER_PATHS


def _operation(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    known = OPERATIONS.get((path, method))
    if known is None:
        raise LookupError(f"{method.upper()} {path} has no operationId in connector.openapi.OPERATIONS")
    operation["operationId"] = known.operation_id
    operation["x-ms-visibility"] = known.visibility
    if known.trigger_hint and operation.get("x-ms-trigger"):
        operation["x-ms-trigger-hint"] = known.trigger_hint
    # Docstrings wrap at 100 columns; the designer shows one paragraph.
    operation["description"] = " ".join((operation.get("description") or operation.get("summary", "")).split())
    if known.operation_id in AGENT_GUIDANCE:
        operation["description"] += " " + AGENT_GUIDANCE[known.operation_id]
    if known.operation_id in ("ListRecipients", "ListBroadcastRecipients"):
        operation["x-ms-pageable"] = {"nextLinkName": "nextLink"}
    _fix_parameters(operation)
    _fix_responses(operation)
    return _ordered(operation, OPERATION_ORDER)


def _fix_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path":
            summary, description = PATH_PARAMETER_TEXT[parameter["name"]]
            parameter.update(
                {"required": True, "x-ms-url-encoding": "single", "x-ms-summary": summary, "description": description}
            )
            parameter.setdefault("x-ms-visibility", "important")
        elif parameter.get("in") == "body":
            parameter["x-ms-summary"] = "Request"
            parameter["description"] = "The request's fields."


def _fix_responses(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.get("responses", {})
    responses.pop("422", None)  # webargs' own; our validation errors are 400
    responses.pop("default", None)
    if "202" in responses:
        # The asynchronous pattern: the 202 carries the status link; Power Automate polls it and shows
        # the final 200's fields as the action's outputs, so the schema belongs on the 200 alone.
        accepted = responses["202"]
        schema = accepted.pop("schema", None)
        if "200" not in responses and schema is not None:
            responses["200"] = {"description": "Done: the final answer after polling.", "schema": schema}
        accepted["headers"] = {"Location": dict(LOCATION_HEADER), "Retry-After": dict(RETRY_AFTER_HEADER)}
    if operation.get("x-ms-trigger") and "201" in responses:
        responses["201"]["description"] = "The trigger is set up; Location is where to delete it."
        responses["201"]["headers"] = {"Location": dict(SUBSCRIPTION_LOCATION_HEADER)}
    elif operation.get("operationId") == "SendCardAndWait":
        responses["201"]["headers"] = {"Location": dict(CARD_WAIT_LOCATION_HEADER)}
    for status, text in ERROR_STATUSES.items():
        responses[status] = {"description": f"{text} {ERROR_SHAPE}"}
    responses["default"] = {"description": f"An error. {ERROR_SHAPE}"}
    for status, response in responses.items():
        if response.get("description") in (None, "", "OK", "Created", "Accepted", "No Content"):
            response["description"] = SUCCESS_TEXT.get(status, response.get("description") or "Done.")
        responses[status] = _ordered(response, ("description", "schema", "headers"))
    ordered = {k: responses[k] for k in sorted(responses, key=lambda s: (s == "default", s))}
    operation["responses"] = ordered


def _inline_nested(definitions: dict[str, Any]) -> None:
    """Replace nested-object references inside properties by the object itself.

    apispec writes a nested schema as ``allOf: [$ref]`` (or a bare ``$ref``), beside which the
    property's own label is lost to tools that resolve references; the designer shows inlined
    objects as labelled fields ("Error Code", "Counts Delivered")."""

    def expand(node: dict[str, Any]) -> dict[str, Any]:
        target = None
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1 and "$ref" in node["allOf"][0]:
            target = node["allOf"][0]["$ref"]
        elif "$ref" in node:
            target = node["$ref"]
        if target is not None:
            inner = expand(copy.deepcopy(definitions[target.rsplit("/", 1)[-1]]))
            own = {k: v for k, v in node.items() if k not in ("allOf", "$ref")}
            node = {**inner, **own}
        if isinstance(node.get("items"), dict):
            node["items"] = expand(node["items"])
        if isinstance(node.get("properties"), dict):
            node["properties"] = {name: expand(value) for name, value in node["properties"].items()}
        return node

    for name in list(definitions):
        definitions[name] = expand(definitions[name])


def _drop_unreferenced(spec: dict[str, Any]) -> None:
    """Definitions only nested elsewhere (now inlined) are not written."""
    definitions = spec.get("definitions", {})
    used: set[str] = set()

    def refs(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in used:
                    used.add(name)
                    refs(definitions.get(name))
            for key, value in node.items():
                if key != "definitions":
                    refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    refs(spec)
    spec["definitions"] = {name: schema for name, schema in definitions.items() if name in used}


def _open_outputs(spec: dict[str, Any]) -> None:
    """Answers and events may gain fields: only request bodies say ``additionalProperties: false``
    (the service refuses unknown fields in a request, a flow must not refuse new ones in an answer)."""
    inputs = {
        p["schema"]["$ref"].rsplit("/", 1)[-1]
        for item in spec["paths"].values()
        for method in METHODS
        for p in item.get(method, {}).get("parameters", [])
        if p.get("in") == "body" and "$ref" in p.get("schema", {})
    }

    def open_up(node: dict[str, Any]) -> None:
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in (node.get("properties") or {}).values():
            open_up(value)
        if isinstance(node.get("items"), dict):
            open_up(node["items"])

    for name, schema in spec["definitions"].items():
        if name not in inputs:
            open_up(schema)


def _order_schema(schema: dict[str, Any]) -> None:
    ordered = _ordered(schema, SCHEMA_ORDER)
    schema.clear()
    schema.update(ordered)
    if isinstance(schema.get("items"), dict):
        _order_schema(schema["items"])
    for value in (schema.get("properties") or {}).values():
        _order_schema(value)


def _ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    first = [k for k in order if k in mapping]
    rest = sorted(k for k in mapping if k not in order)
    return {k: mapping[k] for k in (*first, *rest)}


def http_exception_to_api_error(exc: HTTPException) -> ApiError:
    """Turn framework errors (webargs validation, 404, 405, body too large) into our JSON error."""
    code = exc.code or 500
    if code == 422:
        messages = getattr(exc, "data", {}).get("messages", {}) if hasattr(exc, "data") else {}
        return validation_error(messages)
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
