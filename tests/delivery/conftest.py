"""Delivery-engine fixtures: the real app with a dispatcher tuned for quick retries, and helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from teams_proactive.bot.delivery.dispatcher import DispatcherSettings

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

# Backoff in tens of milliseconds and a 2-second call timeout keep fault tests short; the rules
# (what is retried, what Retry-After means) are the production ones.
FAST = DispatcherSettings(
    rate_per_tenant=500.0,
    concurrency=16,
    max_attempts=6,
    lease_seconds=10.0,
    leader_lease_seconds=3.0,
    send_timeout_seconds=2.0,
    poll_seconds=0.1,
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.5,
)


@pytest.fixture
def fast_live(app_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp(app_env, runtime_kwargs={"dispatcher_settings": FAST}) as app:
        yield app


def eventually(check: Callable[[], Any], *, timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(every)
        value = check()
    return value


def install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser, service: str = "a") -> None:
    response = live.activity(act.install(user, connector.service_url(service)))
    assert response.status_code == 200, response.text


def send(live: LiveApp, body: dict[str, Any], key: str = API_KEY) -> requests.Response:
    return live.api("POST", "/api/v1/messages", key, json=body)


def final_delivery(live: LiveApp, delivery_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """GetMessage (always 200) until the status is delivered or failed."""

    def done() -> dict[str, Any] | None:
        response = live.api("GET", f"/api/v1/messages/{delivery_id}", API_KEY)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if body["status"] in ("delivered", "failed") else None

    return eventually(done, timeout=timeout)


def texts_in(connector: FakeConnector, conversation_id: str, text: str) -> int:
    return sum(1 for r in connector.sent(conversation_id) if r.activity.get("text") == text)
