"""What the Cosmos DB backend promises beyond the shared conformance suite, shown on the wire.

Against the local ``@vercel/cosmosdb-server`` (or a real account, see docs/cosmos.md). What the local
server cannot show: TTL expiry itself (it stores ``ttl`` but never deletes), 429 throttling. The tests check what we write and what the server answers; the reads that
hide expired records are covered for every backend by tests/store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import azure.identity.aio
import pytest
from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient
from azure.cosmos.exceptions import CosmosAccessConditionFailedError
from teams_proactive.bot.model import ApiKey, Broadcast, Delivery, DeliveryStatus, Reference, Surface, now, person_id
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import create_store
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, StoreError
from teams_proactive.bot.store.cosmos import CONTAINERS, CosmosStore
from teams_proactive.bot.store.cosmos.database import ledger_doc_id

from tests.cosmos.conftest import OpenStore
from tests.support.cosmos_fixtures import CosmosTarget

pytestmark = pytest.mark.cosmos

DAY = 86400.0


def make_ref(user: str = "u1", surface: str = Surface.TEAMS, **fields: Any) -> Reference:
    values: dict[str, Any] = {
        "tenant_id": "t1",
        "user_key": user,
        "surface": surface,
        "conversation_id": f"a:{user}",
        "service_url": "https://smba.example/teams/",
        "channel_id": "msteams",
        "user_id": f"29:{user}",
        "bot_id": "28:bot",
        "upn": f"{user}@contoso.example",
    }
    values.update(fields)
    return Reference(**values)


def seen_at(store: CosmosStore, moment: float, user: str = "u1") -> Any:
    """The change capture makes on an activity: last seen now, expiry slides with it."""

    def refresh(current: Reference | None) -> Reference:
        ref = current or make_ref(user)
        ref.last_seen = moment
        ref.expires_at = store.references.expiry(moment)
        return ref

    return refresh


async def raw(store: CosmosStore, container: str, item_id: str, pk: str) -> dict[str, Any]:
    return dict(await store.containers[container].read_item(item_id, partition_key=pk))


async def test_containers_are_created_with_ttl_on_and_no_default_expiry(open_store: OpenStore) -> None:
    store = await open_store()
    assert store.database is not None
    names = {c["id"] async for c in store.database.list_containers()}
    assert names == set(CONTAINERS)
    for name, (path, _) in CONTAINERS.items():
        properties = await store.containers[name].read()
        assert properties["defaultTtl"] == -1, name  # TTL on, nothing expires by default
        assert properties["partitionKey"]["paths"] == [path], name
    # Opening again (a second instance, a restart) finds them and changes nothing.
    again = await open_store()
    assert (await again.containers["references"].read())["defaultTtl"] == -1


async def test_an_existing_container_without_ttl_is_reported(
    cosmos_target: CosmosTarget, cosmos_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Containers made by hand (or by an older version) keep their settings; TTL switched off would
    leave expired records in place, so the operator is told."""
    async with CosmosClient(cosmos_target.endpoint, credential=cosmos_target.key) as client:
        database = await client.create_database_if_not_exists(cosmos_database)
        await database.create_container_if_not_exists("references", partition_key=PartitionKey("/pk"))
    store = CosmosStore(cosmos_target.endpoint, key=cosmos_target.key, database=cosmos_database)
    with caplog.at_level("WARNING", logger="teams_proactive.bot.store.cosmos"):
        await store.open()
    await store.close()
    assert [r.getMessage() for r in caplog.records if "TTL switched off" in r.getMessage()] == [
        "Cosmos container references has TTL switched off: records will be hidden when they expire but never"
        " removed. Set its default time to live to 'On (no default)'."
    ]


async def test_a_container_with_another_partition_key_is_refused(
    cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    async with CosmosClient(cosmos_target.endpoint, credential=cosmos_target.key) as client:
        database = await client.create_database_if_not_exists(cosmos_database)
        await database.create_container_if_not_exists("deliveries", partition_key=PartitionKey("/tenant_id"))
    store = CosmosStore(cosmos_target.endpoint, key=cosmos_target.key, database=cosmos_database)
    with pytest.raises(StoreError, match="deliveries is partitioned on"):
        await store.open()


async def test_no_item_ttl_when_reference_ttl_is_unset(open_store: OpenStore) -> None:
    store = await open_store()
    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(store, now()))
    doc = await raw(store, "references", Surface.TEAMS, person_id("t1", "u1"))
    assert "ttl" not in doc and doc["expires_at"] is None
    alias = await raw(store, "aliases", "u1@contoso.example", "u1@contoso.example")
    assert "ttl" not in alias


async def test_reference_ttl_is_written_and_slides_with_activity(open_store: OpenStore) -> None:
    ttl_days = 30
    store = await open_store(reference_ttl_seconds=ttl_days * DAY)
    t = now()
    # Last seen two days ago: the item has 28 days left.
    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(store, t - 2 * DAY))
    first = await raw(store, "references", Surface.TEAMS, person_id("t1", "u1"))
    assert first["expires_at"] == pytest.approx(t + 28 * DAY)
    assert 28 * DAY - 60 <= first["ttl"] <= 28 * DAY + 1
    # A new activity renews it to the full 30 days (Cosmos DB counts ttl from the write, _ts).
    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(store, now()))
    second = await raw(store, "references", Surface.TEAMS, person_id("t1", "u1"))
    assert second["expires_at"] > first["expires_at"]
    assert 30 * DAY - 60 <= second["ttl"] <= 30 * DAY + 1
    assert second["_etag"] != first["_etag"]
    # The alias that resolves the person outlives the reference it points to.
    alias = await raw(store, "aliases", "u1@contoso.example", "u1@contoso.example")
    assert alias["ttl"] >= second["ttl"]


async def test_writes_that_are_not_activities_keep_the_expiry(open_store: OpenStore) -> None:
    store = await open_store(reference_ttl_seconds=30 * DAY)
    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(store, now() - 10 * DAY))

    def failed_send(current: Reference | None) -> Reference:
        assert current is not None
        current.failures += 1
        return current

    await store.references.update("t1", "u1", Surface.TEAMS, failed_send)
    doc = await raw(store, "references", Surface.TEAMS, person_id("t1", "u1"))
    assert doc["failures"] == 1
    assert 20 * DAY - 60 <= doc["ttl"] <= 20 * DAY + 1  # not renewed: only activities slide it


async def test_delivery_and_broadcast_retention_ttl(open_store: OpenStore) -> None:
    store = await open_store()
    pending, _ = await store.outbox.create(
        Delivery(id="d1", owner="k", tenant_id="t1", user_key="u1", recipient="u1", content={"text": "hi"})
    )
    assert "ttl" not in await raw(store, "deliveries", "d1", "d1")  # an unsent message never expires
    pending.status = DeliveryStatus.DELIVERED
    pending.expires_at = now() + 7 * DAY  # what the dispatcher does when a delivery becomes final
    await store.outbox.write(pending, pending.etag or "")
    doc = await raw(store, "deliveries", "d1", "d1")
    assert 7 * DAY - 60 <= doc["ttl"] <= 7 * DAY + 1
    assert "due_at" not in doc  # final: out of the outbox index

    await store.broadcasts.create(
        Broadcast(
            id="b1", owner="k", tenant_id="t1", content={"text": "hi"}, recipients=["u1"], expires_at=now() + 3 * DAY
        )
    )
    assert 3 * DAY - 60 <= (await raw(store, "broadcasts", "b1", "b1"))["ttl"] <= 3 * DAY + 1
    await store.broadcasts.create(Broadcast(id="b2", owner="k", tenant_id="t1", content={}, recipients=["u1"]))
    assert "ttl" not in await raw(store, "broadcasts", "b2", "b2")


async def test_stale_etag_is_refused_by_the_server(open_store: OpenStore) -> None:
    store = await open_store()
    first = await store.references.write(make_ref(), None)
    first.name = "Adele"
    await store.references.write(first, first.etag)
    # On the wire: If-Match with the old etag answers 412.
    container = store.containers["references"]
    doc = await raw(store, "references", Surface.TEAMS, person_id("t1", "u1"))
    with pytest.raises(CosmosAccessConditionFailedError) as refused:
        await container.replace_item(doc["id"], doc, etag=first.etag, match_condition=MatchConditions.IfNotModified)
    assert refused.value.status_code == 412
    # Through the store: a ConcurrencyConflict, and nothing changed.
    with pytest.raises(ConcurrencyConflict):
        await store.references.write(first, first.etag)
    current = await store.references.get("t1", "u1", Surface.TEAMS)
    assert current is not None and current.name == "Adele"


async def test_read_modify_write_retries_after_a_412(open_store: OpenStore) -> None:
    """An activity and a failed send update one reference through two clients (two processes)."""
    activity_side = await open_store()
    send_side = await open_store()
    await activity_side.references.write(make_ref(), None)
    container = activity_side.containers["references"]
    original = container.replace_item
    statuses: list[int] = []

    async def replace_item(item: Any, body: dict[str, Any], **kwargs: Any) -> Any:
        if not statuses:
            # The other process writes between our read and our write.
            def failed(current: Reference | None) -> Reference:
                assert current is not None
                current.failures += 1
                current.last_error = "ConversationNotFound"
                return current

            await send_side.references.update("t1", "u1", Surface.TEAMS, failed)
        try:
            result = await original(item, body, **kwargs)
        except CosmosAccessConditionFailedError as exc:
            statuses.append(exc.status_code or 0)
            raise
        statuses.append(200)
        return result

    container.replace_item = replace_item  # type: ignore[method-assign]

    def renamed(current: Reference | None) -> Reference:
        assert current is not None
        current.name = "Adele Vance"
        return current

    await activity_side.references.update("t1", "u1", Surface.TEAMS, renamed)
    assert statuses == [412, 200]
    final = await send_side.references.get("t1", "u1", Surface.TEAMS)
    assert final is not None and (final.name, final.failures, final.last_error) == (
        "Adele Vance",
        1,
        "ConversationNotFound",
    )


async def test_two_clients_contend_for_the_dispatcher_lease(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    results = await asyncio.gather(a.leases.acquire("dispatcher", "A", 30), b.leases.acquire("dispatcher", "B", 30))
    assert sorted(results) == [False, True]
    holder, other = (a, b) if results[0] else (b, a)
    name = "A" if results[0] else "B"
    assert await holder.leases.acquire("dispatcher", name, 30) is True
    assert await other.leases.acquire("dispatcher", "other", 30) is False


async def test_resolve_and_delivery_reads_never_query_across_partitions(open_store: OpenStore) -> None:
    store = await open_store()
    for surface in (Surface.TEAMS, Surface.TEAMS_COPILOT):
        await store.references.write(make_ref(surface=surface, aad_object_id="AAD-1", email="adele@mail.example"), None)
    await store.outbox.create(
        Delivery(id="d1", owner="k", tenant_id="t1", user_key="u1", recipient="u1", content={"text": "hi"})
    )
    calls: list[tuple[str, str, Any]] = []
    for name, container in store.containers.items():
        for method in ("read_item", "query_items"):
            original = getattr(container, method)

            def spy(
                *args: Any, _name: str = name, _method: str = method, _original: Any = original, **kwargs: Any
            ) -> Any:
                calls.append((_name, _method, kwargs.get("partition_key")))
                return _original(*args, **kwargs)

            setattr(container, method, spy)

    for recipient in ("U1@contoso.example", "aad-1", "ADELE@mail.example"):
        calls.clear()
        assert await store.references.resolve(recipient, "t1") == [PersonKey("t1", "u1")]
        # A point read of the alias, then one of the Teams reference it names (which confirms it).
        assert calls == [
            ("aliases", "read_item", recipient.lower()),
            ("references", "read_item", person_id("t1", "u1")),
        ]
    calls.clear()
    assert await store.outbox.get("d1") is not None
    assert calls == [("deliveries", "read_item", "d1")]


async def test_resolve_ignores_a_stale_alias(open_store: OpenStore) -> None:
    """The alias is an index; the reference decides. A UPN that moved to another person resolves to
    the new holder only, even though the old entry is still in the alias document."""
    store = await open_store()
    await store.references.write(make_ref("old", upn="shared@contoso.example"), None)

    def moved(current: Reference) -> Reference:
        current.upn = "old.person@contoso.example"
        return current

    await store.references.update_person("t1", "old", moved)
    await store.references.write(make_ref("new", upn="shared@contoso.example"), None)
    alias = await raw(store, "aliases", "shared@contoso.example", "shared@contoso.example")
    assert {(p["user_key"], tuple(p["surfaces"])) for p in alias["people"]} == {
        ("old", ("teams",)),
        ("new", ("teams",)),
    }
    assert await store.references.resolve("shared@contoso.example", "t1") == [PersonKey("t1", "new")]


async def test_forgetting_a_person_erases_every_alias_ever_written(open_store: OpenStore) -> None:
    """ForgetRecipient leaves no UPN behind, not even one the person no longer has."""
    store = await open_store(reference_ttl_seconds=30 * DAY)
    await store.references.update("t1", "u1", Surface.TEAMS, seen_at(store, now()))
    await store.references.write(make_ref("u2"), None)

    def renamed(current: Reference) -> Reference:
        current.upn = "u1.new@contoso.example"
        current.aad_object_id = "AAD-U1"
        return current

    await store.references.update_person("t1", "u1", renamed)
    ids = {d["id"] async for d in store.containers["aliases"].read_all_items()}
    assert {"u1@contoso.example", "u1.new@contoso.example", "aad-u1", "u2@contoso.example"} <= ids
    ledger_id = ledger_doc_id(person_id("t1", "u1"))
    ledger = await raw(store, "aliases", ledger_id, ledger_id)
    assert set(ledger["alias_ids"]) == {"u1@contoso.example", "u1.new@contoso.example", "aad-u1"}
    assert "ttl" in ledger  # it goes when the aliases it lists would

    assert await store.references.delete_person("t1", "u1") == 1
    left = [d async for d in store.containers["aliases"].read_all_items()]
    assert [d["id"] for d in left if d.get("kind") != "ledger"] == ["u2@contoso.example"]
    assert all("u1" not in str(d) for d in left)


async def test_api_key_names_stay_unique_across_clients(open_store: OpenStore) -> None:
    a, b = await open_store(), await open_store()
    results = await asyncio.gather(
        a.keys.create(ApiKey(id="k1", name="flows", secret_hash="h", scopes=["send"])),
        b.keys.create(ApiKey(id="k2", name="flows", secret_hash="h", scopes=["send"])),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ApiKey) for r in results) == 1
    assert [k.name for k in await a.keys.list_all()] == ["flows"]
    assert await a.keys.get("name:flows") is None  # the name claim is not a key


async def test_entra_id_is_used_without_a_key(
    cosmos_target: CosmosTarget, cosmos_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COSMOS_KEY empty: the store authenticates with DefaultAzureCredential (managed identity in
    Azure). The local server ignores signatures, so a stand-in credential proves the wiring."""
    if not cosmos_target.local:
        pytest.skip("uses a stand-in credential; a real account checks the token")

    requested: list[tuple[str, ...]] = []
    closed: list[bool] = []

    class StandInCredential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            requested.append(scopes)
            return AccessToken("stand-in-token", int(now()) + 3600)

        async def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", StandInCredential)
    settings = BotSettings.from_env(cosmos_target.env(cosmos_database) | {"COSMOS_KEY": ""})
    store = CosmosStore.from_settings(settings)
    await store.open()
    try:
        await store.references.write(make_ref(), None)
        assert await store.references.resolve("u1@contoso.example", None) == [PersonKey("t1", "u1")]
    finally:
        await store.close()
    assert requested and all(scope.endswith("/.default") for scopes in requested for scope in scopes)
    assert closed == [True]


def test_settings_without_endpoint_are_refused() -> None:
    with pytest.raises(ValueError, match="COSMOS_ENDPOINT"):
        create_store(BotSettings.from_env({"STORE_URL": "cosmos"}))
