"""The store interface every backend implements, and the optimistic-concurrency helpers built on it."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from teams_proactive.bot.model import (
    ApiKey,
    Broadcast,
    Delivery,
    Notification,
    Reference,
    Subscription,
    now,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a read-modify-write is retried when another writer changed the record in between.
MAX_CONFLICT_RETRIES = 20


class StoreError(Exception):
    """Base of the store's own errors."""


class ConcurrencyConflict(StoreError):
    """A conditional write lost: the record changed (or appeared) since it was read."""


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


@dataclass(slots=True)
class ReadTally:
    """What GetBroadcast's engagement needs from a broadcast's delivered messages, without the messages."""

    delivered: int  # deliveries with ``delivered_at`` (recalled ones included)
    answered: int  # of those, with ``responded_at``
    seen: list[float]  # of those, the first of ``read_at`` / ``responded_at`` where either is set


@dataclass(slots=True, frozen=True)
class PersonKey:
    tenant_id: str
    user_key: str


class Store(abc.ABC):
    """Async persistence for references, the outbox, broadcasts, keys, subscriptions and leases.

    Conditional writes take the etag the record was read with; ``etag=None`` means "create, and fail
    with ConcurrencyConflict if it exists". Reads never return a record whose ``expires_at`` passed.
    """

    reference_ttl_seconds: float | None = None

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Create tables/containers if missing."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    # ---- references -------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_reference(self, tenant_id: str, user_key: str, surface: str) -> Reference | None: ...

    @abc.abstractmethod
    async def person_references(self, tenant_id: str, user_key: str) -> list[Reference]: ...

    @abc.abstractmethod
    async def write_reference(self, ref: Reference, etag: str | None) -> Reference:
        """Create (etag None) or conditionally replace a reference; returns it with its new etag."""

    @abc.abstractmethod
    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        """People whose Entra object ID, UPN or email equals ``recipient`` (case-insensitive)."""

    @abc.abstractmethod
    async def list_references(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]: ...

    @abc.abstractmethod
    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        """The newest service URL seen for the tenant on that channel."""

    @abc.abstractmethod
    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        """Erase every reference of a person; returns how many were removed."""

    # ---- deliveries (the outbox) ------------------------------------------------------------
    @abc.abstractmethod
    async def create_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        """Insert unless a delivery with that id exists; returns (stored delivery, created?)."""

    @abc.abstractmethod
    async def create_deliveries(self, deliveries: list[Delivery]) -> int:
        """Insert many, skipping ids that exist (idempotent); returns how many were new."""

    @abc.abstractmethod
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    @abc.abstractmethod
    async def write_delivery(self, delivery: Delivery, etag: str) -> Delivery:
        """Conditionally replace a delivery."""

    async def write_deliveries(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
        """Conditionally replace several deliveries (each against its own etag), in order; None where
        the etag no longer matched. Stores that can (SQLite) write them in one transaction."""

        async def write(delivery: Delivery, etag: str) -> Delivery | None:
            try:
                return await self.write_delivery(delivery, etag)
            except ConcurrencyConflict:
                return None

        return list(await asyncio.gather(*(write(d, etag) for d, etag in writes)))

    @abc.abstractmethod
    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        """Take up to ``limit`` deliveries that are due (or whose lease ran out): mark them
        ``sending`` under ``owner``'s lease. Two claimers never get the same delivery."""

    @abc.abstractmethod
    async def next_due_at(self) -> float | None:
        """When the earliest pending delivery becomes due (None when the outbox is empty)."""

    @abc.abstractmethod
    async def count_deliveries(self, broadcast_id: str) -> dict[str, int]:
        """Deliveries of a broadcast by status."""

    @abc.abstractmethod
    async def list_deliveries(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]: ...

    # ---- broadcasts -------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_broadcast(self, broadcast: Broadcast) -> Broadcast: ...

    @abc.abstractmethod
    async def get_broadcast(self, broadcast_id: str) -> Broadcast | None: ...

    @abc.abstractmethod
    async def write_broadcast(self, broadcast: Broadcast, etag: str) -> Broadcast: ...

    @abc.abstractmethod
    async def unfinished_broadcasts(self) -> list[Broadcast]: ...

    @abc.abstractmethod
    async def broadcast_ids(self) -> list[str]:
        """The id of every broadcast still kept (finished or not); broadcasts are few."""

    # ---- API keys, subscriptions ------------------------------------------------------------
    @abc.abstractmethod
    async def create_api_key(self, key: ApiKey) -> ApiKey: ...

    @abc.abstractmethod
    async def get_api_key(self, key_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_api_keys(self) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def write_api_key(self, key: ApiKey, etag: str) -> ApiKey: ...

    @abc.abstractmethod
    async def create_subscription(self, subscription: Subscription) -> Subscription: ...

    @abc.abstractmethod
    async def get_subscription(self, subscription_id: str) -> Subscription | None: ...

    @abc.abstractmethod
    async def delete_subscription(self, subscription_id: str) -> bool: ...

    @abc.abstractmethod
    async def list_subscriptions(self, event: str | None = None) -> list[Subscription]: ...

    # ---- notifications (the webhook callback outbox) ---------------------------------------
    @abc.abstractmethod
    async def create_notifications(self, notifications: list[Notification]) -> None:
        """Insert new notifications (ids are fresh event ids)."""

    @abc.abstractmethod
    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        """Take up to ``limit`` notifications that are due and not leased (or whose lease ran out),
        under ``owner``'s lease. Two claimers never get the same one."""

    @abc.abstractmethod
    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        """Conditionally replace a notification (reschedule after a failed callback)."""

    @abc.abstractmethod
    async def delete_notification(self, notification_id: str) -> None:
        """Remove a notification that is done with (posted, refused, or given up on)."""

    @abc.abstractmethod
    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        """Remove every pending notification about one person; returns how many."""

    # ---- retention and erasure -------------------------------------------------------------
    @abc.abstractmethod
    async def purge_expired(self, at: float) -> dict[str, int]:
        """Physically remove what expired by ``at``: references, deliveries (card waits too),
        broadcasts, webhook events, broadcast index entries and lapsed leases. Returns how many of
        each kind went. A backend whose database expires items by itself (Cosmos DB's per-item
        ``ttl``) may leave the work to it and return nothing."""

    async def compact(self) -> None:  # noqa: B027 - optional hook
        """Make what was just deleted unrecoverable from the store's files (SQLite: checkpoint and
        truncate the WAL). Called after an erase and after a purge that removed something."""

    @abc.abstractmethod
    async def index_broadcast(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        """Note that the broadcast names each of ``keys`` (opaque per-tenant person/address keys, see
        ``teams_proactive.bot.recipients.index_keys``), so an erase finds it without reading every broadcast."""

    @abc.abstractmethod
    async def indexed_broadcasts(self, keys: list[str]) -> list[str]:
        """Ids of the broadcasts noted under any of ``keys``."""

    @abc.abstractmethod
    async def forget_index(self, keys: list[str]) -> None:
        """Drop every index entry under ``keys`` (the keys are derived from a person's addresses)."""

    @abc.abstractmethod
    async def queue_erasure(self, person: PersonKey) -> None:
        """Durably ask for a person to be erased later (by the dispatcher's housekeeping)."""

    @abc.abstractmethod
    async def pending_erasures(self, limit: int) -> list[PersonKey]:
        """Erasures asked for and not done yet, oldest first."""

    @abc.abstractmethod
    async def erasure_done(self, person: PersonKey) -> None: ...

    # ---- leases -----------------------------------------------------------------------------
    @abc.abstractmethod
    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the named lease when it is free, expired, or already ours."""

    @abc.abstractmethod
    async def release_lease(self, name: str, owner: str) -> None: ...

    # ---- small shared state (the dispatcher's pacing, for the next leader) -------------------
    @abc.abstractmethod
    async def read_state(self, name: str) -> dict[str, Any] | None:
        """The JSON document last written under ``name``, or None."""

    @abc.abstractmethod
    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        """Replace the document under ``name`` (last writer wins: only a lease holder writes)."""

    # ---- read-modify-write helpers shared by every backend ---------------------------------
    async def update_reference(
        self,
        tenant_id: str,
        user_key: str,
        surface: str,
        change: Callable[[Reference | None], Reference | None],
    ) -> Reference | None:
        """Apply ``change`` to the current reference (None when missing) and write it conditionally,
        retrying on conflict. ``change`` returning None means "nothing to write"."""

        async def read() -> Reference | None:
            return await self.get_reference(tenant_id, user_key, surface)

        return await _read_modify_write(read, change, self.write_reference)

    async def update_person(
        self, tenant_id: str, user_key: str, change: Callable[[Reference], Reference | None]
    ) -> list[Reference]:
        """Apply ``change`` to every reference of one person (each written conditionally)."""
        updated = []
        for ref in await self.person_references(tenant_id, user_key):

            def guarded(current: Reference | None) -> Reference | None:
                return change(current) if current is not None else None

            result = await self.update_reference(tenant_id, user_key, ref.surface, guarded)
            if result is not None:
                updated.append(result)
        return updated

    async def update_delivery(self, delivery_id: str, change: Callable[[Delivery], Delivery | None]) -> Delivery | None:
        async def read() -> Delivery | None:
            return await self.get_delivery(delivery_id)

        def guarded(current: Delivery | None) -> Delivery | None:
            return change(current) if current is not None else None

        async def write(d: Delivery, etag: str | None) -> Delivery:
            assert etag is not None
            return await self.write_delivery(d, etag)

        return await _read_modify_write(read, guarded, write)

    async def update_broadcast(
        self, broadcast_id: str, change: Callable[[Broadcast], Broadcast | None]
    ) -> Broadcast | None:
        async def read() -> Broadcast | None:
            return await self.get_broadcast(broadcast_id)

        def guarded(current: Broadcast | None) -> Broadcast | None:
            return change(current) if current is not None else None

        async def write(b: Broadcast, etag: str | None) -> Broadcast:
            assert etag is not None
            return await self.write_broadcast(b, etag)

        return await _read_modify_write(read, guarded, write)

    # ---- broadcast recipient lists, in chunks ------------------------------------------------
    # A list of 100,000 addresses is several megabytes: one record would pass Cosmos DB's 2 MB item
    # limit and be rewritten whole on every change of the broadcast. Chunks are written once, before
    # the broadcast record that points at them, and read one at a time while it is expanded.
    @abc.abstractmethod
    async def write_recipient_chunk(
        self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None
    ) -> None:
        """Create or replace chunk ``index`` of a broadcast's recipient list."""

    @abc.abstractmethod
    async def read_recipient_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        """Chunk ``index`` of a broadcast's recipient list (None: no such chunk, or expired)."""

    # ---- proactive installation (docs/graph.md) -----------------------------------------------
    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        """Deliveries of a broadcast by ``install_outcome`` (installed, alreadyInstalled, failure codes).

        The portable way reads the broadcast's deliveries page by page; a backend that can count in
        the database overrides it."""
        counts: dict[str, int] = {}
        token: str | None = None
        while True:
            page = await self.list_deliveries(broadcast_id=broadcast_id, limit=500, token=token)
            for delivery in page.items:
                if delivery.install_outcome:
                    counts[delivery.install_outcome] = counts.get(delivery.install_outcome, 0) + 1
            token = page.next_token
            if not token:
                return counts

    async def tally_reads(self, broadcast_id: str) -> ReadTally:
        """Delivered, answered and first-seen moments of a broadcast's live deliveries.

        The portable way reads the deliveries page by page; a backend that can count in the database
        overrides it (GetBroadcast asks on every call, and a report is polled)."""
        tally = ReadTally(0, 0, [])
        token: str | None = None
        while True:
            page = await self.list_deliveries(broadcast_id=broadcast_id, limit=500, token=token)
            for d in page.items:
                if d.delivered_at is None:
                    continue
                tally.delivered += 1
                tally.answered += d.responded_at is not None
                times = [t for t in (d.read_at, d.responded_at) if t is not None]
                if times:
                    tally.seen.append(min(times))
            token = page.next_token
            if not token:
                return tally

    def reference_expiry(self, last_seen: float) -> float | None:
        """The sliding expiry of a reference seen at ``last_seen`` (None: never expires)."""
        if self.reference_ttl_seconds is None:
            return None
        return last_seen + self.reference_ttl_seconds


R = TypeVar("R", Reference, Delivery, Broadcast)


async def _read_modify_write(
    read: Callable[[], Any],
    change: Callable[[Any], Any],
    write: Callable[[Any, str | None], Any],
) -> Any:
    for _ in range(MAX_CONFLICT_RETRIES):
        current = await read()
        updated = change(current.copy() if current is not None else None)
        if updated is None:
            return current
        updated.updated_at = now()
        try:
            return await write(updated, current.etag if current is not None else None)
        except ConcurrencyConflict:
            log.debug("write conflict, retrying read-modify-write")
            continue
    raise ConcurrencyConflict("record kept changing; gave up after retries")


def visible(records: Iterable[T], at: float | None = None) -> list[T]:
    """Hide records whose retention ran out, even before the backend removes them."""
    moment = at or now()
    return [r for r in records if getattr(r, "expires_at", None) is None or r.expires_at > moment]  # type: ignore[attr-defined]
