"""Every string a request brings to /api/v1 is valid Unicode text, or the request is refused with 400.

One hook for every operation (not a check in each view): it walks the decoded JSON body, the query
and the path parameters with ``teams_proactive.bot.text`` before the view or its schema sees them, so a
lone surrogate (``"\\ud800"`` in JSON) or a NUL never reaches the store. ``/mcp`` and ``/api/messages``
decode their own bodies (their limits and error shapes differ) and call the same check there.
Headers need nothing: WSGI hands them over as Latin-1, which is always valid text.
"""

from __future__ import annotations

from flask import Flask, request
from teams_proactive.bot import text
from teams_proactive.connector.errors import ApiError

API_PREFIX = "/api/v1/"


def refusal(bad: text.UnreadableText) -> ApiError:
    return ApiError("ValidationError", str(bad), bad.target or None)


def _bad_parameter() -> text.UnreadableText | None:
    # Werkzeug decodes the URL with "replace", so only NUL (%00) can get this far; named as the parameter.
    params = [*(request.view_args or {}).items(), *request.args.items(multi=True)]
    for name, value in params:
        if isinstance(value, str) and (reason := text.problem(value)):
            return text.UnreadableText(name, reason)
    return None


def init_input_text(app: Flask) -> None:
    @app.before_request
    def _refuse_unreadable_text() -> None:
        if not request.path.startswith(API_PREFIX):
            return
        bad = _bad_parameter()
        if bad is None and request.is_json and request.content_length != 0:
            # Flask caches the decoded body; an undecodable one is left to the schema's own 400.
            body = request.get_json(silent=True)
            bad = text.find(body)
        if bad is not None:
            raise refusal(bad)
