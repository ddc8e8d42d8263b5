"""Azure Cosmos DB backend: point reads on the hot paths, ETag-conditional writes, opt-in TTL.

Containers (all created if missing, each with ``defaultTtl = -1``: TTL on, nothing expires unless an
item carries its own ``ttl``):

=============== ================= ===========================================================
container       partition key     why
=============== ================= ===========================================================
references      ``/pk`` = person  one person's surfaces are one logical partition: a read of
                ("tenant|user")   all of them is a single-partition query, one surface a point
                                  read (id = surface).
aliases         ``/id``           id = lower-cased UPN, email or Entra object ID, listing the
                                  people (and surfaces) it names: resolving a recipient is a
                                  point read of the alias, then of the reference it points to
                                  (which confirms it): never a fan-out over partitions.
deliveries      ``/id``           reading a delivery by id (GetMessage, every status change)
                                  is a point read; the dispatcher's due-query is one range
                                  over one indexed number (``due_rank``).
broadcasts      ``/id``           point read by id (GetBroadcast).
keys            ``/id``           every API call checks its key: a point read by key id. A
                                  ``name:`` document per key name keeps names unique.
subscriptions   ``/id``           point read / delete by id; listing by event is rare.
leases          ``/id``           the dispatcher's leader lease: point read + conditional write.
notifications   ``/id``           webhook events waiting to be posted (deleted once posted): a
                                  relay's due-query is one range over one number (``due``);
                                  each claim or reschedule a conditional replace by id.
personindex     ``/id``           id = an opaque per-tenant key of a person or address, listing
                                  the broadcasts that name it: an erase point-reads its few
                                  keys instead of reading every broadcast.
erasures        ``/id``           erasures asked for (DELETE_ON_UNINSTALL) and not done yet;
                                  the dispatcher's housekeeping works through them.
=============== ================= ===========================================================

Per-item ``ttl`` (seconds) is written only when a record has an ``expires_at``: references when
``REFERENCE_TTL_DAYS`` is set (sliding: capture moves ``expires_at`` on every activity), deliveries
once final and broadcasts from creation (``DELIVERY_RETENTION_DAYS``), webhook events, the
person index (with the broadcasts it points to) and leases (lapsed ones go on their own). Cosmos DB
deletes expired items itself, so ``purge_expired`` has nothing to do here; an erase deletes at once.
Reads hide a record whose ``expires_at`` passed even before Cosmos DB removes it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
import re
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosHttpResponseError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from teams_proactive.bot.model import (
    ApiKey,
    Broadcast,
    Delivery,
    DeliveryStatus,
    Notification,
    Reference,
    Subscription,
    Surface,
    now,
    person_id,
)
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store.base import (
    MAX_CONFLICT_RETRIES,
    ConcurrencyConflict,
    Page,
    PersonKey,
    ReadTally,
    Store,
    StoreError,
)
from teams_proactive.bot.store.cosmos_transport import PooledTransport

log = logging.getLogger(__name__)

# The SDK logs every request's headers at INFO. Routed to a logger of our own that stays quiet unless
# an operator turns it up (``logging.getLogger("teams_proactive.bot.store.cosmos.wire").setLevel(logging.INFO)``).
wire_log = logging.getLogger(__name__ + ".wire")
if wire_log.level == logging.NOTSET:
    wire_log.setLevel(logging.WARNING)

PENDING = (DeliveryStatus.QUEUED.value, DeliveryStatus.SCHEDULED.value)
ALL_STATUSES = tuple(s.value for s in DeliveryStatus)

# Where each record type lives, and paths left out of the index: large opaque bodies are never
# filtered on, and every indexed path costs request units on each write.
CONTAINERS: dict[str, tuple[str, list[str]]] = {
    "references": ("/pk", ["/conversation_reference/*"]),
    "aliases": ("/id", ["/*"]),  # only ever point-read
    "deliveries": ("/id", ["/content/*", "/response/*", "/responded_by/*", "/error/*"]),
    "broadcasts": ("/id", ["/content/*", "/recipients/*", "/skipped/*"]),
    "keys": ("/id", ["/secret_hash/?", "/scopes/*"]),
    "subscriptions": ("/id", ["/callback_url/?"]),
    "leases": ("/id", ["/*"]),  # only ever point-read
    "notifications": ("/id", ["/body/*"]),
    "personindex": ("/id", ["/*"]),  # only ever point-read
    "erasures": ("/id", ["/tenant_id/?", "/user_key/?"]),
    "recipients": ("/id", ["/*"]),  # broadcast recipient lists in chunks; only ever point-read
}
# A lapsed lease document goes this long after it lapsed (Cosmos DB removes it by its ttl).
_LEASE_GRACE_SECONDS = 300

_PLAIN_ID = re.compile(r"[A-Za-z0-9@._+:=;-]{1,200}")
# Cosmos DB ids may not contain these; ids we generate never do, so such a lookup finds nothing.
_FORBIDDEN_ID_CHARS = re.compile(r"[/\\?#]")
_CONCURRENT_WRITES = 32  # creates in flight at once when a broadcast fills the outbox
_ALIAS_CACHE_LIMIT = 100_000
_LIVE = "(IS_NULL(c.expires_at) OR c.expires_at > @now)"
_BROADCAST_LANE = 1e11  # seconds (~3,000 years): beyond any due time of a single message


def _alias_id(value: str) -> str:
    """A document id for an alias value; unusual characters or great length fall back to a hash."""
    if _PLAIN_ID.fullmatch(value):
        return value
    return "h:" + hashlib.sha256(value.encode()).hexdigest()


def _ledger_id(person: str) -> str:
    """The aliases-container document listing every alias id ever written for one person."""
    return "person:" + hashlib.sha256(person.encode()).hexdigest()


def _name_id(name: str) -> str:
    return "name:" + _alias_id(name)


def _ttl(expires_at: float | None) -> int | None:
    """Seconds from now until ``expires_at`` (at least 1), or None when the record never expires."""
    if expires_at is None:
        return None
    return max(1, math.ceil(expires_at - now()))


def _expired(doc: dict[str, Any], at: float | None = None) -> bool:
    expires_at = doc.get("expires_at")
    return expires_at is not None and expires_at <= (at or now())


def _indexing(excluded: list[str]) -> dict[str, Any]:
    if excluded == ["/*"]:
        return {"indexingMode": "consistent", "includedPaths": [], "excludedPaths": [{"path": "/*"}]}
    paths = [*excluded, '/"_etag"/?']
    return {
        "indexingMode": "consistent",
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": p} for p in paths],
    }


def _alias_values(ref: Reference) -> set[str]:
    return {v.strip().lower() for v in (ref.aad_object_id, ref.upn, ref.email) if v and v.strip()}


def _params(**values: Any) -> list[dict[str, Any]]:
    return [{"name": f"@{name}", "value": value} for name, value in values.items()]


class CosmosStore(Store):
    """The production store on Azure Cosmos DB (NoSQL API), used through the async SDK."""

    def __init__(
        self,
        endpoint: str,
        *,
        key: str = "",
        database: str = "teams-proactive",
        reference_ttl_seconds: float | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        if not endpoint:
            raise ValueError("COSMOS_ENDPOINT is required when STORE_URL=cosmos")
        self.endpoint = endpoint
        self.database_name = database
        self.reference_ttl_seconds = reference_ttl_seconds
        self._key = key
        self._client_options = client_options or {}
        self._client: CosmosClient | None = None
        self._credential: Any = None
        self.database: DatabaseProxy | None = None
        self.containers: dict[str, ContainerProxy] = {}
        # (alias id, person id, surface) -> the expiry the alias entry is known to cover (None: never
        # expires). Saves an alias read on every activity; a missing or stale entry costs that read.
        self._alias_known: dict[tuple[str, str, str], float | None] = {}

    @classmethod
    def from_settings(cls, settings: BotSettings, *, reference_ttl_seconds: float | None = None) -> CosmosStore:
        return cls(
            settings.cosmos_endpoint,
            key=settings.cosmos_key,
            database=settings.cosmos_database,
            reference_ttl_seconds=reference_ttl_seconds,
        )

    # ---- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        credential: Any
        if self._key:
            credential = self._key
        else:
            # No key: Entra ID, e.g. the App Service's managed identity (needs a Cosmos DB data-plane
            # role assignment such as "Cosmos DB Built-in Data Contributor").
            from azure.identity.aio import DefaultAzureCredential

            credential = self._credential = DefaultAzureCredential()
        options = dict(self._client_options)
        if "transport" not in options:
            options["transport"] = PooledTransport()
        client = CosmosClient(self.endpoint, credential=credential, logger=wire_log, **options)
        try:
            await client.__aenter__()
            self.database = await client.create_database_if_not_exists(self.database_name)
            for name, (path, excluded) in CONTAINERS.items():
                container, properties = await self.database.create_container_if_not_exists(
                    name,
                    partition_key=PartitionKey(path),
                    default_ttl=-1,
                    indexing_policy=_indexing(excluded),
                    return_properties=True,
                )
                paths = (properties.get("partitionKey") or {}).get("paths")
                if paths != [path]:
                    # Made by hand with another key: every point read would miss. Refuse to start.
                    raise StoreError(f"Cosmos container {name} is partitioned on {paths}, not [{path!r}]")
                if properties.get("defaultTtl") is None:
                    log.warning(
                        "Cosmos container %s has TTL switched off: records will be hidden when they expire but"
                        " never removed. Set its default time to live to 'On (no default)'.",
                        name,
                    )
                self.containers[name] = container
        except BaseException as exc:
            await client.close()
            if self._credential is not None:
                await self._credential.close()
                self._credential = None
            if isinstance(exc, CosmosHttpResponseError) and exc.status_code == 403:
                # Entra ID data-plane roles may read and write items but not create databases or
                # containers: those are made beforehand (docs/cosmos.md lists them).
                raise StoreError(
                    f"Cosmos DB refused to read or create database {self.database_name!r} or its containers"
                    " (403). With Entra ID, create them first (see docs/cosmos.md) and give the identity"
                    " the 'Cosmos DB Built-in Data Contributor' role."
                ) from exc
            raise
        self._client = client
        log.info("Cosmos DB store open: database %s at %s", self.database_name, self.endpoint)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._credential is not None:
            await self._credential.close()
            self._credential = None

    async def ping(self) -> None:
        # A point read (a missing item is fine): proves the account, the key and the database answer.
        await self._read("leases", "ping", "ping")

    # ---- generic documents ------------------------------------------------------------------
    async def _read(self, container: str, item_id: str, pk: str) -> dict[str, Any] | None:
        if _FORBIDDEN_ID_CHARS.search(item_id):
            return None
        try:
            return dict(await self.containers[container].read_item(item_id, partition_key=pk))
        except CosmosResourceNotFoundError:
            return None

    async def _read_live(self, container: str, item_id: str, pk: str) -> dict[str, Any] | None:
        doc = await self._read(container, item_id, pk)
        return None if doc is None or _expired(doc) else doc

    async def _create(self, container: str, doc: dict[str, Any], pk: str) -> dict[str, Any]:
        """Create; an expired document still sitting there counts as absent and is overwritten."""
        try:
            return dict(await self.containers[container].create_item(doc))
        except CosmosResourceExistsError as exc:
            existing = await self._read(container, doc["id"], pk)
            if existing is None or not _expired(existing):
                raise ConcurrencyConflict(doc["id"]) from exc
            return await self._replace(container, doc, existing["_etag"])

    async def _replace(self, container: str, doc: dict[str, Any], etag: str) -> dict[str, Any]:
        try:
            return dict(
                await self.containers[container].replace_item(
                    doc["id"], doc, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError) as exc:
            raise ConcurrencyConflict(doc["id"]) from exc

    async def _query(
        self, container: str, sql: str, parameters: list[dict[str, Any]] | None = None, *, pk: str | None = None
    ) -> list[Any]:
        # With ``pk``, the WHERE clause also filters on it: right on Cosmos DB, and needed by the local
        # test server run ``--stock`` (which ignores the partition_key option).
        kwargs: dict[str, Any] = {"parameters": parameters or []}
        if pk is not None:
            kwargs["partition_key"] = pk
        return [item async for item in self.containers[container].query_items(sql, **kwargs)]

    @staticmethod
    def _with_ttl(doc: dict[str, Any], expires_at: float | None) -> dict[str, Any]:
        ttl = _ttl(expires_at)
        if ttl is not None:
            doc["ttl"] = ttl
        return doc

    # ---- references -------------------------------------------------------------------------
    def _ref_doc(self, ref: Reference) -> dict[str, Any]:
        doc = ref.to_doc()
        doc.update(id=ref.surface, pk=person_id(ref.tenant_id, ref.user_key), rid=ref.doc_id)
        return self._with_ttl(doc, ref.expires_at)

    @staticmethod
    def _ref(doc: dict[str, Any]) -> Reference:
        return Reference.from_doc(doc, etag=doc["_etag"])

    async def get_reference(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        doc = await self._read_live("references", surface, person_id(tenant_id, user_key))
        return self._ref(doc) if doc is not None else None

    async def _person_docs(self, pk: str) -> list[dict[str, Any]]:
        return await self._query("references", "SELECT * FROM c WHERE c.pk = @pk", _params(pk=pk), pk=pk)

    async def person_references(self, tenant_id: str, user_key: str) -> list[Reference]:
        docs = await self._person_docs(person_id(tenant_id, user_key))
        at = now()
        return sorted((self._ref(d) for d in docs if not _expired(d, at)), key=lambda r: r.surface)

    async def write_reference(self, ref: Reference, etag: str | None) -> Reference:
        doc = self._ref_doc(ref)
        if etag is None:
            stored = await self._create("references", doc, doc["pk"])
        else:
            stored = await self._replace("references", doc, etag)
        # A new record never trusts the cache: the person may have been erased by another process.
        await self._register_aliases(ref, trust_cache=etag is not None)
        result = ref.copy()
        result.etag = stored["_etag"]
        return result

    def _alias_until(self, ref: Reference) -> float | None:
        """How long the alias entry should live: past the reference's expiry, with headroom so that
        it needs rewriting only about once per half TTL of activity, not on every activity."""
        if ref.expires_at is None:
            return None
        return ref.expires_at + (self.reference_ttl_seconds or 0) / 2

    @staticmethod
    def _covers(known: float | None, expires_at: float | None) -> bool:
        if known is None or expires_at is None:
            return known is None and expires_at is None
        return known >= expires_at

    async def _register_aliases(self, ref: Reference, *, trust_cache: bool) -> None:
        person = person_id(ref.tenant_id, ref.user_key)
        todo = []
        for value in _alias_values(ref):
            key = (_alias_id(value), person, ref.surface)
            if trust_cache and key in self._alias_known and self._covers(self._alias_known[key], ref.expires_at):
                continue
            todo.append(key[0])
        if todo:
            # The person's ledger first: whatever alias names them is on it, so erasing the person
            # finds every alias even after a UPN or email changed.
            await self._note_aliases(person, todo, self._alias_until(ref))
            await asyncio.gather(*(self._ensure_alias(aid, ref) for aid in todo))

    async def _note_aliases(self, person: str, alias_ids: list[str], until: float | None) -> None:
        ledger_id = _ledger_id(person)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self._read("aliases", ledger_id, ledger_id)
            known = set(doc["alias_ids"]) if doc else set()
            kept_until = doc.get("until") if doc else until
            if doc is not None and known.issuperset(alias_ids) and self._covers(kept_until, until):
                return
            if kept_until is not None and until is not None:
                until = max(kept_until, until)
            body = self._with_ttl(
                {"id": ledger_id, "kind": "ledger", "alias_ids": sorted(known | set(alias_ids)), "until": until}, until
            )
            try:
                if doc is None:
                    await self._create("aliases", body, ledger_id)
                else:
                    await self._replace("aliases", body, doc["_etag"])
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"alias ledger {ledger_id} kept changing")

    async def _ensure_alias(self, alias_id: str, ref: Reference) -> None:
        """Add the person and this surface to the alias document (or extend its expiry),
        conditionally, retrying when another writer got there first."""
        person = person_id(ref.tenant_id, ref.user_key)
        until = self._alias_until(ref)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self._read("aliases", alias_id, alias_id)
            at = now()
            people = [p for p in (doc or {}).get("people", []) if p.get("until") is None or p["until"] > at]
            entry = next((p for p in people if p["person"] == person), None)
            if (
                entry is not None
                and ref.surface in entry["surfaces"]
                and self._covers(entry.get("until"), ref.expires_at)
            ):
                self._remember_alias(alias_id, person, ref.surface, entry.get("until"))
                return
            if entry is None:
                entry = {"person": person, "tenant_id": ref.tenant_id, "user_key": ref.user_key, "surfaces": []}
                people.append(entry)
            if ref.surface not in entry["surfaces"]:
                # Teams first: resolve confirms a person by reading the first surface listed.
                entry["surfaces"] = sorted({*entry["surfaces"], ref.surface}, key=lambda s: (s != Surface.TEAMS, s))
            known = entry.get("until", until)
            if known is not None and until is not None:
                until = max(known, until)
            entry["until"] = until
            body = self._alias_doc(alias_id, people)
            try:
                if doc is None:
                    await self._create("aliases", body, alias_id)
                else:
                    await self._replace("aliases", body, doc["_etag"])
            except ConcurrencyConflict:
                continue
            self._remember_alias(alias_id, person, ref.surface, until)
            return
        raise ConcurrencyConflict(f"alias {alias_id} kept changing")

    def _alias_doc(self, alias_id: str, people: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": alias_id, "people": people}
        untils = [p.get("until") for p in people]
        if untils and None not in untils:
            # The document goes when the last of its people would; pruned entries go on the next write.
            return self._with_ttl(doc, max(u for u in untils if u is not None))
        return doc

    def _remember_alias(self, alias_id: str, person: str, surface: str, until: float | None) -> None:
        if len(self._alias_known) >= _ALIAS_CACHE_LIMIT:
            self._alias_known.clear()
        self._alias_known[(alias_id, person, surface)] = until

    async def _forget_alias(self, alias_id: str, person: str) -> None:
        for key in [k for k in self._alias_known if k[:2] == (alias_id, person)]:
            self._alias_known.pop(key, None)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self._read("aliases", alias_id, alias_id)
            if doc is None or all(p["person"] != person for p in doc.get("people", [])):
                return
            people = [p for p in doc["people"] if p["person"] != person]
            try:
                if people:
                    await self._replace("aliases", self._alias_doc(alias_id, people), doc["_etag"])
                else:
                    await self.containers["aliases"].delete_item(
                        alias_id,
                        partition_key=alias_id,
                        etag=doc["_etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ConcurrencyConflict, CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                continue
        raise ConcurrencyConflict(f"alias {alias_id} kept changing")

    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        value = recipient.strip().lower()
        if not value:
            return []
        alias_id = _alias_id(value)
        doc = await self._read("aliases", alias_id, alias_id)
        if doc is None or doc.get("kind") == "ledger":
            return []
        entries = [p for p in doc.get("people", []) if not tenant_id or p["tenant_id"] == tenant_id]

        # The alias is an index, the references are the truth: the person must still have a live
        # reference carrying this value (it may have expired, changed UPN or been erased). Point
        # reads of the surfaces the alias lists, usually just the first.
        async def confirmed(entry: dict[str, Any]) -> bool:
            for surface in entry["surfaces"]:
                ref = await self.get_reference(entry["tenant_id"], entry["user_key"], surface)
                if ref is not None and value in _alias_values(ref):
                    return True
            return False

        checks = await asyncio.gather(*(confirmed(e) for e in entries))
        found = (PersonKey(e["tenant_id"], e["user_key"]) for e, ok in zip(entries, checks, strict=True) if ok)
        return list(dict.fromkeys(found))

    async def list_references(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]:
        sql = f"SELECT TOP @n * FROM c WHERE {_LIVE}"
        params: dict[str, Any] = {"n": limit + 1, "now": now()}
        for field, value in (("tenant_id", tenant_id), ("status", status), ("surface", surface)):
            if value:
                sql += f" AND c.{field} = @{field}"
                params[field] = value
        if token:
            sql += " AND c.rid > @token"
            params["token"] = token
        docs = await self._query("references", sql + " ORDER BY c.rid", _params(**params))
        items = [self._ref(d) for d in docs[:limit]]
        return Page(items, docs[limit - 1]["rid"] if len(docs) > limit else None)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        rows = await self._query(
            "references",
            f"SELECT TOP 1 c.service_url FROM c WHERE c.tenant_id = @t AND c.channel_id = @ch AND {_LIVE}"
            " ORDER BY c.last_seen DESC",
            _params(t=tenant_id, ch=channel_id, now=now()),
        )
        return rows[0]["service_url"] if rows else None

    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        pk = person_id(tenant_id, user_key)
        docs = await self._person_docs(pk)
        ledger = await self._read("aliases", _ledger_id(pk), _ledger_id(pk))
        alias_ids = set(ledger["alias_ids"]) if ledger else set()
        for doc in docs:
            alias_ids |= {_alias_id(v) for v in _alias_values(self._ref(doc))}
        # Aliases first: a concurrent capture that re-creates a reference after this then re-adds
        # its alias, so a reference never ends up without one.
        await asyncio.gather(*(self._forget_alias(aid, pk) for aid in alias_ids))
        if ledger is not None:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.containers["aliases"].delete_item(ledger["id"], partition_key=ledger["id"])
        deleted = 0
        for doc in docs:
            try:
                await self.containers["references"].delete_item(doc["id"], partition_key=pk)
                deleted += 1
            except CosmosResourceNotFoundError:
                pass
        return deleted

    # ---- deliveries -------------------------------------------------------------------------
    def _delivery_doc(self, d: Delivery) -> dict[str, Any]:
        doc = d.to_doc()
        # One number the outbox query filters and sorts on: when the delivery is next due, whether it
        # waits for its first attempt (not_before) or for a claimer's lease to lapse (lease_until).
        if d.status in PENDING:
            doc["due_at"] = d.not_before
        elif d.status == DeliveryStatus.SENDING:
            doc["due_at"] = d.lease_until or 0.0
        if "due_at" in doc:
            # Broadcast entries sort in a second lane, far in the future, so one index range query
            # hands out single messages first: a flow's SendMessage never queues behind a broadcast.
            doc["due_rank"] = doc["due_at"] + (_BROADCAST_LANE if d.broadcast_id else 0.0)
        return self._with_ttl(doc, d.expires_at)

    @staticmethod
    def _delivery(doc: dict[str, Any]) -> Delivery:
        return Delivery.from_doc(doc, etag=doc["_etag"])

    async def create_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        doc = self._delivery_doc(delivery)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                stored = await self._create("deliveries", doc, delivery.id)
            except ConcurrencyConflict:
                existing = await self._read_live("deliveries", delivery.id, delivery.id)
                if existing is None:
                    continue  # it expired or vanished in between: try creating again
                return self._delivery(existing), False
            result = delivery.copy()
            result.etag = stored["_etag"]
            return result, True
        raise ConcurrencyConflict(delivery.id)

    async def create_deliveries(self, deliveries: list[Delivery]) -> int:
        # Batches are per partition (and each delivery is its own), so these are single creates,
        # a bounded number in flight at once.
        slots = asyncio.Semaphore(_CONCURRENT_WRITES)

        async def create(d: Delivery) -> bool:
            async with slots:
                return (await self.create_delivery(d))[1]

        return sum(await asyncio.gather(*(create(d) for d in deliveries)))

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        doc = await self._read_live("deliveries", delivery_id, delivery_id)
        return self._delivery(doc) if doc is not None else None

    async def write_delivery(self, delivery: Delivery, etag: str) -> Delivery:
        stored = await self._replace("deliveries", self._delivery_doc(delivery), etag)
        result = delivery.copy()
        result.etag = stored["_etag"]
        return result

    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        docs = await self._query(
            "deliveries",
            "SELECT TOP @n * FROM c WHERE (c.due_rank <= @at OR (c.due_rank >= @lane AND c.due_rank <= @lane_at))"
            f" AND {_LIVE} ORDER BY c.due_rank",
            _params(n=limit, at=at, lane=_BROADCAST_LANE, lane_at=_BROADCAST_LANE + at, now=at),
        )

        async def claim(doc: dict[str, Any]) -> Delivery | None:
            d = self._delivery(doc)
            d.status = DeliveryStatus.SENDING
            d.lease_owner = owner
            d.lease_until = at + lease_seconds
            d.updated_at = at
            try:
                return await self.write_delivery(d, doc["_etag"])
            except ConcurrencyConflict:
                return None  # another claimer (or a status change) got there first

        claimed = await asyncio.gather(*(claim(doc) for doc in docs))
        return [d for d in claimed if d is not None]

    async def next_due_at(self) -> float | None:
        rows = await self._query(
            "deliveries",
            f"SELECT VALUE MIN(c.due_at) FROM c WHERE IS_DEFINED(c.due_at) AND {_LIVE}",
            _params(now=now()),
        )
        values = [r for r in rows if isinstance(r, int | float)]
        return float(values[0]) if values else None

    async def count_deliveries(self, broadcast_id: str) -> dict[str, int]:
        # One COUNT per status rather than GROUP BY: each is answered from the index, and GROUP BY
        # is not available on the local test server.
        async def count(status: str) -> int:
            rows = await self._query(
                "deliveries",
                f"SELECT VALUE COUNT(1) FROM c WHERE c.broadcast_id = @b AND c.status = @s AND {_LIVE}",
                _params(b=broadcast_id, s=status, now=now()),
            )
            return int(rows[0]) if rows else 0

        counts = await asyncio.gather(*(count(s) for s in ALL_STATUSES))
        return {s: n for s, n in zip(ALL_STATUSES, counts, strict=True) if n}

    async def list_deliveries(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]:
        sql = f"SELECT TOP @n * FROM c WHERE {_LIVE}"
        params: dict[str, Any] = {"n": limit + 1, "now": now()}
        if broadcast_id:
            sql += " AND c.broadcast_id = @b"
            params["b"] = broadcast_id
        if status:
            sql += " AND c.status = @s"
            params["s"] = status
        if person:
            sql += " AND c.tenant_id = @t AND c.user_key = @u"
            params.update(t=person.tenant_id, u=person.user_key)
        if token:
            sql += " AND c.id > @token"
            params["token"] = token
        docs = await self._query("deliveries", sql + " ORDER BY c.id", _params(**params))
        items = [self._delivery(d) for d in docs[:limit]]
        return Page(items, docs[limit - 1]["id"] if len(docs) > limit else None)

    # ---- broadcasts -------------------------------------------------------------------------
    def _broadcast_doc(self, b: Broadcast) -> dict[str, Any]:
        return self._with_ttl(b.to_doc(), b.expires_at)

    async def create_broadcast(self, broadcast: Broadcast) -> Broadcast:
        stored = await self._create("broadcasts", self._broadcast_doc(broadcast), broadcast.id)
        return Broadcast.from_doc(stored, etag=stored["_etag"])

    async def get_broadcast(self, broadcast_id: str) -> Broadcast | None:
        doc = await self._read_live("broadcasts", broadcast_id, broadcast_id)
        return Broadcast.from_doc(doc, etag=doc["_etag"]) if doc is not None else None

    async def write_broadcast(self, broadcast: Broadcast, etag: str) -> Broadcast:
        stored = await self._replace("broadcasts", self._broadcast_doc(broadcast), etag)
        return Broadcast.from_doc(stored, etag=stored["_etag"])

    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        # Only the deliveries that installed (or tried to) come back, one small field each; the local
        # test server has no GROUP BY, so they are counted here.
        outcomes = await self._query(
            "deliveries",
            "SELECT VALUE c.install_outcome FROM c WHERE c.broadcast_id = @b AND IS_DEFINED(c.install_outcome)"
            f" AND NOT IS_NULL(c.install_outcome) AND {_LIVE}",
            _params(b=broadcast_id, now=now()),
        )
        return dict(collections.Counter(str(o) for o in outcomes if o))

    async def tally_reads(self, broadcast_id: str) -> ReadTally:
        # A COUNT for the delivered ones, and two small fields of only those read or answered, rather
        # than every delivery document: GetBroadcast asks on every call. IS_NUMBER is false for both
        # null and a field missing from a document written before it existed.
        where = f"c.broadcast_id = @b AND IS_NUMBER(c.delivered_at) AND {_LIVE}"
        params = _params(b=broadcast_id, now=now())
        counted, rows = await asyncio.gather(
            self._query("deliveries", f"SELECT VALUE COUNT(1) FROM c WHERE {where}", params),
            self._query(
                "deliveries",
                f"SELECT c.read_at, c.responded_at FROM c WHERE {where}"
                " AND (IS_NUMBER(c.read_at) OR IS_NUMBER(c.responded_at))",
                params,
            ),
        )
        tally = ReadTally(int(counted[0]) if counted else 0, 0, [])
        for row in rows:
            times = [float(t) for t in (row.get("read_at"), row.get("responded_at")) if isinstance(t, int | float)]
            tally.answered += isinstance(row.get("responded_at"), int | float)
            tally.seen.append(min(times))
        return tally

    async def write_recipient_chunk(
        self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None
    ) -> None:
        chunk_id = f"{broadcast_id}.{index}"
        doc = self._with_ttl(
            {"id": chunk_id, "broadcast_id": broadcast_id, "index": index, "recipients": recipients,
             "expires_at": expires_at},
            expires_at,
        )  # fmt: skip
        await self.containers["recipients"].upsert_item(doc)

    async def read_recipient_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        chunk_id = f"{broadcast_id}.{index}"
        doc = await self._read_live("recipients", chunk_id, chunk_id)
        return list(doc["recipients"]) if doc is not None else None

    async def unfinished_broadcasts(self) -> list[Broadcast]:
        docs = await self._query(
            "broadcasts", f"SELECT * FROM c WHERE c.status != 'completed' AND {_LIVE}", _params(now=now())
        )
        return [Broadcast.from_doc(d, etag=d["_etag"]) for d in docs]

    async def broadcast_ids(self) -> list[str]:
        return await self._query("broadcasts", f"SELECT VALUE c.id FROM c WHERE {_LIVE}", _params(now=now()))

    # ---- API keys ---------------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> ApiKey:
        # Names are unique across keys: a "name:" document claims the name first (a unique key
        # policy would only be unique within one partition).
        name_doc = {"id": _name_id(key.name), "kind": "name", "key_id": key.id}
        try:
            await self._create("keys", name_doc, name_doc["id"])
        except ConcurrencyConflict:
            claim = await self._read("keys", name_doc["id"], name_doc["id"])
            if claim is None or await self._read("keys", claim["key_id"], claim["key_id"]) is not None:
                raise
            # The claim outlived a key creation that failed half-way: take the name over.
            await self._replace("keys", name_doc, claim["_etag"])
        doc = key.to_doc()
        doc["kind"] = "key"
        stored = await self._create("keys", doc, key.id)
        return ApiKey.from_doc(stored, etag=stored["_etag"])

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        doc = await self._read_live("keys", key_id, key_id)
        if doc is None or doc.get("kind") != "key":
            return None
        return ApiKey.from_doc(doc, etag=doc["_etag"])

    async def list_api_keys(self) -> list[ApiKey]:
        docs = await self._query("keys", "SELECT * FROM c WHERE c.kind = 'key'")
        return sorted((ApiKey.from_doc(d, etag=d["_etag"]) for d in docs), key=lambda k: k.name)

    async def write_api_key(self, key: ApiKey, etag: str) -> ApiKey:
        doc = key.to_doc()
        doc["kind"] = "key"
        stored = await self._replace("keys", doc, etag)
        return ApiKey.from_doc(stored, etag=stored["_etag"])

    # ---- subscriptions ----------------------------------------------------------------------
    async def create_subscription(self, subscription: Subscription) -> Subscription:
        stored = await self._create("subscriptions", subscription.to_doc(), subscription.id)
        return Subscription.from_doc(stored, etag=stored["_etag"])

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        doc = await self._read_live("subscriptions", subscription_id, subscription_id)
        return Subscription.from_doc(doc, etag=doc["_etag"]) if doc is not None else None

    async def delete_subscription(self, subscription_id: str) -> bool:
        if _FORBIDDEN_ID_CHARS.search(subscription_id):
            return False
        try:
            await self.containers["subscriptions"].delete_item(subscription_id, partition_key=subscription_id)
        except CosmosResourceNotFoundError:
            return False
        return True

    async def list_subscriptions(self, event: str | None = None) -> list[Subscription]:
        if event:
            docs = await self._query("subscriptions", "SELECT * FROM c WHERE c.event = @e", _params(e=event))
        else:
            docs = await self._query("subscriptions", "SELECT * FROM c")
        return [Subscription.from_doc(d, etag=d["_etag"]) for d in docs]

    # ---- notifications ----------------------------------------------------------------------
    def _notification_doc(self, n: Notification) -> dict[str, Any]:
        doc = n.to_doc()
        # When it may be claimed, whether it waits for its next attempt or for a lease to lapse.
        doc["due"] = max(n.not_before, n.lease_until or 0.0)
        return self._with_ttl(doc, n.expires_at)

    async def create_notifications(self, notifications: list[Notification]) -> None:
        await asyncio.gather(*(self._create("notifications", self._notification_doc(n), n.id) for n in notifications))

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        docs = await self._query(
            "notifications",
            f"SELECT TOP @n * FROM c WHERE c.due <= @at AND {_LIVE} ORDER BY c.due",
            _params(n=limit, at=at, now=at),
        )

        async def claim(doc: dict[str, Any]) -> Notification | None:
            n = Notification.from_doc(doc)
            n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
            try:
                return await self.write_notification(n, doc["_etag"])
            except ConcurrencyConflict:
                return None  # another relay claimed it first

        claimed = await asyncio.gather(*(claim(doc) for doc in docs))
        return [n for n in claimed if n is not None]

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        stored = await self._replace("notifications", self._notification_doc(notification), etag)
        result = notification.copy()
        result.etag = stored["_etag"]
        return result

    async def delete_notification(self, notification_id: str) -> None:
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self.containers["notifications"].delete_item(notification_id, partition_key=notification_id)

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        docs = await self._query(
            "notifications",
            "SELECT c.id FROM c WHERE c.tenant_id = @t AND c.user_key = @u",
            _params(t=tenant_id, u=user_key),
        )
        await asyncio.gather(*(self.delete_notification(doc["id"]) for doc in docs))
        return len(docs)

    # ---- retention and erasure -------------------------------------------------------------
    async def purge_expired(self, at: float) -> dict[str, int]:
        # Every expiring item carries its own ``ttl``: Cosmos DB removes it (the local test server
        # does not, which is why expiry is also checked on every read).
        return {}

    async def index_broadcast(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        slots = asyncio.Semaphore(_CONCURRENT_WRITES)

        async def note(key: str) -> None:
            async with slots:
                await self._note_index(key, broadcast_id, expires_at)

        await asyncio.gather(*(note(k) for k in dict.fromkeys(keys)))

    async def _note_index(self, key: str, broadcast_id: str, expires_at: float | None) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self._read("personindex", key, key)
            at = now()
            broadcasts = {
                b: until for b, until in (doc or {}).get("broadcasts", {}).items() if until is None or until > at
            }
            if broadcast_id in broadcasts and broadcasts[broadcast_id] == expires_at:
                return
            broadcasts[broadcast_id] = expires_at
            untils = list(broadcasts.values())
            body = {"id": key, "broadcasts": broadcasts}
            if None not in untils:
                self._with_ttl(body, max(u for u in untils if u is not None))
            try:
                if doc is None:
                    await self._create("personindex", body, key)
                else:
                    await self._replace("personindex", body, doc["_etag"])
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"person index {key} kept changing")

    async def indexed_broadcasts(self, keys: list[str]) -> list[str]:
        docs = await asyncio.gather(*(self._read("personindex", k, k) for k in dict.fromkeys(keys)))
        at = now()
        return sorted(
            {
                b
                for doc in docs
                if doc is not None
                for b, until in doc.get("broadcasts", {}).items()
                if until is None or until > at
            }
        )

    async def forget_index(self, keys: list[str]) -> None:
        async def drop(key: str) -> None:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.containers["personindex"].delete_item(key, partition_key=key)

        await asyncio.gather(*(drop(k) for k in dict.fromkeys(keys) if not _FORBIDDEN_ID_CHARS.search(k)))

    @staticmethod
    def _erasure_id(person: PersonKey) -> str:
        return "erase:" + hashlib.sha256(person_id(person.tenant_id, person.user_key).encode()).hexdigest()

    async def queue_erasure(self, person: PersonKey) -> None:
        doc = {"id": self._erasure_id(person), "tenant_id": person.tenant_id, "user_key": person.user_key}
        doc["requested_at"] = now()
        with contextlib.suppress(ConcurrencyConflict):
            await self._create("erasures", doc, doc["id"])  # asked for already: once is enough

    async def pending_erasures(self, limit: int) -> list[PersonKey]:
        docs = await self._query(
            "erasures", "SELECT TOP @n c.tenant_id, c.user_key FROM c ORDER BY c.requested_at", _params(n=limit)
        )
        return [PersonKey(d["tenant_id"], d["user_key"]) for d in docs]

    async def erasure_done(self, person: PersonKey) -> None:
        erasure_id = self._erasure_id(person)
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self.containers["erasures"].delete_item(erasure_id, partition_key=erasure_id)

    # ---- leases -----------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        lease_id = _alias_id(name)
        at = now()
        doc = await self._read("leases", lease_id, lease_id)
        body = self._with_ttl(
            {"id": lease_id, "owner": owner, "until": at + seconds}, at + seconds + _LEASE_GRACE_SECONDS
        )
        try:
            if doc is None:
                await self._create("leases", body, lease_id)
            elif doc["owner"] == owner or doc["until"] <= at:
                await self._replace("leases", body, doc["_etag"])
            else:
                return False
        except ConcurrencyConflict:
            return False  # someone else took or renewed it between our read and our write
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        lease_id = _alias_id(name)
        doc = await self._read("leases", lease_id, lease_id)
        if doc is None or doc["owner"] != owner:
            return
        try:
            await self.containers["leases"].delete_item(
                lease_id, partition_key=lease_id, etag=doc["_etag"], match_condition=MatchConditions.IfNotModified
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
            pass  # taken over after it lapsed, or gone already: not ours to release

    # Small shared state lives beside the leases (one point read or upsert, never queried).
    async def read_state(self, name: str) -> dict[str, Any] | None:
        state_id = _alias_id("state:" + name)
        doc = await self._read("leases", state_id, state_id)
        return dict(doc["state"]) if doc is not None and isinstance(doc.get("state"), dict) else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        state_id = _alias_id("state:" + name)
        await self.containers["leases"].upsert_item({"id": state_id, "state": state})
