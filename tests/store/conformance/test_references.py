"""Conformance of ``store.references`` (every backend): conditional writes, updates, resolving recipients, listing, expiry."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from teams_proactive.bot.model import (
    Reference,
    ReferenceStatus,
    Surface,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, Store

from tests.store.conformance.factories import (
    make_ref,
    race_first_write,
    write_new,
)


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
