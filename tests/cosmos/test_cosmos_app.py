"""The real app on Cosmos DB (STORE_URL=cosmos): install -> SendMessage -> delivered, and the TTL
fields the running bot writes (sliding reference TTL, delivery and broadcast retention)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from teams_proactive.bot.model import Surface, person_id
from teams_proactive.bot.store.cosmos import CosmosStore

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

pytestmark = pytest.mark.cosmos

DAY = 86400.0


def app_env(target: CosmosTarget, database: str, **extra: str) -> dict[str, str]:
    return {"CONNECTOR_API_KEY": API_KEY, "SEND_RATE_PER_TENANT": "200", **target.env(database), **extra}


def raw(live: LiveApp, container: str, item_id: str, pk: str) -> dict[str, Any]:
    store = live.runtime.store
    assert isinstance(store, CosmosStore)
    return dict(live.runtime.call(store.containers[container].read_item(item_id, partition_key=pk)))


def poll(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)  # polling a condition, with a deadline


def test_install_send_and_deliver_on_cosmos(
    connector: FakeConnector, make_user: Any, cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    env = app_env(cosmos_target, cosmos_database, REFERENCE_TTL_DAYS="30", DELIVERY_RETENTION_DAYS="7")
    with LiveApp(env) as live:
        assert live.api("GET", "/readyz").json()["status"] == "ready"
        user = make_user()
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        assert len(connector.sent(user.conversation_id)) == 1  # the welcome message

        recipient = live.api("GET", f"/api/v1/recipients/{user.upn.upper()}", API_KEY).json()
        assert recipient["reachable"] is True and recipient["aadObjectId"] == user.aad_object_id

        response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "on Cosmos"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "delivered" and body["conversationId"] == user.conversation_id
        assert connector.sent(user.conversation_id)[-1].activity["text"] == "on Cosmos"
        assert live.api("GET", f"/api/v1/messages/{body['id']}", API_KEY).json()["status"] == "delivered"

        # The reference carries the opt-in TTL, and a later activity slides it.
        pk = person_id(user.tenant_id, user.aad_object_id.lower())
        installed = raw(live, "references", Surface.TEAMS, pk)
        assert 30 * DAY - 60 <= installed["ttl"] <= 30 * DAY + 1
        assert live.activity(act.message(user, connector.service_url(), "help")).status_code == 200
        later = raw(live, "references", Surface.TEAMS, pk)
        assert later["expires_at"] > installed["expires_at"] and later["_ts"] >= installed["_ts"]
        assert 30 * DAY - 60 <= later["ttl"] <= 30 * DAY + 1

        # A final delivery keeps its retention TTL (7 days), not the reference TTL.
        delivery = raw(live, "deliveries", body["id"], body["id"])
        assert 7 * DAY - 60 <= delivery["ttl"] <= 7 * DAY + 1

        started = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [user.upn], "text": "all"})
        assert started.status_code == 200, started.text
        broadcast_id = started.json()["id"]
        done = poll(
            lambda: (
                (r := live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)).json()["status"] == "completed"
                and r
            )
        )
        assert done.json()["counts"]["delivered"] == 1
        broadcast = raw(live, "broadcasts", broadcast_id, broadcast_id)
        assert 7 * DAY - 60 <= broadcast["ttl"] <= 7 * DAY + 1


def test_without_reference_ttl_nothing_expires(
    connector: FakeConnector, make_user: Any, cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    with LiveApp(app_env(cosmos_target, cosmos_database)) as live:
        user = make_user()
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        doc = raw(live, "references", Surface.TEAMS, person_id(user.tenant_id, user.aad_object_id.lower()))
        assert "ttl" not in doc and doc["expires_at"] is None
        alias = raw(live, "aliases", user.upn.lower(), user.upn.lower())
        assert "ttl" not in alias
