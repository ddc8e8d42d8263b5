"""Metrics at /metrics (parsed with prometheus_client's own parser), JSON logs with a request id."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from teams_proactive.connector.logs import JsonFormatter, RequestIdFilter, configure_logging, request_id_var

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp

# A deliverAt well ahead, within the year the API accepts.
LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=180)).isoformat()


def scrape(live: LiveApp, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = live.api("GET", "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_deliveries_retries_429s_and_latency(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    before = scrape(live)
    for name in (
        "teams_proactive_deliveries_total",
        "teams_proactive_delivery_retries_total",
        "teams_proactive_throttled_total",
        "teams_proactive_send_latency_seconds_count",
        "teams_proactive_queue_depth",
        "teams_proactive_store_up",
        "teams_proactive_dispatcher_leader",
        "teams_proactive_webhook_callbacks_total",
    ):
        assert any(key[0] == name for key in before), f"{name} missing"

    # One clean send, one that Teams throttles once (429, then delivered), one refused for good (403).
    assert live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "one"}).json()[
        "status"
    ] == "delivered"
    connector.fail_next(1, Scripted(429, "Throttled", "slow down", retry_after=1))
    sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "two", "wait": 30})
    assert sent.json()["status"] == "delivered", sent.text
    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", "User blocked the conversation with the bot."))
    refused = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "three", "wait": 30})
    assert refused.json()["status"] == "failed", refused.text

    after = scrape(live)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("teams_proactive_deliveries_total", status="delivered") == 2
    assert delta("teams_proactive_deliveries_total", status="failed") == 1
    code = refused.json()["error"]["code"]
    assert delta("teams_proactive_delivery_failures_total", code=code) == 1
    assert delta("teams_proactive_throttled_total") == 1
    assert delta("teams_proactive_delivery_retries_total") == 1
    assert delta("teams_proactive_send_latency_seconds_count") == 4  # every call to Teams, any outcome
    assert delta("teams_proactive_send_latency_seconds_bucket", le="+Inf") == 4
    assert delta("teams_proactive_send_latency_seconds_sum") > 0
    assert value(after, "teams_proactive_store_up") == 1
    assert value(after, "teams_proactive_dispatcher_leader") == 1
    for status in ("queued", "scheduled", "sending"):
        assert value(after, "teams_proactive_queue_depth", status=status) == 0


def test_webhook_callbacks_are_counted_by_outcome(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url())).status_code == 200
    with CallbackServer() as hooks:
        response = live.api(
            "POST", "/api/v1/subscriptions/user-messages", API_KEY, json={"notificationUrl": hooks.url("flow")}
        )
        assert response.status_code == 201, response.text
        before = scrape(live)
        hooks.answer_next(503, headers={"Retry-After": "0"})
        assert live.activity(act.message(user, connector.service_url(), "hello")).status_code == 200
        wait_until(lambda: hooks.bodies("flow"), what="the callback after one retry")
        after = wait_until(
            lambda: (s := scrape(live))
            and value(s, "teams_proactive_webhook_callbacks_total", outcome="delivered") > 0
            and s,
            what="the delivered callback to be counted",
        )
    for outcome, expected in (("delivered", 1), ("retried", 1), ("failed", 0), ("gone", 0)):
        name = "teams_proactive_webhook_callbacks_total"
        assert value(after, name, outcome=outcome) - value(before, name, outcome=outcome) == expected, outcome


def test_queue_depth_counts_waiting_deliveries(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    for i in range(3):
        body = {"recipient": user.upn, "text": f"later {i}", "deliverAt": LATER, "wait": 0}
        assert live.api("POST", "/api/v1/messages", API_KEY, json=body).status_code == 200
    samples = scrape(live)
    waiting = sum(value(samples, "teams_proactive_queue_depth", status=s) for s in ("queued", "scheduled"))
    assert waiting == 3


def test_metrics_token_guards_the_endpoint(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp(app_env | {"METRICS_TOKEN": "scrape-token-0123456789"}) as live:
        assert live.api("GET", "/metrics").status_code == 401
        assert live.api("GET", "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert scrape(live, Authorization="Bearer scrape-token-0123456789")


# ---- logs ---------------------------------------------------------------------------------------
@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log record of the process as the JSON lines `serve` writes, captured in memory."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_request_gets_an_id_in_its_log_lines_and_its_answer(
    live: LiveApp, connector: FakeConnector, make_user, json_log: io.StringIO
) -> None:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    body_text = "Quarterly numbers: secret body 7f3a9c"
    response = live.api(
        "POST",
        "/api/v1/messages",
        API_KEY,
        json={"recipient": user.upn, "text": body_text},
        headers={"X-Request-Id": "flow-run-42:step-3"},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "flow-run-42:step-3"

    generated = live.api("GET", "/api/v1/recipients/" + user.upn, API_KEY, headers={"X-Request-Id": "bad id with <spaces>"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-Id"])

    lines = _lines(json_log)
    access = [line for line in lines if line["logger"] == "teams_proactive.access"]
    sent = next(line for line in access if line.get("requestId") == "flow-run-42:step-3")
    assert sent["method"] == "POST" and sent["path"] == "/api/v1/messages" and sent["status"] == 200
    assert sent["durationMs"] >= 0 and sent["level"] == "INFO" and sent["time"].endswith("+00:00")
    assert any(line.get("requestId") == generated.headers["X-Request-Id"] for line in access)
    # Message bodies and keys never reach the log.
    everything = json_log.getvalue()
    assert body_text not in everything and "secret body" not in everything
    assert API_KEY not in everything


def test_the_request_id_follows_work_handed_to_the_bot_loop(live: LiveApp, json_log: io.StringIO) -> None:
    async def work() -> None:
        logging.getLogger("teams_proactive.bot.example").warning("done on the bot loop")

    token = request_id_var.set("req-on-loop")
    try:
        live.runtime.call(work())
    finally:
        request_id_var.reset(token)
    line = next(line for line in _lines(json_log) if line["message"] == "done on the bot loop")
    assert line["requestId"] == "req-on-loop" and line["logger"] == "teams_proactive.bot.example"


def test_json_formatter_keeps_extras_and_exceptions() -> None:
    record = logging.LogRecord("x.y", logging.ERROR, __file__, 1, "failed %s", ("twice",), None)
    record.deliveryId = "d-1"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed twice" and line["deliveryId"] == "d-1" and "RuntimeError: boom" in line["exception"]
    assert "requestId" not in line
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging("xml")
