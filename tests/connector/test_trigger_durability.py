"""Webhook events survive the process: a real server killed with SIGKILL while a flow's callback is
failing, restarted on the same store, posts the event once the callback recovers (same eventId).
ForgetRecipient drops events about the person that are still waiting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, pending_events, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.server_process import ServerProcess


def subscribe(server: ServerProcess, hooks: CallbackServer, name: str) -> None:
    response = server.api(
        "POST", "/api/v1/subscriptions/user-messages", API_KEY, json={"notificationUrl": hooks.url(name)}
    )
    assert response.status_code == 201, response.text


@pytest.mark.slow
def test_an_event_waiting_for_a_retry_survives_sigkill(
    tmp_path: Path, connector: FakeConnector, make_user: Any
) -> None:
    db = tmp_path / "store.db"
    user = make_user()
    with CallbackServer() as hooks:
        env = {"STORE_URL": f"sqlite:///{db}", "CONNECTOR_API_KEY": API_KEY, "MicrosoftAppId": "",
               "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32"}
        with ServerProcess(env, log_path=tmp_path / "server.log") as server:
            assert server.activity(act.install(user, connector.service_url())).status_code == 200
            subscribe(server, hooks, "durable")
            # The flow is down: it answers 503 and asks for a few seconds' patience.
            hooks.answer_next(503, headers={"Retry-After": "3"})
            assert server.activity(act.message(user, connector.service_url(), "Where is my laptop?")).status_code == 200
            wait_until(lambda: hooks.received, what="the first callback attempt")
            (waiting,) = wait_until(
                lambda: [e for e in pending_events(db) if e["attempts"] == 1 and e["lease_owner"] is None],
                what="the event to be rescheduled in the store",
            )
            assert server.kill() is not None
            assert not server.alive

            # Restarted on the same store, with the flow back up: the event arrives, once.
            server.start()
            (payload,) = wait_until(lambda: hooks.bodies("durable"), timeout=60, what="the event after the restart")
            assert payload["eventId"] == waiting["id"] and payload["text"] == "Where is my laptop?"
            assert payload["user"]["upn"] == user.upn
            wait_until(lambda: pending_events(db) == [], what="the outbox to empty")
            assert [c.status for c in hooks.received] == [503, 202]


def test_forget_recipient_drops_their_waiting_events(tmp_path: Path, connector: FakeConnector, make_user: Any) -> None:
    db = tmp_path / "store.db"
    adele, megan = make_user(), make_user(name="Megan Bowen", upn="megan@contoso.example")
    with CallbackServer() as hooks:
        env = {"STORE_URL": f"sqlite:///{db}", "CONNECTOR_API_KEY": API_KEY, "MicrosoftAppId": "",
               "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32"}
        with ServerProcess(env, log_path=tmp_path / "server.log") as server:
            for user in (adele, megan):
                assert server.activity(act.install(user, connector.service_url())).status_code == 200
            subscribe(server, hooks, "down")
            # The flow is down for a long while: both events wait in the outbox for their retry.
            hooks.answer_next(503, 503, headers={"Retry-After": "120"})
            for user in (adele, megan):
                server.activity(act.message(user, connector.service_url(), f"a secret from {user.name}"))
            wait_until(
                lambda: len([e for e in pending_events(db) if e["attempts"] == 1 and e["lease_owner"] is None]) == 2,
                what="both events to wait for a retry",
            )
            assert server.api("DELETE", f"/api/v1/recipients/{adele.upn}", API_KEY).status_code == 204
            (left,) = pending_events(db)
            assert left["body"]["text"] == "a secret from Megan Bowen"
            assert all("Adele" not in json.dumps(e) for e in pending_events(db))
