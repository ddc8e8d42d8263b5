"""Conformance of ``store.quarantine`` (every backend): records moved aside, listed, counted, cleared and
purged; and, on SQLite and Cosmos DB, a record no codec can read planted among good ones is moved
aside by the read that meets it while the others are claimed."""

from __future__ import annotations

import pytest
from teams_proactive.bot.model import Notification, now
from teams_proactive.bot.store.base import PersonKey, Store

from tests.store.conformance.factories import make_broadcast, make_delivery, make_ref, write_new
from tests.support.plant import SECRET, plant_undecodable, sqlite_plant


async def test_a_record_moved_aside_is_read_by_no_loop_and_listed_with_its_reason(store: Store) -> None:
    await store.outbox.create(make_delivery("bad"))
    await store.outbox.create(make_delivery("good"))
    await store.broadcasts.create(make_broadcast("b-bad"))
    await store.broadcasts.create(make_broadcast("b-good"))

    assert await store.quarantine.isolate("delivery", "bad", "AttributeError: processing failed") is True
    assert await store.quarantine.isolate("broadcast", "b-bad", "KeyError") is True
    assert await store.quarantine.isolate("delivery", "bad", "again") is False  # already moved
    assert await store.quarantine.isolate("delivery", "missing", "x") is False

    assert await store.outbox.get("bad") is None
    assert [d.id for d in await store.outbox.claim_due("me", now(), 10, 30)] == ["good"]
    assert [b.id for b in await store.broadcasts.unfinished()] == ["b-good"]

    listed = {(q.kind, q.record_id): q for q in await store.quarantine.list()}
    assert set(listed) == {("delivery", "bad"), ("broadcast", "b-bad")}
    assert listed[("delivery", "bad")].reason == "AttributeError: processing failed"
    assert listed[("delivery", "bad")].expires_at > now()
    assert [q.record_id for q in await store.quarantine.list(kind="broadcast")] == ["b-bad"]
    assert await store.quarantine.counts() == {"delivery": 1, "broadcast": 1, "notification": 0, "reference": 0}

    assert await store.quarantine.remove("delivery", "bad") is True
    assert await store.quarantine.remove("delivery", "bad") is False
    assert await store.quarantine.counts() == {"delivery": 0, "broadcast": 1, "notification": 0, "reference": 0}


async def test_quarantined_records_go_when_their_retention_ends(store: Store) -> None:
    await store.outbox.create(make_delivery("old"))
    store.quarantine.keep_seconds = -1.0  # kept until a moment already past
    await store.quarantine.isolate("delivery", "old", "ValueError")
    assert await store.quarantine.list() == []
    assert await store.quarantine.counts() == {"delivery": 0, "broadcast": 0, "notification": 0, "reference": 0}
    purged = await store.purge_expired(now())
    assert purged.get("quarantine", 0) in (0, 1)  # Cosmos DB removes it by its ttl, the others here


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)], indirect=True)
async def test_an_undecodable_record_is_moved_aside_and_the_others_are_read(store: Store, backend: str) -> None:
    for n in range(3):
        await store.outbox.create(make_delivery(f"good-{n}"))
    await store.broadcasts.create(make_broadcast("b-good"))
    await store.subscriptions.create_notifications(
        [Notification(id="n-good", subscription_id="s1", body={"x": 1}, not_before=0.0)]
    )
    await plant_undecodable(store, backend, "delivery", "planted")
    await plant_undecodable(store, backend, "broadcast", "b-planted")
    await plant_undecodable(store, backend, "notification", "n-planted")
    await write_new(store, make_ref("t1", "u-good"))
    await plant_undecodable(store, backend, "reference", "t1|u-planted|teams")

    claimed = await store.outbox.claim_due("me", now(), 10, 30)
    assert sorted(d.id for d in claimed) == ["good-0", "good-1", "good-2"]
    assert [b.id for b in await store.broadcasts.unfinished()] == ["b-good"]
    assert [n.id for n in await store.subscriptions.claim_notifications("me", now(), 10, 30)] == ["n-good"]
    page = await store.references.page(tenant_id="t1", status=None, surface=None, limit=10, token=None)
    assert [r.user_key for r in page.items] == ["u-good"]
    # Read again: nothing left to trip over.
    assert await store.outbox.claim_due("me", now(), 10, 30) == []
    assert [b.id for b in await store.broadcasts.unfinished()] == ["b-good"]

    listed = {(q.kind, q.record_id): q.reason for q in await store.quarantine.list()}
    assert set(listed) == {
        ("delivery", "planted"),
        ("broadcast", "b-planted"),
        ("notification", "n-planted"),
        ("reference", "t1|u-planted|teams"),
    }
    for reason in listed.values():
        assert reason and SECRET not in reason and "alice" not in reason
    if backend == "sqlite":
        assert "surrogate" in listed[("delivery", "planted")]
    assert await store.quarantine.counts() == {"delivery": 1, "broadcast": 1, "notification": 1, "reference": 1}
    assert await store.references.get("t1", "u-planted", "teams") is None
    assert await store.outbox.get("planted") is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_body_that_is_not_json_at_all_does_not_stop_the_sqlite_claim(store: Store) -> None:
    # SQLite's json_set (the claim marks the batch with it) refuses such a body for the whole batch.
    await store.outbox.create(make_delivery("good"))
    sqlite_plant(store.path, "delivery", "broken", "{not json")
    assert [d.id for d in await store.outbox.claim_due("me", now(), 10, 30)] == ["good"]
    assert [(q.record_id, q.reason) for q in await store.quarantine.list()] == [("broken", "malformed JSON")]


async def test_forgetting_a_person_deletes_what_was_moved_aside_about_them(store: Store) -> None:
    await store.outbox.create(make_delivery("theirs", tenant_id="t1", user_key="u-gone"))
    await store.outbox.create(make_delivery("someone-elses", tenant_id="t1", user_key="u-stays"))
    await store.broadcasts.create(make_broadcast("b1"))
    for kind, record_id in (("delivery", "theirs"), ("delivery", "someone-elses"), ("broadcast", "b1")):
        assert await store.quarantine.isolate(kind, record_id, "ValueError")
    await write_new(store, make_ref("t1", "u-gone"))
    assert await store.quarantine.isolate("reference", "t1|u-gone|teams", "TypeError")
    assert await store.references.get("t1", "u-gone", "teams") is None
    assert await store.quarantine.forget(PersonKey("t1", "u-gone")) == 2
    assert {q.record_id for q in await store.quarantine.list()} == {"someone-elses", "b1"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)], indirect=True)
async def test_a_finished_broadcast_that_cannot_be_read_is_absent_and_moved_aside(store: Store, backend: str) -> None:
    # Listed by ids() (the dashboard's recent broadcasts), then read one by one.
    await plant_undecodable(store, backend, "broadcast", "b-old")
    assert "b-old" in await store.broadcasts.ids()
    assert await store.broadcasts.get("b-old") is None
    assert [q.record_id for q in await store.quarantine.list(kind="broadcast")] == ["b-old"]
    assert "b-old" not in await store.broadcasts.ids()
