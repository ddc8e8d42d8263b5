"""Unknown query parameters are refused on /api/v1, as unknown body fields are (a typo must not pass silently).

webargs ignores query parameters an operation does not declare; an operation that declares some
(ListRecipients) already refuses the rest through its schema (``unknown=RAISE``). This hook covers
every other operation: the names an operation accepts are read from its flask-smorest
``@arguments(..., location="query")`` declarations, the same source the connector definition uses.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from teams_proactive.connector.errors import ApiError

API_PREFIX = "/api/v1/"


def _declared_query_names(view: Any, method: str) -> set[str]:
    handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
    if method == "HEAD" and handler is view:
        handler = getattr(getattr(view, "view_class", None), "get", view)
    names: set[str] = set()
    arguments = getattr(handler, "_apidoc", {}).get("arguments", {})
    for parameter in arguments.get("parameters", []):
        if parameter.get("in") != "query":
            continue
        schema = parameter["schema"]
        schema = schema() if isinstance(schema, type) else schema
        names |= {field.data_key or name for name, field in schema.fields.items()}
    return names


def init_strict_query(app: Flask) -> None:
    @app.before_request
    def _refuse_unknown_query() -> None:
        if not request.args or not request.path.startswith(API_PREFIX) or request.endpoint is None:
            return
        view = current_app.view_functions.get(request.endpoint)
        declared = _declared_query_names(view, request.method)
        unknown = sorted(set(request.args) - declared)
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown)
            accepted = (
                f"this operation accepts {', '.join(sorted(declared))}"
                if declared
                else "this operation takes no query parameters"
            )
            raise ApiError(
                "ValidationError", f"Unknown query parameter{'s' * (len(unknown) > 1)} {names}: {accepted}.", unknown[0]
            )
