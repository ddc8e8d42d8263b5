"""Helpers for the security tests: what the store holds, and API keys made the way operators make them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from teams_proactive.bot.model import Delivery, Reference
from teams_proactive.connector import keys

from tests.conftest import API_KEY
from tests.support.live_app import LiveApp

# Between two status reads while polling: keeps a poll well under the per-key rate limit.
POLL_SECONDS = 0.05
# Generated inputs per operation (test_string_fuzz.py), printed in the terminal summary.
FUZZ_COUNTS: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FUZZ_COUNTS:
        return
    terminalreporter.section("generated inputs per operation (string fuzzing)")
    for label, count in sorted(FUZZ_COUNTS.items()):
        terminalreporter.write_line(f"{count:5d}  {label}")
    terminalreporter.write_line(f"{sum(FUZZ_COUNTS.values()):5d}  in all, {len(FUZZ_COUNTS)} operations")


def all_references(live: LiveApp) -> list[Reference]:
    store = live.runtime.store
    page = live.runtime.call(store.references.page(tenant_id=None, status=None, surface=None, limit=10_000, token=None))
    return list(page.items)


def all_deliveries(live: LiveApp) -> list[Delivery]:
    store = live.runtime.store
    found: list[Delivery] = []
    token: str | None = None
    while True:
        page = live.runtime.call(store.outbox.page(limit=1000, token=token))
        found.extend(page.items)
        token = page.next_token
        if not token:
            return found


def create_key(live: LiveApp, name: str, *, tenant_id: str | None = None, scopes: list[str] | None = None) -> str:
    """A hashed API key in the app's store (what ``teams-proactive keys create`` does); returns the secret."""
    _, secret = live.runtime.call(
        keys.create_key(live.runtime.store, name, tenant_id=tenant_id, scopes=scopes or ["send"])
    )
    return secret


def final_delivery(live: LiveApp, delivery_id: str, key: str = API_KEY) -> dict[str, Any]:
    """Poll GetMessage until the delivery is delivered or failed."""
    deadline = time.monotonic() + 30
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = live.api("GET", f"/api/v1/messages/{delivery_id}", key).json()
        assert "status" in body, body
        if body["status"] in ("delivered", "failed"):
            return body
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"delivery {delivery_id} not final: {body}")


def finished_broadcast(live: LiveApp, broadcast_id: str, key: str = API_KEY) -> dict[str, Any]:
    """Poll GetBroadcast until it is completed."""
    deadline = time.monotonic() + 30
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", key).json()
        assert "status" in report, report
        if report["status"] == "completed":
            return report
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"broadcast {broadcast_id} not completed: {report}")


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


@pytest.fixture
def key_factory(live: LiveApp):  # type: ignore[no-untyped-def]
    def make(name: str, *, tenant_id: str | None = None, scopes: list[str] | None = None) -> str:
        return create_key(live, name, tenant_id=tenant_id, scopes=scopes)

    return make
