"""Retention and erasure in every backend: the purge, the person index of broadcasts, the erasure queue.

The same behaviour is asked of memory, SQLite and Cosmos DB. What "physically gone" means differs:
memory and SQLite remove expired records in ``purge_expired`` (checked on the raw tables), while
Cosmos DB removes them itself from each item's ``ttl`` (the local test server never enforces TTL, so
there the tests check that every expiring item carries the right ``ttl``, and that reads hide it).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey, Store

from tests.store.conformance.factories import make_broadcast, make_delivery, make_notification, make_ref, write_new


async def _raw(store: Store, kind: str, doc_id: str) -> dict[str, Any] | None:
    """The stored document as the backend holds it, expired or not (None when physically absent)."""
    backend = type(store).__name__
    if backend == "MemoryStore":
        table = {
            "references": store.db.refs,  # type: ignore[attr-defined]
            "deliveries": store.db.deliveries,  # type: ignore[attr-defined]
            "broadcasts": store.db.broadcasts,  # type: ignore[attr-defined]
            "notifications": store.db.notifications,  # type: ignore[attr-defined]
        }[kind]
        record = table.get(doc_id)
        return record.to_doc() if record is not None else None
    if backend == "SqliteStore":
        table = {"references": "refs"}.get(kind, kind)
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            row = conn.execute(f"SELECT body FROM {table} WHERE id=?", (doc_id,)).fetchone()
        import json

        return json.loads(row[0]) if row else None
    container, pk = kind, doc_id
    if kind == "references":
        tenant, user, surface = doc_id.split("|")
        doc_id, pk = surface, f"{tenant}|{user}"
    return await store.db.read(container, doc_id, pk)  # type: ignore[attr-defined]


def _enforces_ttl_itself(store: Store) -> bool:
    return type(store).__name__ == "CosmosStore"


async def test_purge_removes_what_expired_and_keeps_the_rest(store: Store) -> None:
    t = now()
    await write_new(store, make_ref(user="old", upn="old@contoso.example", expires_at=t - 10))
    await write_new(store, make_ref(user="live", expires_at=t + 3600))
    await write_new(store, make_ref(user="forever"))
    await store.outbox.create(make_delivery("d-old", content={"text": "EXPIRED-TEXT"}, expires_at=t - 10))
    await store.outbox.create(make_delivery("d-live", expires_at=t + 3600))
    await store.outbox.create(make_delivery("d-pending"))
    await store.outbox.create(make_delivery("w-old", kind="cardWait", expires_at=t - 1))
    await store.broadcasts.create(make_broadcast("b-old", expires_at=t - 10))
    await store.broadcasts.create(make_broadcast("b-live", expires_at=t + 3600))
    await store.subscriptions.create_notifications(
        [make_notification("n-old", expires_at=t - 10), make_notification("n-live", expires_at=t + 3600)]
    )

    counts = await store.purge_expired(now())

    gone = [
        ("references", "t1|old|teams"), ("deliveries", "d-old"), ("deliveries", "w-old"),
        ("broadcasts", "b-old"), ("notifications", "n-old"),
    ]  # fmt: skip
    kept = [
        ("references", "t1|live|teams"), ("references", "t1|forever|teams"), ("deliveries", "d-live"),
        ("deliveries", "d-pending"), ("broadcasts", "b-live"), ("notifications", "n-live"),
    ]  # fmt: skip
    for kind, doc_id in kept:
        assert await _raw(store, kind, doc_id) is not None, (kind, doc_id)
    if _enforces_ttl_itself(store):
        assert counts == {}
        for kind, doc_id in gone:
            doc = await _raw(store, kind, doc_id)
            assert doc is not None and doc.get("ttl") == 1, (kind, doc_id, doc)  # due now: Cosmos DB removes it
        for kind, doc_id in kept:
            doc = await _raw(store, kind, doc_id)
            assert doc is not None
            assert ("ttl" in doc) == (doc.get("expires_at") is not None), (kind, doc_id)
    else:
        for kind, doc_id in gone:
            assert await _raw(store, kind, doc_id) is None, (kind, doc_id)
        assert counts["references"] == 1 and counts["deliveries"] == 2
        assert counts["broadcasts"] == 1 and counts["notifications"] == 1
    # Either way nothing expired is readable, nor resolvable.
    assert await store.outbox.get("d-old") is None and await store.broadcasts.get("b-old") is None
    assert await store.references.resolve("old@contoso.example", None) == []
    assert await store.outbox.get("d-pending") is not None


async def test_purge_removes_lapsed_leases_but_not_held_ones(store: Store) -> None:
    assert await store.leases.acquire("dispatcher", "a", 60)
    assert await store.leases.acquire("old-lease", "b", -1000)  # lapsed long ago (its holder died)
    await store.purge_expired(now())
    assert not await store.leases.acquire("dispatcher", "x", 60)  # still held by "a"
    assert await store.leases.acquire("dispatcher", "a", 60)
    if type(store).__name__ == "SqliteStore":
        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            assert [r[0] for r in conn.execute("SELECT name FROM leases")] == ["dispatcher"]
    elif type(store).__name__ == "MemoryStore":
        assert list(store.db.leases) == ["dispatcher"]  # type: ignore[attr-defined]
    assert await store.leases.acquire("old-lease", "c", 10)


async def test_broadcast_index_finds_broadcasts_by_key_and_forgets_them(store: Store) -> None:
    t = now()
    await store.broadcasts.index("b1", ["k-adele", "k-bob"], t + 3600)
    await store.broadcasts.index("b2", ["k-adele"], None)
    await store.broadcasts.index("b2", ["k-adele"], None)  # idempotent
    await store.broadcasts.index("b-old", ["k-adele"], t - 5)  # its broadcast's retention ran out
    found = await store.broadcasts.indexed(["k-adele", "k-nobody"])
    assert set(found) - {"b-old"} == {"b1", "b2"}
    assert await store.broadcasts.indexed(["k-bob"]) == ["b1"]
    assert await store.broadcasts.indexed([]) == []
    await store.purge_expired(now())
    if not _enforces_ttl_itself(store):
        assert sorted(await store.broadcasts.indexed(["k-adele"])) == ["b1", "b2"]

    await store.broadcasts.forget_index(["k-adele"])
    assert await store.broadcasts.indexed(["k-adele"]) == []
    assert await store.broadcasts.indexed(["k-bob"]) == ["b1"]


async def test_erasures_are_queued_once_and_done(store: Store) -> None:
    adele, bob = PersonKey("t1", "adele"), PersonKey("t2", "bob")
    assert await store.erasures.pending(10) == []
    await store.erasures.queue(adele)
    await store.erasures.queue(bob)
    await store.erasures.queue(adele)  # asked again before it was done: still one
    pending = await store.erasures.pending(10)
    assert sorted(pending, key=lambda p: p.user_key) == [adele, bob]
    assert len(await store.erasures.pending(1)) == 1
    await store.erasures.done(adele)
    await store.erasures.done(adele)  # done twice (two leaders in turn): no error
    assert await store.erasures.pending(10) == [bob]


@pytest.mark.parametrize("backend", ["cosmos"], indirect=True)
@pytest.mark.cosmos
async def test_cosmos_leases_carry_a_ttl(store: Store) -> None:
    assert await store.leases.acquire("dispatcher", "a", 10)
    doc = await store.db.read("leases", "dispatcher", "dispatcher")  # type: ignore[attr-defined]
    assert doc is not None and 10 < doc["ttl"] <= 10 + 300 + 1
