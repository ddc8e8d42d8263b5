"""Structured JSON logs with a request id (from X-Request-Id or made up), one access line per request.

The request id lives in a context variable, so log lines written by code the request hands to the bot
loop carry it too (``run_coroutine_threadsafe`` copies the caller's context into the task). Bodies,
query strings and headers are never logged: they hold message text, keys and tokens.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-Id"
_ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # what we echo back: no spaces, no control characters

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
access_log = logging.getLogger("teams_proactive.access")

# Attributes every LogRecord has; anything else passed with ``extra=`` goes into the JSON line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (or None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, requestId, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["requestId"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        return super().format(record)


def configure_logging(fmt: str = "json", level: int | str = logging.INFO) -> None:
    """Send every logger's records to stderr in ``fmt`` (json or text), with the request id."""
    if fmt not in {"json", "text"}:
        raise ValueError(f"LOG_FORMAT must be json or text, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # waitress logs each queue back-up at WARNING and Werkzeug its own access lines: ours replace them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def init_request_ids(app: Flask) -> None:
    """Give every request an id (kept from X-Request-Id when sane), echo it, and log one access line."""

    @app.before_request
    def _start() -> None:
        presented = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = presented if _ACCEPTED_ID.match(presented) else uuid.uuid4().hex
        g.request_id = request_id
        g.request_started = time.perf_counter()
        g.request_id_token = request_id_var.set(request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
            started = g.get("request_started", time.perf_counter())
            # Probes and scrapes come every few seconds: keep them out of INFO.
            quiet = request.path in {"/healthz", "/readyz", "/metrics"} and response.status_code < 400
            path = _loggable_path()
            access_log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                request.method,
                path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "durationMs": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        return response

    @app.teardown_request
    def _reset(_: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                request_id_var.reset(token)
            except ValueError:  # torn down in another context than it started in: just clear it
                request_id_var.set(None)


# Path parameters that name a person (a UPN or an email address): logged as their name, not their value.
_PERSONAL_PARAMETERS = ("recipient",)


def _loggable_path() -> str:
    """The request path, with any parameter that names a person replaced by ``{name}``: a
    ForgetRecipient call must not leave the address it erased in the access log."""
    args = request.view_args or {}
    if request.url_rule is None or not any(name in args for name in _PERSONAL_PARAMETERS):
        return request.path
    path = request.url_rule.rule
    for name, value in args.items():
        shown = f"{{{name}}}" if name in _PERSONAL_PARAMETERS else str(value)
        path = re.sub(rf"<(?:[^:<>]+:)?{re.escape(name)}>", lambda _match, text=shown: text, path)
    return path
