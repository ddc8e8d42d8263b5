"""Conformance of ``store.outbox`` (every backend): idempotent creates, conditional writes, claims, due times, counts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from teams_proactive.bot.model import (
    Delivery,
    DeliveryStatus,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, Store

from tests.store.conformance.factories import (
    make_delivery,
    race_first_write,
)


async def test_create_delivery_is_idempotent(store: Store) -> None:
    first, created = await store.outbox.create(make_delivery("d1", content={"text": "first"}))
    assert created and first.etag
    again, created_again = await store.outbox.create(make_delivery("d1", content={"text": "second"}))
    assert not created_again
    assert again.content == {"text": "first"} and again.etag == first.etag
    read = await store.outbox.get("d1")
    assert read is not None and read.content == {"text": "first"} and read.etag == first.etag


async def test_create_deliveries_skips_existing(store: Store) -> None:
    await store.outbox.create(make_delivery("b-1", content={"text": "kept"}))
    created = await store.outbox.create_many([make_delivery(f"b-{i}", broadcast_id="b") for i in range(1, 6)])
    assert created == 4
    assert await store.outbox.create_many([make_delivery(f"b-{i}", broadcast_id="b") for i in range(1, 6)]) == 0
    kept = await store.outbox.get("b-1")
    assert kept is not None and kept.content == {"text": "kept"}
    assert all([await store.outbox.get(f"b-{i}") for i in range(1, 6)])


async def test_delivery_conditional_writes(store: Store) -> None:
    assert await store.outbox.get("missing") is None
    stored, _ = await store.outbox.create(make_delivery("d1"))
    stored.status = DeliveryStatus.DELIVERED
    stored.message_id = "1700000000000"
    written = await store.outbox.write(stored, stored.etag or "")
    assert written.etag != stored.etag
    read = await store.outbox.get("d1")
    assert read is not None and read.status == DeliveryStatus.DELIVERED and read.message_id == "1700000000000"
    with pytest.raises(ConcurrencyConflict):
        await store.outbox.write(stored, stored.etag or "")
    with pytest.raises(ConcurrencyConflict):
        await store.outbox.write(make_delivery("never-created"), "some-etag")


async def test_a_card_with_an_integer_beyond_64_bits_is_stored(store: Store) -> None:
    # A maker's card may carry any number; the JSON a store writes must not refuse it.
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x"}], "data": {"n": 10**30}}
    stored, created = await store.outbox.create(make_delivery("big", content={"card": card}))
    assert created
    stored.status = DeliveryStatus.DELIVERED
    await store.outbox.write(stored, stored.etag or "")
    read = await store.outbox.get("big")
    assert read is not None and read.status == DeliveryStatus.DELIVERED
    assert float(read.content["card"]["data"]["n"]) == float(10**30)


async def test_write_deliveries_writes_each_against_its_own_etag(store: Store) -> None:
    first, _ = await store.outbox.create(make_delivery("g1"))
    stale, _ = await store.outbox.create(make_delivery("g2"))
    third, _ = await store.outbox.create(make_delivery("g3"))
    moved_on = await store.outbox.write(stale, stale.etag or "")  # someone else wrote g2 meanwhile
    for d in (first, stale, third):
        d.status = DeliveryStatus.DELIVERED
    results = await store.outbox.write_many(
        [(first, first.etag or ""), (stale, stale.etag or ""), (third, third.etag or "")]
    )
    assert [r.id if r else None for r in results] == ["g1", None, "g3"]  # the stale one alone is refused
    assert results[0] is not None and results[0].etag not in (None, first.etag)
    read = {d: await store.outbox.get(d) for d in ("g1", "g2", "g3")}
    assert read["g1"] is not None and read["g1"].status == DeliveryStatus.DELIVERED
    assert read["g1"].etag == results[0].etag  # the returned etag is the stored one: it writes again
    assert read["g2"] is not None and read["g2"].status == DeliveryStatus.QUEUED and read["g2"].etag == moved_on.etag
    assert read["g3"] is not None and read["g3"].status == DeliveryStatus.DELIVERED
    assert await store.outbox.write_many([]) == []


async def test_update_delivery_retries_when_a_concurrent_writer_wins(store: Store) -> None:
    await store.outbox.create(make_delivery("d1"))

    async def response_arrives(write: Any) -> None:
        other = await store.outbox.get("d1")
        assert other is not None
        other.response = {"choice": "approve"}
        await write(other, other.etag)

    calls = race_first_write(store.outbox, "write", response_arrives)

    def delivered(current: Delivery) -> Delivery:
        current.status = DeliveryStatus.DELIVERED
        return current

    result = await store.outbox.update("d1", delivered)
    assert len(calls) == 2 and result is not None
    read = await store.outbox.get("d1")
    assert read is not None and read.status == DeliveryStatus.DELIVERED and read.response == {"choice": "approve"}
    assert await store.outbox.update("missing", delivered) is None


async def test_claim_due_takes_due_work_under_a_lease(store: Store) -> None:
    t = now()
    await store.outbox.create(make_delivery("queued", not_before=t - 5))
    await store.outbox.create(make_delivery("scheduled", status=DeliveryStatus.SCHEDULED, not_before=t - 1))
    await store.outbox.create(make_delivery("later", status=DeliveryStatus.SCHEDULED, not_before=t + 3600))
    await store.outbox.create(make_delivery("done", status=DeliveryStatus.DELIVERED, not_before=t - 5))
    await store.outbox.create(make_delivery("failed", status=DeliveryStatus.FAILED, not_before=t - 5))

    claimed = await store.outbox.claim_due("owner-a", t, 10, 30)
    assert {d.id for d in claimed} == {"queued", "scheduled"}
    for d in claimed:
        assert (d.status, d.lease_owner, d.lease_until) == (DeliveryStatus.SENDING, "owner-a", t + 30)
        read = await store.outbox.get(d.id)
        assert read is not None and read.status == DeliveryStatus.SENDING and read.etag == d.etag
    # The claimer can write with the etag it got back.
    first = claimed[0]
    first.status = DeliveryStatus.DELIVERED
    await store.outbox.write(first, first.etag or "")

    assert await store.outbox.claim_due("owner-b", t + 1, 10, 30) == []  # the lease still holds
    lapsed = await store.outbox.claim_due("owner-b", t + 31, 10, 30)  # owner-a died: its lease ran out
    assert [d.id for d in lapsed] == [claimed[1].id] and lapsed[0].lease_owner == "owner-b"
    lapsed[0].status = DeliveryStatus.FAILED
    await store.outbox.write(lapsed[0], lapsed[0].etag or "")
    later = await store.outbox.claim_due("owner-b", t + 3601, 10, 30)
    assert [d.id for d in later] == ["later"]


async def test_claim_due_respects_the_limit(store: Store) -> None:
    t = now()
    await store.outbox.create_many([make_delivery(f"d{i:02}", not_before=t - 1) for i in range(10)])
    first = await store.outbox.claim_due("a", t, 4, 30)
    second = await store.outbox.claim_due("b", t, 4, 30)
    third = await store.outbox.claim_due("c", t, 4, 30)
    assert (len(first), len(second), len(third)) == (4, 4, 2)
    assert len({d.id for d in first + second + third}) == 10


async def test_claim_due_takes_single_messages_before_broadcast_entries(store: Store) -> None:
    t = now()
    await store.outbox.create_many([make_delivery(f"b-{i}", broadcast_id="b", not_before=t - 10) for i in range(5)])
    await store.outbox.create(make_delivery("single-1", not_before=t - 1))
    await store.outbox.create(make_delivery("single-2", not_before=t - 1))
    first = await store.outbox.claim_due("a", t, 2, 30)
    assert {d.id for d in first} == {"single-1", "single-2"}
    rest = await store.outbox.claim_due("a", t, 10, 30)
    assert {d.id for d in rest} == {f"b-{i}" for i in range(5)}


async def test_concurrent_claimers_never_share_a_delivery(store: Store) -> None:
    t = now()
    ids = {f"d{i:03}" for i in range(120)}
    await store.outbox.create_many([make_delivery(i, not_before=t - 1) for i in sorted(ids)])
    taken: dict[str, list[str]] = {}

    async def claimer(owner: str) -> None:
        while True:
            batch = await store.outbox.claim_due(owner, t, 7, 60)
            for d in batch:
                taken.setdefault(d.id, []).append(owner)
            if not batch:
                # Losing every race also yields nothing: stop only when nothing is due any more.
                next_due = await store.outbox.next_due_at()
                if next_due is None or next_due > t:
                    return

    await asyncio.gather(*(claimer(f"owner-{n}") for n in range(12)))
    assert set(taken) == ids
    assert {d: owners for d, owners in taken.items() if len(owners) > 1} == {}


async def test_next_due_at(store: Store) -> None:
    assert await store.outbox.next_due_at() is None
    t = now()
    await store.outbox.create(make_delivery("done", status=DeliveryStatus.DELIVERED, not_before=t - 100))
    assert await store.outbox.next_due_at() is None
    await store.outbox.create(make_delivery("later", status=DeliveryStatus.SCHEDULED, not_before=t + 50))
    assert await store.outbox.next_due_at() == pytest.approx(t + 50)
    await store.outbox.create(make_delivery("soon", not_before=t + 20))
    assert await store.outbox.next_due_at() == pytest.approx(t + 20)
    await store.outbox.claim_due("a", t + 20, 10, 10)  # "soon" is now sending, its lease ends at t + 30
    assert await store.outbox.next_due_at() == pytest.approx(t + 30)


async def test_count_deliveries_by_status(store: Store) -> None:
    statuses = [DeliveryStatus.QUEUED] * 3 + [DeliveryStatus.DELIVERED] * 2 + [DeliveryStatus.FAILED]
    await store.outbox.create_many(
        [make_delivery(f"b1-{i}", broadcast_id="b1", status=s) for i, s in enumerate(statuses)]
        + [make_delivery("b2-0", broadcast_id="b2"), make_delivery("single")]
    )
    assert await store.outbox.count("b1") == {"queued": 3, "delivered": 2, "failed": 1}
    assert await store.outbox.count("b2") == {"queued": 1}
    assert await store.outbox.count("none") == {}


async def test_list_deliveries_filters_and_pages(store: Store) -> None:
    await store.outbox.create_many(
        [
            make_delivery(
                f"b1-{i}", broadcast_id="b1", status=DeliveryStatus.FAILED if i % 2 else DeliveryStatus.DELIVERED
            )
            for i in range(5)
        ]
        + [make_delivery("u2-0", user_key="u2"), make_delivery("t2-0", tenant_id="t2")]
    )
    ids: list[str] = []
    token = None
    while True:
        page = await store.outbox.page(broadcast_id="b1", limit=2, token=token)
        ids += [d.id for d in page.items]
        token = page.next_token
        if token is None:
            break
    assert ids == [f"b1-{i}" for i in range(5)]
    failed = await store.outbox.page(broadcast_id="b1", status=DeliveryStatus.FAILED)
    assert [d.id for d in failed.items] == ["b1-1", "b1-3"] and failed.next_token is None
    mine = await store.outbox.page(person=PersonKey("t1", "u2"))
    assert [d.id for d in mine.items] == ["u2-0"]
    everything = await store.outbox.page(limit=100)
    assert len(everything.items) == 7 and everything.next_token is None


async def test_expired_delivery_is_invisible(store: Store) -> None:
    t = now()
    await store.outbox.create_many(
        [
            make_delivery("old", broadcast_id="b1", status=DeliveryStatus.QUEUED, not_before=t - 10, expires_at=t - 1),
            make_delivery("live", broadcast_id="b1", status=DeliveryStatus.DELIVERED, not_before=t - 10),
        ]
    )
    assert await store.outbox.get("old") is None
    assert [d.id for d in (await store.outbox.page(broadcast_id="b1")).items] == ["live"]
    assert await store.outbox.count("b1") == {"delivered": 1}
    assert await store.outbox.claim_due("a", t, 10, 30) == []
    assert await store.outbox.next_due_at() is None
    # The id is free again (Cosmos DB would have removed the item by now).
    fresh, created = await store.outbox.create(make_delivery("old", content={"text": "new"}))
    assert created and fresh.content == {"text": "new"}
