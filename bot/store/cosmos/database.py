"""The Cosmos DB backend's shared part: the client, the containers (names, partition keys, indexing) and document codecs.

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
recipients      ``/id``           a broadcast's recipient list in chunks; only point-read.
quarantine      ``/id``           id = "kind:record id": a delivery, broadcast, webhook event or
                                  reference a loop could not read or process, moved out of its
                                  container with the reason; listed rarely (the CLI, /metrics).
=============== ================= ===========================================================

Per-item ``ttl`` (seconds) is written only when a record has an ``expires_at``: references when
``REFERENCE_TTL_DAYS`` is set (sliding: capture moves ``expires_at`` on every activity), deliveries
once final and broadcasts from creation (``DELIVERY_RETENTION_DAYS``), webhook events, the
person index (with the broadcasts it points to) and leases (lapsed ones go on their own). Cosmos DB
deletes expired items itself, so ``purge_expired`` has nothing to do here; an erase deletes at once.
Reads hide a record whose ``expires_at`` passed even before Cosmos DB removes it.
"""

from __future__ import annotations

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
from teams_proactive.bot.model import DeliveryStatus, Reference, now
from teams_proactive.bot.store.base import ConcurrencyConflict, StoreError, StoreTooNew
from teams_proactive.bot.store.base.quarantine import DEFAULT_KEEP_SECONDS
from teams_proactive.bot.store.cosmos.transport import PooledTransport
from teams_proactive.bot.unreadable import Unreadable

log = logging.getLogger(__name__)

# The SDK logs every request's headers at INFO. Routed to a logger of our own that stays quiet unless
# an operator turns it up (``logging.getLogger("teams_proactive.bot.store.cosmos.wire").setLevel(logging.INFO)``).
wire_log = logging.getLogger("teams_proactive.bot.store.cosmos.wire")
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
    "quarantine": ("/id", ["/body/*"]),  # records a loop could not read or process, moved aside
}
# The version of the documents this release writes. Every document written carries it in
# ``schema_version`` (documents from before versions carry none: version 0, read as they are), and the
# ``schema`` document in the leases container holds the highest version written to the database.
# A release refuses to open a database, or to read a document, of a newer version than its own: it
# would misread it, and a write back would drop what it does not know. To change a document's shape,
# raise the version and teach the readers the old shape (or convert it where it is read).
SCHEMA_VERSION = 1
VERSION_FIELD = "schema_version"
SCHEMA_MARKER_ID = "schema"


def too_new(where: str, version: object) -> StoreTooNew:
    return StoreTooNew(
        f"The Cosmos DB store ({where}) has schema version {version}, written by a newer release of"
        f" teams-proactive; this release knows versions up to {SCHEMA_VERSION} and does not write to it."
        " Run the newer release."
    )


def checked(doc: Any, container: str) -> Any:
    """``doc`` when this release can read it; StoreTooNew when a newer release wrote it."""
    if isinstance(doc, dict):
        version = doc.get(VERSION_FIELD)
        if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
            raise too_new(f"a document in {container}", version)
    return doc


# A lapsed lease document goes this long after it lapsed (Cosmos DB removes it by its ttl).
LEASE_GRACE_SECONDS = 300

PLAIN_ID = re.compile(r"[A-Za-z0-9@._+:=;-]{1,200}")
# Cosmos DB ids may not contain these; ids we generate never do, so such a lookup finds nothing.
FORBIDDEN_ID_CHARS = re.compile(r"[/\\?#]")
CONCURRENT_WRITES = 32  # creates in flight at once when a broadcast fills the outbox
ALIAS_CACHE_LIMIT = 100_000
LIVE_FILTER = "(IS_NULL(c.expires_at) OR c.expires_at > @now)"
BROADCAST_LANE = 1e11  # seconds (~3,000 years): beyond any due time of a single message


# The container each kind of record that can be quarantined lives in (each partitioned on /id).
CONTAINER_OF = {
    "delivery": "deliveries", "broadcast": "broadcasts", "notification": "notifications", "reference": "references",
}  # fmt: skip
# What Cosmos DB adds to a document; left out of the copy kept in quarantine.
SYSTEM_FIELDS = ("_rid", "_self", "_etag", "_attachments", "_ts", "ttl")


def alias_doc_id(value: str) -> str:
    """A document id for an alias value; unusual characters or great length fall back to a hash."""
    if PLAIN_ID.fullmatch(value):
        return value
    return "h:" + hashlib.sha256(value.encode()).hexdigest()


def ledger_doc_id(person: str) -> str:
    """The aliases-container document listing every alias id ever written for one person."""
    return "person:" + hashlib.sha256(person.encode()).hexdigest()


def quarantine_doc_id(kind: str, record_id: str) -> str:
    return alias_doc_id(f"{kind}:{record_id}")


def name_doc_id(name: str) -> str:
    return "name:" + alias_doc_id(name)


def ttl_seconds(expires_at: float | None) -> int | None:
    """Seconds from now until ``expires_at`` (at least 1), or None when the record never expires."""
    if expires_at is None:
        return None
    return max(1, math.ceil(expires_at - now()))


def is_expired_doc(doc: dict[str, Any], at: float | None = None) -> bool:
    expires_at = doc.get("expires_at")
    return expires_at is not None and expires_at <= (at or now())


def indexing_policy(excluded: list[str]) -> dict[str, Any]:
    if excluded == ["/*"]:
        return {"indexingMode": "consistent", "includedPaths": [], "excludedPaths": [{"path": "/*"}]}
    paths = [*excluded, '/"_etag"/?']
    return {
        "indexingMode": "consistent",
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": p} for p in paths],
    }


def alias_values(ref: Reference) -> set[str]:
    return {v.strip().lower() for v in (ref.aad_object_id, ref.upn, ref.email) if v and v.strip()}


def query_params(**values: Any) -> list[dict[str, Any]]:
    return [{"name": f"@{name}", "value": value} for name, value in values.items()]


class CosmosDatabase:
    """The account, the database and its containers, opened once; the repositories read and write documents through it."""

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
        self.key = key
        self.client_options = client_options or {}
        self.client: CosmosClient | None = None
        self.credential: Any = None
        self.database: DatabaseProxy | None = None
        self.containers: dict[str, ContainerProxy] = {}
        # (alias id, person id, surface) -> the expiry the alias entry is known to cover (None: never
        # expires). Saves an alias read on every activity; a missing or stale entry costs that read.
        self.alias_known: dict[tuple[str, str, str], float | None] = {}
        self.quarantine_seconds = DEFAULT_KEEP_SECONDS

    # ---- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        credential: Any
        if self.key:
            credential = self.key
        else:
            # No key: Entra ID, e.g. the App Service's managed identity (needs a Cosmos DB data-plane
            # role assignment such as "Cosmos DB Built-in Data Contributor").
            from azure.identity.aio import DefaultAzureCredential

            credential = self.credential = DefaultAzureCredential()
        options = dict(self.client_options)
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
                    indexing_policy=indexing_policy(excluded),
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
            await self.check_schema()
        except BaseException as exc:
            await client.close()
            if self.credential is not None:
                await self.credential.close()
                self.credential = None
            if isinstance(exc, CosmosHttpResponseError) and exc.status_code == 403:
                # Entra ID data-plane roles may read and write items but not create databases or
                # containers: those are made beforehand (docs/cosmos.md lists them).
                raise StoreError(
                    f"Cosmos DB refused to read or create database {self.database_name!r} or its containers"
                    " (403). With Entra ID, create them first (see docs/cosmos.md) and give the identity"
                    " the 'Cosmos DB Built-in Data Contributor' role."
                ) from exc
            raise
        self.client = client
        log.info("Cosmos DB store open: database %s at %s", self.database_name, self.endpoint)

    async def check_schema(self) -> None:
        """Refuse a database a newer release wrote to; note this release's version otherwise."""
        marker = self.containers["leases"]
        try:
            doc = dict(await marker.read_item(SCHEMA_MARKER_ID, partition_key=SCHEMA_MARKER_ID))
        except CosmosResourceNotFoundError:
            doc = None
        version = doc.get(VERSION_FIELD, 0) if doc is not None else 0
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise too_new(f"database {self.database_name!r}", version)
        if version < SCHEMA_VERSION:
            # Several processes may do this at once: they all write the same thing.
            await marker.upsert_item({"id": SCHEMA_MARKER_ID, VERSION_FIELD: SCHEMA_VERSION})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.credential is not None:
            await self.credential.close()
            self.credential = None

    async def ping(self) -> None:
        # A point read (a missing item is fine): proves the account, the key and the database answer.
        await self.read("leases", "ping", "ping")

    # ---- generic documents ------------------------------------------------------------------
    async def read(self, container: str, item_id: str, pk: str) -> dict[str, Any] | None:
        if FORBIDDEN_ID_CHARS.search(item_id):
            return None
        try:
            doc = dict(await self.containers[container].read_item(item_id, partition_key=pk))
        except CosmosResourceNotFoundError:
            return None
        return checked(doc, container)

    async def read_live(self, container: str, item_id: str, pk: str) -> dict[str, Any] | None:
        doc = await self.read(container, item_id, pk)
        return None if doc is None or is_expired_doc(doc) else doc

    async def create(self, container: str, doc: dict[str, Any], pk: str) -> dict[str, Any]:
        """Create; an expired document still sitting there counts as absent and is overwritten."""
        doc[VERSION_FIELD] = SCHEMA_VERSION
        try:
            return dict(await self.containers[container].create_item(doc))
        except CosmosResourceExistsError as exc:
            existing = await self.read(container, doc["id"], pk)
            if existing is None or not is_expired_doc(existing):
                raise ConcurrencyConflict(doc["id"]) from exc
            return await self.replace(container, doc, existing["_etag"])

    async def replace(self, container: str, doc: dict[str, Any], etag: str) -> dict[str, Any]:
        doc[VERSION_FIELD] = SCHEMA_VERSION
        try:
            return dict(
                await self.containers[container].replace_item(
                    doc["id"], doc, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError) as exc:
            raise ConcurrencyConflict(doc["id"]) from exc

    async def query(
        self, container: str, sql: str, parameters: list[dict[str, Any]] | None = None, *, pk: str | None = None
    ) -> list[Any]:
        # With ``pk``, the WHERE clause also filters on it: right on Cosmos DB, and needed by the local
        # test server run ``--stock`` (which ignores the partition_key option).
        kwargs: dict[str, Any] = {"parameters": parameters or []}
        if pk is not None:
            kwargs["partition_key"] = pk
        return [checked(item, container) async for item in self.containers[container].query_items(sql, **kwargs)]

    @staticmethod
    def with_ttl(doc: dict[str, Any], expires_at: float | None) -> dict[str, Any]:
        ttl = ttl_seconds(expires_at)
        if ttl is not None:
            doc["ttl"] = ttl
        return doc

    # ---- quarantine -------------------------------------------------------------------------
    async def move_aside(self, kind: str, record_id: str, reason: str, doc: dict[str, Any]) -> bool:
        """Copy ``doc`` (as read) into quarantine, then delete the original: a crash in between leaves
        both, and the next reader moves it again (the copy is replaced)."""
        at = now()
        expires_at = at + self.quarantine_seconds
        entry = self.with_ttl(
            {
                "id": quarantine_doc_id(kind, record_id),
                "kind": kind,
                "record_id": record_id,
                "reason": reason,
                "quarantined_at": at,
                "expires_at": expires_at,
                # Whom it is about, when that could be read (ForgetRecipient deletes it then).
                "tenant_id": doc.get("tenant_id") if kind != "broadcast" else None,
                "user_key": doc.get("user_key") if kind != "broadcast" else None,
                "body": {k: v for k, v in doc.items() if k not in SYSTEM_FIELDS},
            },
            expires_at,
        )
        await self.containers["quarantine"].upsert_item(entry)
        # Only the version that was read: a bot turn may have rewritten the record meanwhile, and that
        # newer version is not the one we could not process.
        unchanged: dict[str, Any] = (
            {"etag": doc["_etag"], "match_condition": MatchConditions.IfNotModified} if doc.get("_etag") else {}
        )
        try:
            # A reference lives in its person's partition under its surface; the others under their id.
            await self.containers[CONTAINER_OF[kind]].delete_item(
                doc.get("id", record_id),
                partition_key=doc.get("pk", record_id) if kind == "reference" else record_id,
                **unchanged,
            )
        except CosmosResourceNotFoundError:
            return False
        except CosmosAccessConditionFailedError:
            await self.containers["quarantine"].delete_item(entry["id"], partition_key=entry["id"])
            return False
        shown = "(id not logged)" if kind == "reference" else record_id  # a reference's id names the person
        log.warning("%s %s moved to quarantine: %s", kind, shown, reason)
        return True

    async def set_aside(self, unreadable: list[Unreadable], docs: dict[str, dict[str, Any]]) -> None:
        """Move documents a read could not decode into quarantine, so no loop meets them again."""
        for u in unreadable:
            await self.move_aside(u.kind, u.record_id, u.reason, docs[u.record_id])

    # ---- retention and erasure -------------------------------------------------------------
    async def purge_expired(self, at: float) -> dict[str, int]:
        # Every expiring item carries its own ``ttl``: Cosmos DB removes it (the local test server
        # does not, which is why expiry is also checked on every read).
        return {}

    async def compact(self) -> None:
        return None
