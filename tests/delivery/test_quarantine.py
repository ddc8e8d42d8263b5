"""A bad record never stops the rest (issue 24): an undecodable delivery and broadcast planted straight
into the SQLite file and into Cosmos DB, and a delivery that decodes but makes sending raise, are moved
to quarantine with a reason, counted in /metrics, while a broadcast to 1,000 other people goes out and
the loops keep running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from teams_proactive.bot.model import Delivery

from tests.conftest import API_KEY
from tests.delivery.conftest import FAST, eventually, send
from tests.support.cosmos_fixtures import cosmos_database, cosmos_target  # noqa: F401 - fixtures
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.people import SeededPerson, people, seed
from tests.support.plant import SECRET, plant_undecodable

CROWD = 1000


@pytest.fixture(params=["sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def backend_live(
    request: pytest.FixtureRequest, app_env: dict[str, str], connector: FakeConnector
) -> Iterator[tuple[str, LiveApp]]:
    env = dict(app_env)
    if request.param == "cosmos":
        target = request.getfixturevalue("cosmos_target")
        env.update(target.env(request.getfixturevalue("cosmos_database")))
    with LiveApp(env, runtime_kwargs={"dispatcher_settings": FAST}) as app:
        yield str(request.param), app


def quarantined(live: LiveApp) -> dict[str, float]:
    response = live.api("GET", "/metrics")
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    return {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "teams_proactive_quarantined_records"
    }


def broken_delivery(person: SeededPerson) -> Delivery:
    """Decodes, but its content is a list where an object belongs: building the activity raises."""
    return Delivery(
        id="structurally-wrong",
        owner="planted",
        tenant_id=person.tenant_id,
        user_key=person.user_key,
        recipient=person.upn,
        content=["not", "an", "object"],  # type: ignore[arg-type]
    )


def test_planted_records_are_quarantined_while_a_thousand_others_go_out(
    backend_live: tuple[str, LiveApp], connector: FakeConnector
) -> None:
    backend, live = backend_live
    store = live.runtime.store
    crowd = people(CROWD + 1, tenant_id="tenant-contoso", prefix="many")
    live.runtime.call(seed(store, crowd, connector.service_url("a")), timeout=300)
    live.runtime.call(plant_undecodable(store, backend, "delivery", "planted-delivery"), timeout=30)
    live.runtime.call(plant_undecodable(store, backend, "broadcast", "planted-broadcast"), timeout=30)
    live.runtime.call(store.outbox.create(broken_delivery(crowd[-1])), timeout=30)

    started = live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": [p.upn for p in crowd[:CROWD]], "text": "to all"},
    )
    assert started.status_code == 200, started.text
    location = f"/api/v1/broadcasts/{started.json()['id']}"

    def finished() -> dict[str, Any] | None:
        report = live.api("GET", location, API_KEY).json()
        return report if report.get("status") == "completed" else None

    done = eventually(finished, timeout=300, every=0.5)
    assert done["counts"]["delivered"] == CROWD
    copies: dict[str, int] = {}
    for received in connector.sent():
        if received.activity.get("text") == "to all":
            copies[received.conversation_id] = copies.get(received.conversation_id, 0) + 1
    assert len(copies) == CROWD and set(copies.values()) == {1}

    # Each planted record moved aside with a reason that names the fault, never the record's content.
    def moved() -> dict[str, str] | None:
        listed = {q.record_id: q.reason for q in live.runtime.call(store.quarantine.list(), timeout=30)}
        wanted = {"planted-delivery", "planted-broadcast", "structurally-wrong"}
        return listed if wanted <= set(listed) else None

    reasons = eventually(moved, timeout=60)
    for reason in reasons.values():
        assert SECRET not in reason and "alice" not in reason
    assert reasons["structurally-wrong"].startswith("AttributeError")
    if backend == "sqlite":
        assert "surrogate" in reasons["planted-delivery"]
    else:
        assert reasons["planted-delivery"].startswith("TypeError")

    assert eventually(lambda: quarantined(live) == {"delivery": 2.0, "broadcast": 1.0, "notification": 0.0, "reference": 0.0})

    # The loops are still running: a message sent now goes out.
    later = send(live, {"recipient": crowd[0].upn, "text": "after the quarantine"})
    assert later.status_code == 200, later.text
    assert later.json()["status"] == "delivered"
    assert live.runtime.dispatcher.stats["quarantined"] == 1  # the one that failed while being sent


def test_a_broadcast_that_keeps_failing_is_quarantined_and_the_next_one_goes_out(
    fast_live: LiveApp, connector: FakeConnector
) -> None:
    from teams_proactive.bot.model import Broadcast

    store = fast_live.runtime.store
    crowd = people(2, tenant_id="tenant-contoso", prefix="few")
    fast_live.runtime.call(seed(store, crowd, connector.service_url("a")), timeout=30)
    # Decodes, but says its list is in two chunks that were never written: expanding it raises.
    lost = Broadcast(
        id="chunks-lost", owner="planted", tenant_id="tenant-contoso", content={"text": "x"}, recipients=[]
    )
    lost.recipient_chunks = 2
    fast_live.runtime.call(store.broadcasts.create(lost), timeout=30)

    started = fast_live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [p.upn for p in crowd], "text": "still"}
    )
    assert started.status_code == 200, started.text
    location = f"/api/v1/broadcasts/{started.json()['id']}"
    done = eventually(lambda: (r := fast_live.api("GET", location, API_KEY).json())["status"] == "completed" and r)
    assert done["counts"]["delivered"] == 2

    def moved() -> list[Any]:
        return fast_live.runtime.call(store.quarantine.list(kind="broadcast"), timeout=30)

    (record,) = eventually(moved, timeout=60)
    assert record.record_id == "chunks-lost" and record.reason.startswith("RuntimeError")
    assert eventually(lambda: quarantined(fast_live)["broadcast"] == 1.0)
