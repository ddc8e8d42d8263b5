"""The store conformance suite: every backend (memory, SQLite, Cosmos DB) runs it unchanged.

Each test states one documented behaviour of ``teams_proactive.bot.store.base.Store``. Concurrency is exercised with
real concurrent tasks (threads for SQLite, concurrent requests for Cosmos DB), never with sleeps;
time-dependent behaviour (leases, due times, expiry) is driven by the ``at`` arguments and by
timestamps in the past.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import pytest
from teams_proactive.bot.model import (
    ApiKey,
    Broadcast,
    Delivery,
    DeliveryStatus,
    Notification,
    Reference,
    ReferenceStatus,
    Subscription,
    Surface,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, Store

_seq = itertools.count(1)


def make_ref(tenant: str = "t1", user: str = "u1", surface: str = Surface.TEAMS, **fields: Any) -> Reference:
    n = next(_seq)
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "user_key": user,
        "surface": surface,
        "conversation_id": f"a:conv-{user}-{surface}-{n}",
        "service_url": "https://smba.example/teams/",
        "channel_id": "m365extensions" if surface == Surface.M365_COPILOT else "msteams",
        "user_id": f"29:{user}",
        "bot_id": "28:bot",
        "conversation_reference": {"conversation": {"id": f"a:conv-{user}"}, "serviceUrl": "https://smba.example/"},
    }
    values.update(fields)
    return Reference(**values)


def make_delivery(delivery_id: str | None = None, **fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": delivery_id or uuid.uuid4().hex,
        "owner": "key-a",
        "tenant_id": "t1",
        "user_key": "u1",
        "recipient": "adele@contoso.example",
        "content": {"text": "hello"},
    }
    values.update(fields)
    return Delivery(**values)


def make_broadcast(broadcast_id: str | None = None, **fields: Any) -> Broadcast:
    values: dict[str, Any] = {
        "id": broadcast_id or uuid.uuid4().hex,
        "owner": "key-a",
        "tenant_id": "t1",
        "content": {"text": "to everyone"},
        "recipients": ["a@contoso.example", "b@contoso.example"],
    }
    values.update(fields)
    return Broadcast(**values)


async def write_new(store: Store, ref: Reference) -> Reference:
    return await store.references.write(ref, None)


def race_first_write(store: Store, method: str, interfere: Any) -> list[int]:
    """Make the first call of ``store.<method>`` lose a race: another writer changes the record
    between the caller's read and its write. Returns a list whose length counts the calls."""
    original = getattr(store, method)
    calls: list[int] = []

    async def racing(record: Any, etag: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            await interfere(original)
        return await original(record, etag)

    setattr(store, method, racing)
    return calls


# ---- references ---------------------------------------------------------------------------------
async def test_ping(store: Store) -> None:
    await store.ping()


async def test_reference_create_read_replace(store: Store) -> None:
    created = await write_new(store, make_ref(name="Adele", upn="adele@contoso.example", timezone="Europe/Paris"))
    assert created.etag
    read = await store.references.get("t1", "u1", Surface.TEAMS)
    assert read is not None and read.etag == created.etag
    assert (read.name, read.upn, read.timezone) == ("Adele", "adele@contoso.example", "Europe/Paris")
    assert read.conversation_reference == created.conversation_reference

    read.status = ReferenceStatus.BLOCKED
    replaced = await store.references.write(read, read.etag)
    assert replaced.etag and replaced.etag != created.etag
    again = await store.references.get("t1", "u1", Surface.TEAMS)
    assert again is not None and again.status == ReferenceStatus.BLOCKED and again.etag == replaced.etag


async def test_reference_missing_reads_none(store: Store) -> None:
    assert await store.references.get("t1", "nobody", Surface.TEAMS) is None
    assert await store.references.of_person("t1", "nobody") == []


async def test_reference_create_twice_conflicts(store: Store) -> None:
    await write_new(store, make_ref())
    with pytest.raises(ConcurrencyConflict):
        await write_new(store, make_ref())


async def test_reference_stale_etag_conflicts_and_changes_nothing(store: Store) -> None:
    first = await write_new(store, make_ref(name="v1"))
    first.name = "v2"
    second = await store.references.write(first, first.etag)
    stale = second.copy()
    stale.name = "v3"
    with pytest.raises(ConcurrencyConflict):
        await store.references.write(stale, first.etag)
    current = await store.references.get("t1", "u1", Surface.TEAMS)
    assert current is not None and current.name == "v2" and current.etag == second.etag


async def test_reference_replace_of_missing_conflicts(store: Store) -> None:
    with pytest.raises(ConcurrencyConflict):
        await store.references.write(make_ref(), "no-such-etag")


async def test_person_references_are_one_persons_surfaces_sorted(store: Store) -> None:
    for surface in (Surface.TEAMS_COPILOT, Surface.TEAMS, Surface.M365_COPILOT):
        await write_new(store, make_ref(surface=surface))
    await write_new(store, make_ref(user="u2"))
    await write_new(store, make_ref(tenant="t2"))
    refs = await store.references.of_person("t1", "u1")
    assert [r.surface for r in refs] == sorted([Surface.TEAMS, Surface.TEAMS_COPILOT, Surface.M365_COPILOT])
    assert all((r.tenant_id, r.user_key) == ("t1", "u1") and r.etag for r in refs)


async def test_update_reference_creates_changes_and_skips(store: Store) -> None:
    def create(current: Reference | None) -> Reference:
        assert current is None
        return make_ref(name="created")

    created = await store.references.update("t1", "u1", Surface.TEAMS, create)
    assert created is not None and created.name == "created" and created.etag

    def rename(current: Reference | None) -> Reference:
        assert current is not None
        current.name = "renamed"
        return current

    renamed = await store.references.update("t1", "u1", Surface.TEAMS, rename)
    assert renamed is not None and renamed.name == "renamed" and renamed.updated_at >= created.updated_at
    unchanged = await store.references.update("t1", "u1", Surface.TEAMS, lambda current: None)
    assert unchanged is not None and unchanged.etag == renamed.etag


async def test_update_reference_retries_when_a_concurrent_writer_wins(store: Store) -> None:
    """An activity and a failed send update the same reference: both changes survive."""
    await write_new(store, make_ref(name="Adele"))

    async def failed_send(write: Any) -> None:
        other = await store.references.get("t1", "u1", Surface.TEAMS)
        assert other is not None
        other.failures += 1
        other.last_error = "ConversationNotFound"
        await write(other, other.etag)

    calls = race_first_write(store.references, "write", failed_send)
    changes = 0

    def activity(current: Reference | None) -> Reference:
        nonlocal changes
        changes += 1
        assert current is not None
        current.timezone = "Europe/Oslo"
        return current

    result = await store.references.update("t1", "u1", Surface.TEAMS, activity)
    assert len(calls) == 2  # our write lost the race, our retried write won
    assert changes == 2
    assert result is not None
    stored = await store.references.get("t1", "u1", Surface.TEAMS)
    assert stored is not None and (stored.timezone, stored.failures, stored.last_error) == (
        "Europe/Oslo",
        1,
        "ConversationNotFound",
    )


async def test_concurrent_updates_of_one_reference_all_survive(store: Store) -> None:
    await write_new(store, make_ref())

    def bump(current: Reference | None) -> Reference:
        assert current is not None
        current.failures += 1
        return current

    await asyncio.gather(*(store.references.update("t1", "u1", Surface.TEAMS, bump) for _ in range(8)))
    stored = await store.references.get("t1", "u1", Surface.TEAMS)
    assert stored is not None and stored.failures == 8


async def test_update_person_changes_every_surface(store: Store) -> None:
    for surface in (Surface.TEAMS, Surface.TEAMS_COPILOT, Surface.M365_COPILOT):
        await write_new(store, make_ref(surface=surface))
    await write_new(store, make_ref(user="u2"))

    def opt_out(current: Reference) -> Reference:
        current.opted_out = True
        return current

    updated = await store.references.update_person("t1", "u1", opt_out)
    assert len(updated) == 3
    assert all(r.opted_out for r in await store.references.of_person("t1", "u1"))
    other = await store.references.get("t1", "u2", Surface.TEAMS)
    assert other is not None and not other.opted_out


# ---- resolving recipients -----------------------------------------------------------------------
async def test_resolve_by_object_id_upn_or_email_ignoring_case(store: Store) -> None:
    aad = str(uuid.uuid4())
    await write_new(
        store, make_ref(user=aad, aad_object_id=aad, upn="Adele.Vance@Contoso.example", email="adele@mail.example")
    )
    person = [PersonKey("t1", aad)]
    assert await store.references.resolve(aad.upper(), None) == person
    assert await store.references.resolve("adele.vance@contoso.EXAMPLE", None) == person
    assert await store.references.resolve("  ADELE@mail.example ", "t1") == person
    assert await store.references.resolve("someone@contoso.example", None) == []


async def test_resolve_is_per_tenant(store: Store) -> None:
    await write_new(store, make_ref(tenant="t1", user="u1", upn="same@contoso.example"))
    await write_new(store, make_ref(tenant="t2", user="u9", upn="same@contoso.example"))
    everywhere = await store.references.resolve("same@contoso.example", None)
    assert sorted(everywhere, key=lambda k: k.tenant_id) == [PersonKey("t1", "u1"), PersonKey("t2", "u9")]
    assert await store.references.resolve("same@contoso.example", "t2") == [PersonKey("t2", "u9")]
    assert await store.references.resolve("same@contoso.example", "t3") == []


async def test_resolve_names_a_person_once_across_surfaces(store: Store) -> None:
    for surface in (Surface.TEAMS, Surface.TEAMS_COPILOT):
        await write_new(store, make_ref(surface=surface, upn="adele@contoso.example"))
    assert await store.references.resolve("adele@contoso.example", "t1") == [PersonKey("t1", "u1")]


async def test_resolve_finds_a_value_on_any_surface(store: Store) -> None:
    await write_new(store, make_ref(user="copilot-only", surface=Surface.M365_COPILOT, upn="cp@contoso.example"))
    await write_new(store, make_ref(user="mixed", surface=Surface.TEAMS, upn="mixed.new@contoso.example"))
    await write_new(store, make_ref(user="mixed", surface=Surface.TEAMS_COPILOT, upn="mixed.old@contoso.example"))
    assert await store.references.resolve("cp@contoso.example", "t1") == [PersonKey("t1", "copilot-only")]
    assert await store.references.resolve("mixed.old@contoso.example", "t1") == [PersonKey("t1", "mixed")]
    assert await store.references.resolve("mixed.new@contoso.example", "t1") == [PersonKey("t1", "mixed")]


async def test_resolve_follows_identity_learnt_later_and_changed(store: Store) -> None:
    await write_new(store, make_ref())
    assert await store.references.resolve("adele@contoso.example", None) == []

    def learn(current: Reference) -> Reference:
        current.upn = "adele@contoso.example"
        return current

    await store.references.update_person("t1", "u1", learn)  # the member lookup after the first activity
    assert await store.references.resolve("adele@contoso.example", None) == [PersonKey("t1", "u1")]

    def rename(current: Reference) -> Reference:
        current.upn = "adele.vance@contoso.example"
        return current

    await store.references.update_person("t1", "u1", rename)
    assert await store.references.resolve("adele.vance@contoso.example", None) == [PersonKey("t1", "u1")]
    assert await store.references.resolve("adele@contoso.example", None) == []


async def test_delete_person_erases_every_reference(store: Store) -> None:
    for surface in (Surface.TEAMS, Surface.M365_COPILOT):
        await write_new(store, make_ref(surface=surface, upn="adele@contoso.example"))
    await write_new(store, make_ref(user="u2", upn="other@contoso.example"))
    assert await store.references.delete_person("t1", "u1") == 2
    assert await store.references.of_person("t1", "u1") == []
    assert await store.references.resolve("adele@contoso.example", None) == []
    assert await store.references.resolve("other@contoso.example", None) == [PersonKey("t1", "u2")]
    assert await store.references.delete_person("t1", "u1") == 0
    # The person can come back (a new install after ForgetRecipient).
    await write_new(store, make_ref(upn="adele@contoso.example"))
    assert await store.references.resolve("adele@contoso.example", None) == [PersonKey("t1", "u1")]


# ---- listing references -------------------------------------------------------------------------
async def test_list_references_pages_with_tokens(store: Store) -> None:
    expected = set()
    for i in range(7):
        ref = await write_new(store, make_ref(user=f"u{i}"))
        expected.add(ref.key)
    seen: list[tuple[str, str, str]] = []
    token = None
    pages = 0
    while True:
        page = await store.references.page(tenant_id=None, status=None, surface=None, limit=3, token=token)
        pages += 1
        assert len(page.items) <= 3
        seen += [r.key for r in page.items]
        token = page.next_token
        if token is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7 and set(seen) == expected
    assert seen == sorted(seen, key=lambda key: "|".join(key))  # a stable order: by record id
    exact = await store.references.page(tenant_id=None, status=None, surface=None, limit=7, token=None)
    assert len(exact.items) == 7 and exact.next_token is None


async def test_list_references_filters(store: Store) -> None:
    await write_new(store, make_ref(user="u1"))
    await write_new(store, make_ref(user="u2", status=ReferenceStatus.UNINSTALLED))
    await write_new(store, make_ref(user="u2", surface=Surface.M365_COPILOT))
    await write_new(store, make_ref(tenant="t2", user="u3", status=ReferenceStatus.BLOCKED))

    async def keys(**filters: Any) -> set[tuple[str, str, str]]:
        query: dict[str, Any] = {"tenant_id": None, "status": None, "surface": None} | filters
        page = await store.references.page(**query, limit=100, token=None)
        assert page.next_token is None
        return {r.key for r in page.items}

    assert await keys(tenant_id="t1") == {("t1", "u1", "teams"), ("t1", "u2", "teams"), ("t1", "u2", "m365-copilot")}
    assert await keys(status=ReferenceStatus.UNINSTALLED) == {("t1", "u2", "teams")}
    assert await keys(surface=Surface.M365_COPILOT) == {("t1", "u2", "m365-copilot")}
    assert await keys(tenant_id="t2", status=ReferenceStatus.BLOCKED, surface=Surface.TEAMS) == {("t2", "u3", "teams")}
    assert await keys(tenant_id="t2", status=ReferenceStatus.ACTIVE) == set()


async def test_tenant_service_url_is_the_newest_seen(store: Store) -> None:
    t = now()
    await write_new(store, make_ref(user="u1", service_url="https://smba.example/old/", last_seen=t - 100))
    await write_new(store, make_ref(user="u2", service_url="https://smba.example/new/", last_seen=t - 10))
    await write_new(store, make_ref(user="u3", service_url="https://smba.example/mid/", last_seen=t - 50))
    await write_new(
        store,
        make_ref(user="u4", surface=Surface.M365_COPILOT, service_url="https://m365.example/", last_seen=t),
    )
    await write_new(store, make_ref(tenant="t2", service_url="https://smba.example/t2/", last_seen=t))
    assert await store.references.tenant_service_url("t1", "msteams") == "https://smba.example/new/"
    assert await store.references.tenant_service_url("t1", "m365extensions") == "https://m365.example/"
    assert await store.references.tenant_service_url("t9", "msteams") is None


# ---- deliveries (the outbox) --------------------------------------------------------------------
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


# ---- broadcasts ---------------------------------------------------------------------------------
async def test_broadcast_lifecycle(store: Store) -> None:
    assert await store.broadcasts.get("missing") is None
    created = await store.broadcasts.create(make_broadcast("b1"))
    assert created.etag
    with pytest.raises(ConcurrencyConflict):
        await store.broadcasts.create(make_broadcast("b1"))
    await store.broadcasts.create(make_broadcast("b2", status="running"))
    await store.broadcasts.create(make_broadcast("b3", status="completed"))
    assert {b.id for b in await store.broadcasts.unfinished()} == {"b1", "b2"}

    read = await store.broadcasts.get("b1")
    assert read is not None and read.recipients == ["a@contoso.example", "b@contoso.example"]
    read.status = "running"
    read.total = 2
    written = await store.broadcasts.write(read, read.etag or "")
    with pytest.raises(ConcurrencyConflict):
        await store.broadcasts.write(read, read.etag or "")

    async def skip_one(write: Any) -> None:
        other = await store.broadcasts.get("b1")
        assert other is not None
        other.skipped = [{"recipient": "x", "code": "RecipientNotFound", "message": "never seen"}]
        await write(other, other.etag)

    race_first_write(store.broadcasts, "write", skip_one)

    def complete(current: Broadcast) -> Broadcast:
        current.status = "completed"
        return current

    done = await store.broadcasts.update("b1", complete)
    assert done is not None and done.etag != written.etag
    final = await store.broadcasts.get("b1")
    assert final is not None and final.status == "completed" and len(final.skipped) == 1
    assert {b.id for b in await store.broadcasts.unfinished()} == {"b2"}
    assert sorted(await store.broadcasts.ids()) == ["b1", "b2", "b3"]
    await store.broadcasts.create(make_broadcast("gone", status="completed", expires_at=now() - 1))
    assert "gone" not in await store.broadcasts.ids()  # past its retention: as good as deleted


# ---- API keys and subscriptions -----------------------------------------------------------------
async def test_api_keys(store: Store) -> None:
    assert await store.keys.get("missing") is None
    flows = await store.keys.create(ApiKey(id="k1", name="flows", secret_hash="h1", scopes=["send"]))
    assert flows.etag
    await store.keys.create(ApiKey(id="k2", name="agents", secret_hash="h2", scopes=["send"], tenant_id="t1"))
    with pytest.raises(ConcurrencyConflict):
        await store.keys.create(ApiKey(id="k3", name="flows", secret_hash="h3", scopes=["admin"]))
    assert await store.keys.get("k3") is None
    assert [k.name for k in await store.keys.list_all()] == ["agents", "flows"]

    read = await store.keys.get("k1")
    assert read is not None and (read.secret_hash, read.scopes) == ("h1", ["send"])
    read.revoked_at = now()
    revoked = await store.keys.write(read, read.etag or "")
    assert revoked.etag != read.etag
    with pytest.raises(ConcurrencyConflict):
        await store.keys.write(read, read.etag or "")
    again = await store.keys.get("k1")
    assert again is not None and again.revoked_at is not None


async def test_concurrent_keys_with_one_name_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.keys.create(ApiKey(id=f"k{i}", name="same", secret_hash="h", scopes=["send"])) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ApiKey) for r in results) == 1
    assert all(isinstance(r, ApiKey | ConcurrencyConflict) for r in results)
    assert [k.name for k in await store.keys.list_all()] == ["same"]


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


# ---- notifications (the webhook callback outbox) ------------------------------------------------
def make_notification(notification_id: str | None = None, **fields: Any) -> Notification:
    values: dict[str, Any] = {
        "id": notification_id or uuid.uuid4().hex,
        "subscription_id": "s1",
        "body": {"event": "userMessage", "text": "where is my laptop?"},
        "tenant_id": "t1",
        "user_key": "u1",
    }
    values.update(fields)
    return Notification(**values)


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


# ---- leases -------------------------------------------------------------------------------------
async def test_leases(store: Store) -> None:
    assert await store.leases.acquire("dispatcher", "a", 30) is True
    assert await store.leases.acquire("dispatcher", "b", 30) is False  # held by another
    assert await store.leases.acquire("dispatcher", "a", 30) is True  # renewed by its holder
    assert await store.leases.acquire("other", "b", 30) is True  # leases are per name
    await store.leases.release("dispatcher", "b")  # not b's to release
    assert await store.leases.acquire("dispatcher", "b", 30) is False
    await store.leases.release("dispatcher", "a")
    assert await store.leases.acquire("dispatcher", "b", 0) is True
    # b's lease ran out at once (0 s): anyone may take it over.
    assert await store.leases.acquire("dispatcher", "c", 30) is True
    assert await store.leases.acquire("dispatcher", "b", 30) is False


async def test_concurrent_lease_acquirers_one_wins(store: Store) -> None:
    results = await asyncio.gather(*(store.leases.acquire("dispatcher", f"o{i}", 30) for i in range(10)))
    assert results.count(True) == 1


# ---- expiry -------------------------------------------------------------------------------------
async def test_expired_reference_is_invisible(store: Store) -> None:
    past = now() - 1
    await write_new(
        store,
        make_ref(user="gone", upn="gone@contoso.example", service_url="https://smba.example/gone/", expires_at=past),
    )
    await write_new(store, make_ref(user="live", upn="live@contoso.example", last_seen=now() - 1000))
    assert await store.references.get("t1", "gone", Surface.TEAMS) is None
    assert await store.references.of_person("t1", "gone") == []
    assert await store.references.resolve("gone@contoso.example", None) == []
    page = await store.references.page(tenant_id=None, status=None, surface=None, limit=10, token=None)
    assert [r.user_key for r in page.items] == ["live"]
    assert await store.references.tenant_service_url("t1", "msteams") == "https://smba.example/teams/"
    # An expired record counts as absent: creating it again works.
    again = await write_new(store, make_ref(user="gone", upn="gone@contoso.example"))
    assert again.etag and await store.references.resolve("gone@contoso.example", None) == [PersonKey("t1", "gone")]


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


async def test_expired_broadcast_is_invisible(store: Store) -> None:
    await store.broadcasts.create(make_broadcast("b1", expires_at=now() - 1))
    assert await store.broadcasts.get("b1") is None
    assert await store.broadcasts.unfinished() == []
    again = await store.broadcasts.create(make_broadcast("b1"))
    assert again.etag and await store.broadcasts.get("b1") is not None


async def test_reference_expiry_is_opt_in_and_sliding(store: Store, ttl_store: Store) -> None:
    assert store.references.expiry(now()) is None  # REFERENCE_TTL_DAYS unset: nothing ever expires
    store = ttl_store
    t = now()
    assert store.references.expiry(t) == t + 3600

    def seen_at(moment: float) -> Any:
        def refresh(current: Reference | None) -> Reference:
            ref = current or make_ref(upn="adele@contoso.example")
            ref.last_seen = moment
            ref.expires_at = store.references.expiry(moment)  # what capture does on every activity
            return ref

        return refresh

    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(t - 4000))  # last seen 4000 s ago
    assert await store.references.get("t1", "u1", Surface.TEAMS) is None
    assert await store.references.resolve("adele@contoso.example", "t1") == []
    refreshed = await store.references.update("t1", "u1", Surface.TEAMS, seen_at(t))  # a new activity
    assert refreshed is not None and refreshed.expires_at == t + 3600
    assert await store.references.resolve("adele@contoso.example", "t1") == [PersonKey("t1", "u1")]
    slid = await store.references.update("t1", "u1", Surface.TEAMS, seen_at(t + 600))
    assert slid is not None and slid.expires_at == t + 4200


async def test_state_documents_are_replaced_and_read_back(store: Store) -> None:
    assert await store.leases.read_state("pacing") is None
    await store.leases.write_state("pacing", {"tenants": {"t1": {"pausedUntil": 12.5, "departures": [1.0, 2.0]}}})
    await store.leases.write_state("other", {"x": 1})
    await store.leases.write_state("pacing", {"tenants": {"t2": {"pausedUntil": 0.0, "departures": []}}})
    assert await store.leases.read_state("pacing") == {"tenants": {"t2": {"pausedUntil": 0.0, "departures": []}}}
    assert await store.leases.read_state("other") == {"x": 1}
