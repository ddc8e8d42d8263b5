"""Inbound turns reuse the SDK's clients: one ConnectorClient per service URL, one UserTokenClient per app.

Building them costs milliseconds of CPU each (msrest's retry policy); without reuse every inbound
activity pays it (DESIGN.md section 8). The benchmark measures the CPU; this checks the reuse.
"""

from __future__ import annotations

import pytest
from botframework.connector.aio import ConnectorClient

from tests.delivery.conftest import install
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def test_turns_reuse_connector_clients_per_service_url(
    live: LiveApp, connector: FakeConnector, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = ConnectorClient.__init__

    def counting_init(self: ConnectorClient, credentials: object, base_url: str | None = None, **kw: object) -> None:
        built.append(base_url or "")
        original(self, credentials, base_url=base_url, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ConnectorClient, "__init__", counting_init)
    people = [make_user(f"User {i}", f"user{i}@contoso.example") for i in range(3)]
    for person in people:
        install(live, connector, person)  # each turn answers with a welcome message through the SDK
        for _ in range(2):
            assert live.activity(act.message(person, connector.service_url(), "help")).status_code == 200
    assert live.activity(act.message(people[0], connector.service_url("b"), "help")).status_code == 200

    assert sorted(set(built)) == [connector.service_url(), connector.service_url("b")]
    assert len(built) == 2  # 10 turns, 2 service URLs: 2 clients
    caches = live.runtime.endpoint.authentication
    assert sum(len(clients) for clients in caches._connectors.values()) == 2
    assert len(caches._user_token_clients) == 1
    replies = [r for r in connector.sent() if "stop" in (r.activity.get("text") or "")]
    assert len(replies) >= 9  # welcome and help answers all went out
