"""The Flask app the custom connector calls, and the bot endpoint beside it (one process, one port)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from dotenv import load_dotenv
from flask import Flask, request
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.runtime import BotRuntime
from teams_proactive.bot.settings import BotSettings
from teams_proactive.connector.errors import ApiError, error_response
from teams_proactive.connector.extension import init_runtime
from teams_proactive.connector.settings import ConnectorSettings
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, Any] | None = None, *, runtime: BotRuntime | None = None) -> Flask:
    """Build the app: settings from the environment (and .env), then anything the test mapping says.

    ``test_config`` may carry ``ENV`` (a mapping used instead of os.environ) and Flask settings.
    """
    test_config = dict(test_config or {})
    env = test_config.pop("ENV", None)
    if env is None:
        load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
        env = os.environ
    bot_settings = BotSettings.from_env(env)
    connector_settings = ConnectorSettings.from_env(env)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=connector_settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.config.update(test_config)
    app.extensions["teams_proactive.connector_settings"] = connector_settings

    from teams_proactive.connector.openapi import init_api

    init_api(app)
    _register_error_handlers(app)
    init_runtime(app, runtime or BotRuntime(bot_settings, graph_settings=GraphSettings.from_env(env, bot_settings)))

    from teams_proactive.connector.mcp import init_mcp

    init_mcp(app)

    from teams_proactive.connector.dashboard import init_dashboard
    from teams_proactive.connector.input_text import init_input_text
    from teams_proactive.connector.logs import init_request_ids
    from teams_proactive.connector.metrics import init_metrics
    from teams_proactive.connector.strict_query import init_strict_query

    init_request_ids(app)
    init_strict_query(app)
    init_input_text(app)
    init_metrics(app, env)
    init_dashboard(app, env)
    return app


def _register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, error_response)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        from teams_proactive.connector.openapi import http_exception_to_api_error

        return error_response(http_exception_to_api_error(exc))

    @app.errorhandler(RecursionError)
    def too_deep(exc: RecursionError) -> Any:
        # The JSON decoders (Flask's and webargs') let a RecursionError through on input nested
        # thousands of levels deep: that is a bad request, not a bug.
        if request.is_json and request.content_length:
            return error_response(ApiError("ValidationError", "The JSON is nested too deeply."))
        return unexpected(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error")
        return error_response(ApiError("InternalError", "Something went wrong on our side; it has been logged."))
