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

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

REQUEST_ID_HEADER = "X-Request-Id"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what we echo back: no spaces, no control characters

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
        # json.dumps escapes C0 controls; U+2028/2029 it leaves raw, and some readers split lines on them.
        return (
            json.dumps(line, default=str, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        )


# Line breaks and other control characters (C0, DEL, C1, Unicode line/paragraph separators): in a
# message they could start a forged log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


class TextFormatter(logging.Formatter):
    """One line per record (control characters escaped); a traceback follows on lines marked ``  | ``,
    which no record line can look like."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{escape_control(str(request_id))}]" if request_id else ""
        record.message = escape_control(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        extra = []
        if record.exc_info:
            extra.append(self.formatException(record.exc_info))
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        for block in extra:
            line += "".join("\n  | " + escape_control(part) for part in block.splitlines())
        return line


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
        request_id = presented if _ACCEPTED_ID.fullmatch(presented) else uuid.uuid4().hex
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
            method = _loggable_method()
            access_log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s %s %s",
                method,
                path,
                response.status_code,
                extra={
                    "method": method,
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


# What an access line shows for a request no route matched (404, a trailing slash, %2F inside an
# address, a 405 we cannot place): never the raw path, which may hold a person's address or anything a
# caller typed.
UNMATCHED_PATH = "(unmatched)"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _template(rule: str) -> str:
    """Flask's ``/api/v1/recipients/<path:recipient>`` as ``/api/v1/recipients/{recipient}``."""
    return _PARAMETER.sub(lambda match: "{" + match.group(1) + "}", rule)


def _loggable_path() -> str:
    """The route template of the request, never its values: a ForgetRecipient call must not leave the
    address it erased in the access log, whatever status it got."""
    if request.url_rule is not None:
        return _template(request.url_rule.rule)
    exc = request.routing_exception
    valid = getattr(exc, "valid_methods", None)
    if valid:
        # 405: the path matched a route, only not with this method; name the route, not the path.
        try:
            rule, _ = current_app.url_map.bind_to_environ(request.environ).match(method=valid[0], return_rule=True)
        except HTTPException:
            return UNMATCHED_PATH
        return _template(rule.rule)
    return UNMATCHED_PATH


def _loggable_method() -> str:
    return request.method if request.method in _METHODS else "OTHER"
