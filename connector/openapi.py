"""The connector definition: flask-smorest/apispec generate Swagger 2.0 from the views and schemas,
and this module adds what Power Platform's importer and designer ask for (DESIGN.md section 10).

Nothing here is hand-written per field: names, types, validation limits, labels (``x-ms-summary``),
help texts and visibility come from each resource's schemas (``teams_proactive.connector.schemas``);
summaries and descriptions from the view docstrings. This module registers the API and runs, in
order, the passes of ``teams_proactive.connector.definition``: nested objects inlined so the designer
shows their fields (``definitions``), each operation named and labelled from the operation table
(``operations``) with the asynchronous, webhook and error responses (``responses``), the trigger and
card-wait callback content (``paths``), sign-in and publisher details (``publisher``), and a stable key
order (``shape``).

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
from teams_proactive.connector.definition.definitions import (
    drop_unreferenced,
    inline_nested,
    open_outputs,
    order_definitions,
)
from teams_proactive.connector.definition.paths import fix_paths
from teams_proactive.connector.definition.publisher import add_publisher, use_entra_sign_in
from teams_proactive.connector.definition.shape import TOP_ORDER, ordered
from teams_proactive.connector.errors import ApiError, validation_error
from teams_proactive.connector.schemas.cards import CardWaitResultSchema
from teams_proactive.connector.schemas.common import ErrorSchema
from teams_proactive.connector.schemas.subscriptions import (
    BotEventSchema,
    CardSubmittedEventSchema,
    DeliveryFailedEventSchema,
    InstallationEventSchema,
    MessageReadEventSchema,
    UserMessageEventSchema,
)
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


# The schemas posted to trigger callbacks: registered by name, referenced by x-ms-notification-content.
EVENT_SCHEMAS = (
    BotEventSchema, UserMessageEventSchema, CardSubmittedEventSchema, InstallationEventSchema,
    DeliveryFailedEventSchema, CardWaitResultSchema, MessageReadEventSchema,
)  # fmt: skip


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
    for schema in EVENT_SCHEMAS:
        api.spec.components.schema(schema.__name__.removesuffix("Schema"), schema=schema)
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

    ``auth`` is ``apikey`` (the X-API-Key header) or ``entra`` (Microsoft Entra ID OAuth). The passes
    run in this order: nested objects are inlined before the paths are fixed, and definitions are
    dropped, opened and ordered only once nothing else refers to them."""
    api: Api = app.extensions["teams_proactive.api"]
    spec = copy.deepcopy(api.spec.to_dict())
    spec["host"] = host or PLACEHOLDER_HOST
    spec["basePath"] = BASE_PATH
    spec["schemes"] = [scheme]
    spec.pop("responses", None)  # flask-smorest's shared error responses: replaced per operation
    spec.pop("parameters", None)
    inline_nested(spec.setdefault("definitions", {}))
    fix_paths(spec)
    if auth == "entra":
        use_entra_sign_in(spec)
    add_publisher(spec, scheme, publisher=PUBLISHER_NAME, categories=CATEGORIES, privacy_path=PRIVACY_PATH)
    drop_unreferenced(spec)
    open_outputs(spec)
    order_definitions(spec)
    return ordered(spec, TOP_ORDER)


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
