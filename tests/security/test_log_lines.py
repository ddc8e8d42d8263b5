"""Access lines name route templates only, whatever the status (404, 405, trailing slash, ``%2F``,
unmatched), and a ``%0a`` anywhere cannot forge a line in ``LOG_FORMAT=text``."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
import requests
from teams_proactive.connector.logs import UNMATCHED_PATH, JsonFormatter, RequestIdFilter, TextFormatter

from tests.conftest import API_KEY
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

ADDRESS = "adele.vance@contoso.example"
FORGED = "2026-01-01 00:00:00,000 INFO teams_proactive.access: FORGED"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+")


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """The root logger's output in both formats, as production configures it."""
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((json_out, JsonFormatter()), (text_out, TextFormatter())):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        # The test's own HTTP client (urllib3) logs the URLs it asked for: that is not the server's log.
        handler.addFilter(lambda record: not record.name.startswith("urllib3"))
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield json_out, text_out
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


def raw(live: LiveApp, method: str, path: str) -> int:
    """A request with the path sent exactly as written (no client-side normalisation)."""
    session = requests.Session()
    request = requests.Request(method, live.url + "/", headers={"X-API-Key": API_KEY}).prepare()
    request.url = live.url + path
    try:
        return session.send(request, allow_redirects=False, timeout=30).status_code
    finally:
        session.close()


def test_access_lines_name_templates_for_every_status(
    app_env: dict[str, str], connector: FakeConnector, logs: tuple[io.StringIO, io.StringIO]
) -> None:
    json_out, text_out = logs
    with LiveApp(app_env) as live:
        templates = {re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule) for rule in live.app.url_map.iter_rules()}
        asked = {
            ("GET", f"/api/v1/recipients/{ADDRESS}"): 404,  # never seen
            ("DELETE", f"/api/v1/recipients/{ADDRESS}"): 404,
            ("GET", f"/api/v1/recipients/{ADDRESS}/"): None,  # trailing slash
            ("GET", f"/api/v1/recipients/x%2F{ADDRESS}"): None,  # %2F inside the address
            ("POST", f"/api/v1/recipients/{ADDRESS}"): 405,
            ("PATCH", f"/api/v1/messages/{ADDRESS}"): 405,
            ("GET", f"/nothing/here/{ADDRESS}"): 404,
            ("GET", f"/api/v1/{ADDRESS}%0a{FORGED.replace(' ', '%20')}"): 404,
            ("GET", f"/api/v1/recipients/{ADDRESS}%0d%0a{FORGED.replace(' ', '%20')}"): None,
        }
        for (method, path), expected in asked.items():
            status = raw(live, method, path)
            assert expected is None or status == expected, (method, path, status)
    access = [json.loads(line) for line in json_out.getvalue().splitlines()]
    access = [line for line in access if line["logger"] == "teams_proactive.access"]
    assert len(access) == len(asked)
    for line in access:
        assert line["path"] in templates | {UNMATCHED_PATH}, line
    assert {line["path"] for line in access} >= {"/api/v1/recipients/{recipient}", UNMATCHED_PATH}
    # A 405 names the route the path belongs to.
    assert any(line["status"] == 405 and line["path"].startswith("/api/v1/messages/{") for line in access), access
    for output in (json_out.getvalue(), text_out.getvalue()):
        assert ADDRESS not in output and "adele.vance" not in output
        assert "FORGED" not in output
    for line in text_out.getvalue().splitlines():
        assert TEXT_LINE.match(line) or line.startswith("  | "), line


def test_text_logs_escape_control_characters() -> None:
    formatter = TextFormatter()
    for evil in ("\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\x1b[2J", "\x00"):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s", (f"a{evil}{FORGED}",), None)
        line = formatter.format(record)
        assert len(line.splitlines()) == 1 and evil not in line, repr(line)
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert TEXT_LINE.match(lines[0]) and all(line.startswith("  | ") for line in lines[1:]), lines
    assert json.loads(JsonFormatter().format(record))["message"] == "failed"
