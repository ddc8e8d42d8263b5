"""Conformance of ``store.subscriptions`` (every backend): subscriptions and the webhook notifications outbox."""

from __future__ import annotations

import asyncio

import pytest
from teams_proactive.bot.model import (
    Subscription,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, Store

from tests.store.conformance.factories import (
    make_notification,
)


async def test_subscriptions(store: Store) -> None:
    assert await store.subscriptions.get("missing") is None
    one = Subscription(id="s1", owner="key-a", event="userMessage", callback_url="https://flow.example/1")
    assert (await store.subscriptions.create(one)).etag
    with pytest.raises(ConcurrencyConflict):
        await store.subscriptions.create(one)
    await store.subscriptions.create(
        Subscription(id="s2", owner="key-a", event="cardSubmitted", callback_url="https://flow.example/2")
    )
    read = await store.subscriptions.get("s1")
    assert read is not None and read.callback_url == "https://flow.example/1"
    assert {s.id for s in await store.subscriptions.list_all()} == {"s1", "s2"}
    assert [s.id for s in await store.subscriptions.list_all("cardSubmitted")] == ["s2"]
    assert await store.subscriptions.delete("s1") is True
    assert await store.subscriptions.delete("s1") is False
    assert await store.subscriptions.get("s1") is None


async def test_notifications_are_claimed_once_until_their_lease_lapses(store: Store) -> None:
    t = now()
    await store.subscriptions.create_notifications(
        [make_notification("due", not_before=t - 5), make_notification("later", not_before=t + 60)]
    )
    (claimed,) = await store.subscriptions.claim_notifications("relay-a", t, 10, 30)
    assert claimed.id == "due" and claimed.lease_owner == "relay-a" and claimed.lease_until == pytest.approx(t + 30)
    assert claimed.body == {"event": "userMessage", "text": "where is my laptop?"} and claimed.etag
    assert await store.subscriptions.claim_notifications("relay-b", t, 10, 30) == []  # leased, and "later" is not due
    # relay-a died mid-call: once its lease lapses another relay takes the event over.
    (taken,) = await store.subscriptions.claim_notifications("relay-b", t + 31, 1, 30)
    assert taken.id == "due" and taken.lease_owner == "relay-b"
    # The first claimer's write now fails: the event is someone else's.
    with pytest.raises(ConcurrencyConflict):
        await store.subscriptions.write_notification(claimed, claimed.etag or "")
    assert {n.id for n in await store.subscriptions.claim_notifications("relay-c", t + 60, 10, 30)} == {"later"}


async def test_a_rescheduled_notification_is_due_again_at_its_new_time(store: Store) -> None:
    t = now()
    await store.subscriptions.create_notifications([make_notification("n", not_before=t - 1)])
    (claimed,) = await store.subscriptions.claim_notifications("relay", t, 5, 30)
    claimed.attempts, claimed.not_before = 1, t + 10
    claimed.lease_owner = claimed.lease_until = None
    rescheduled = await store.subscriptions.write_notification(claimed, claimed.etag or "")
    assert rescheduled.etag != claimed.etag
    assert await store.subscriptions.claim_notifications("relay", t + 9, 5, 30) == []
    (again,) = await store.subscriptions.claim_notifications("relay", t + 10, 5, 30)
    assert again.attempts == 1 and again.lease_owner == "relay"
    await store.subscriptions.delete_notification("n")
    await store.subscriptions.delete_notification("n")  # already gone: no error
    assert await store.subscriptions.claim_notifications("relay", t + 100, 5, 30) == []


async def test_concurrent_relays_never_share_a_notification(store: Store) -> None:
    t = now()
    ids = {f"n{i:03}" for i in range(60)}
    await store.subscriptions.create_notifications([make_notification(i, not_before=t - 1) for i in sorted(ids)])
    taken: dict[str, list[str]] = {}

    async def relay(owner: str) -> None:
        while batch := await store.subscriptions.claim_notifications(owner, t, 5, 60):
            for n in batch:
                taken.setdefault(n.id, []).append(owner)

    await asyncio.gather(*(relay(f"relay-{n}") for n in range(8)))
    # Losing every race also yields an empty batch, so a last sweep picks up any leftovers.
    for n in await store.subscriptions.claim_notifications("sweeper", t, 100, 60):
        taken.setdefault(n.id, []).append("sweeper")
    assert set(taken) == ids
    assert {n: owners for n, owners in taken.items() if len(owners) > 1} == {}


async def test_expired_notifications_are_never_claimed(store: Store) -> None:
    t = now()
    await store.subscriptions.create_notifications([make_notification("stale", not_before=t - 100, expires_at=t - 1)])
    assert await store.subscriptions.claim_notifications("relay", t, 5, 30) == []


async def test_forgetting_a_person_drops_their_pending_notifications(store: Store) -> None:
    t = now()
    await store.subscriptions.create_notifications(
        [
            make_notification("adele-1", not_before=t - 1),
            make_notification("adele-2", not_before=t + 30),
            make_notification("megan", user_key="u2", not_before=t - 1),
            make_notification("other-tenant", tenant_id="t2", not_before=t - 1),
        ]
    )
    assert await store.subscriptions.forget_notifications("t1", "u1") == 2
    claimed = await store.subscriptions.claim_notifications("relay", t + 60, 10, 30)
    assert {n.id for n in claimed} == {"megan", "other-tenant"}
