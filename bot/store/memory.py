"""In-memory backend for tests: the same semantics as the others, nothing survives the process."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from teams_proactive.bot.model import (
    ApiKey,
    Broadcast,
    Delivery,
    DeliveryStatus,
    Notification,
    Reference,
    Subscription,
    now,
    reference_id,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, Page, PersonKey, Store

PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED)


class MemoryStore(Store):
    """Dictionaries of records keyed by id; every read returns a copy, as a database would."""

    def __init__(self, *, reference_ttl_seconds: float | None = None) -> None:
        self.reference_ttl_seconds = reference_ttl_seconds
        self._refs: dict[str, Reference] = {}
        self._deliveries: dict[str, Delivery] = {}
        self._broadcasts: dict[str, Broadcast] = {}
        self._recipient_chunks: dict[tuple[str, int], tuple[list[str], float | None]] = {}
        self._keys: dict[str, ApiKey] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._notifications: dict[str, Notification] = {}
        self._index: dict[str, dict[str, float | None]] = {}  # key -> broadcast id -> expiry
        self._erasures: dict[PersonKey, float] = {}

    async def ping(self) -> None:
        return None

    # ---- generic ----------------------------------------------------------------------------
    @staticmethod
    def _visible(record: Any | None) -> Any | None:
        if record is None:
            return None
        expires_at = getattr(record, "expires_at", None)
        if expires_at is not None and expires_at <= now():
            return None
        return record.copy()

    @staticmethod
    def _stored(table: dict[str, Any], doc_id: str, record: Any) -> Any:
        stored = record.copy()
        stored.etag = uuid.uuid4().hex
        table[doc_id] = stored
        return stored.copy()

    def _create(self, table: dict[str, Any], doc_id: str, record: Any) -> Any:
        if self._visible(table.get(doc_id)) is not None:
            raise ConcurrencyConflict(doc_id)
        return self._stored(table, doc_id, record)

    def _replace(self, table: dict[str, Any], doc_id: str, record: Any, etag: str) -> Any:
        current = table.get(doc_id)
        if current is None or current.etag != etag:
            raise ConcurrencyConflict(doc_id)
        return self._stored(table, doc_id, record)

    # ---- references -------------------------------------------------------------------------
    async def get_reference(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        return self._visible(self._refs.get(reference_id(tenant_id, user_key, surface)))

    async def person_references(self, tenant_id: str, user_key: str) -> list[Reference]:
        found = [self._visible(r) for r in self._refs.values() if r.tenant_id == tenant_id and r.user_key == user_key]
        return sorted((r for r in found if r is not None), key=lambda r: r.surface)

    async def write_reference(self, ref: Reference, etag: str | None) -> Reference:
        if etag is None:
            return self._create(self._refs, ref.doc_id, ref)
        return self._replace(self._refs, ref.doc_id, ref, etag)

    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        value = recipient.strip().lower()
        found: dict[PersonKey, None] = {}
        for ref in self._refs.values():
            if self._visible(ref) is None or (tenant_id and ref.tenant_id != tenant_id):
                continue
            if value in {(v or "").lower() for v in (ref.aad_object_id, ref.upn, ref.email)}:
                found[PersonKey(ref.tenant_id, ref.user_key)] = None
        return list(found)

    async def list_references(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]:
        matching = sorted(
            (
                (rid, ref)
                for rid, ref in self._refs.items()
                if self._visible(ref) is not None
                and (not tenant_id or ref.tenant_id == tenant_id)
                and (not status or ref.status == status)
                and (not surface or ref.surface == surface)
                and (not token or rid > token)
            ),
            key=lambda pair: pair[0],
        )
        page = matching[:limit]
        next_token = page[-1][0] if len(matching) > limit else None
        return Page([ref.copy() for _, ref in page], next_token)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        refs = [
            r
            for r in self._refs.values()
            if r.tenant_id == tenant_id and r.channel_id == channel_id and self._visible(r) is not None
        ]
        return max(refs, key=lambda r: r.last_seen).service_url if refs else None

    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        doomed = [rid for rid, r in self._refs.items() if r.tenant_id == tenant_id and r.user_key == user_key]
        for rid in doomed:
            del self._refs[rid]
        return len(doomed)

    # ---- deliveries -------------------------------------------------------------------------
    async def create_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        existing = self._visible(self._deliveries.get(delivery.id))  # an expired one counts as absent
        if existing is not None:
            return existing.copy(), False
        return self._stored(self._deliveries, delivery.id, delivery), True

    async def create_deliveries(self, deliveries: list[Delivery]) -> int:
        created = 0
        for delivery in deliveries:
            if self._visible(self._deliveries.get(delivery.id)) is None:
                self._stored(self._deliveries, delivery.id, delivery)
                created += 1
        return created

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        return self._visible(self._deliveries.get(delivery_id))

    async def write_delivery(self, delivery: Delivery, etag: str) -> Delivery:
        return self._replace(self._deliveries, delivery.id, delivery, etag)

    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        claimed = []
        # Single messages first, as in the SQLite store, so broadcasts do not hold them up.
        ordered = sorted(self._deliveries.values(), key=lambda d: d.broadcast_id is not None)
        for d in ordered:
            if len(claimed) >= limit:
                break
            if d.expires_at is not None and d.expires_at <= at:
                continue
            due = d.status in PENDING and d.not_before <= at
            lapsed = d.status == DeliveryStatus.SENDING and (d.lease_until or 0) <= at
            if due or lapsed:
                d.status = DeliveryStatus.SENDING
                d.lease_owner = owner
                d.lease_until = at + lease_seconds
                d.updated_at = at
                d.etag = uuid.uuid4().hex
                claimed.append(d.copy())
        return claimed

    async def next_due_at(self) -> float | None:
        live = [d for d in self._deliveries.values() if self._visible(d) is not None]
        times = [d.not_before for d in live if d.status in PENDING]
        times += [d.lease_until or 0 for d in live if d.status == DeliveryStatus.SENDING]
        return min(times) if times else None

    async def count_deliveries(self, broadcast_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self._deliveries.values():
            if d.broadcast_id == broadcast_id and self._visible(d) is not None:
                counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    async def list_deliveries(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]:
        matching = sorted(
            (
                d
                for d in self._deliveries.values()
                if self._visible(d) is not None
                and (not broadcast_id or d.broadcast_id == broadcast_id)
                and (not status or d.status == status)
                and (not person or (d.tenant_id, d.user_key) == (person.tenant_id, person.user_key))
                and (not token or d.id > token)
            ),
            key=lambda d: d.id,
        )
        page = matching[:limit]
        return Page([d.copy() for d in page], page[-1].id if len(matching) > limit else None)

    # ---- broadcasts -------------------------------------------------------------------------
    async def create_broadcast(self, broadcast: Broadcast) -> Broadcast:
        return self._create(self._broadcasts, broadcast.id, broadcast)

    async def get_broadcast(self, broadcast_id: str) -> Broadcast | None:
        return self._visible(self._broadcasts.get(broadcast_id))

    async def write_broadcast(self, broadcast: Broadcast, etag: str) -> Broadcast:
        return self._replace(self._broadcasts, broadcast.id, broadcast, etag)

    async def write_recipient_chunk(
        self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None
    ) -> None:
        self._recipient_chunks[(broadcast_id, index)] = (list(recipients), expires_at)

    async def read_recipient_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        chunk = self._recipient_chunks.get((broadcast_id, index))
        if chunk is None or (chunk[1] is not None and chunk[1] <= now()):
            return None
        return list(chunk[0])

    async def unfinished_broadcasts(self) -> list[Broadcast]:
        return [b.copy() for b in self._broadcasts.values() if b.status != "completed" and self._visible(b) is not None]

    async def broadcast_ids(self) -> list[str]:
        return [b.id for b in self._broadcasts.values() if self._visible(b) is not None]

    # ---- API keys, subscriptions ------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> ApiKey:
        if any(k.name == key.name for k in self._keys.values()):
            raise ConcurrencyConflict(key.name)
        return self._create(self._keys, key.id, key)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return self._visible(self._keys.get(key_id))

    async def list_api_keys(self) -> list[ApiKey]:
        return sorted((k.copy() for k in self._keys.values()), key=lambda k: k.name)

    async def write_api_key(self, key: ApiKey, etag: str) -> ApiKey:
        return self._replace(self._keys, key.id, key, etag)

    async def create_subscription(self, subscription: Subscription) -> Subscription:
        return self._create(self._subscriptions, subscription.id, subscription)

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        return self._visible(self._subscriptions.get(subscription_id))

    async def delete_subscription(self, subscription_id: str) -> bool:
        return self._subscriptions.pop(subscription_id, None) is not None

    async def list_subscriptions(self, event: str | None = None) -> list[Subscription]:
        return [s.copy() for s in self._subscriptions.values() if not event or s.event == event]

    # ---- notifications ----------------------------------------------------------------------
    async def create_notifications(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self._create(self._notifications, notification.id, notification)

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        claimed = []
        for stored in list(self._notifications.values()):
            n = self._visible(stored)
            if n is None or not n.is_due(at):
                continue
            n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
            claimed.append(self._stored(self._notifications, n.id, n))
            if len(claimed) == limit:
                break
        return claimed

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        return self._replace(self._notifications, notification.id, notification, etag)

    async def delete_notification(self, notification_id: str) -> None:
        self._notifications.pop(notification_id, None)

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        doomed = [n.id for n in self._notifications.values() if (n.tenant_id, n.user_key) == (tenant_id, user_key)]
        for notification_id in doomed:
            del self._notifications[notification_id]
        return len(doomed)

    # ---- retention and erasure -------------------------------------------------------------
    async def purge_expired(self, at: float) -> dict[str, int]:
        def expired(record: Any) -> bool:
            return record.expires_at is not None and record.expires_at <= at

        counts = {}
        for kind, table in (
            ("references", self._refs),
            ("deliveries", self._deliveries),
            ("broadcasts", self._broadcasts),
            ("notifications", self._notifications),
        ):
            doomed = [doc_id for doc_id, record in table.items() if expired(record)]
            for doc_id in doomed:
                del table[doc_id]
            counts[kind] = len(doomed)
        for key, entries in list(self._index.items()):
            for broadcast_id in [b for b, until in entries.items() if until is not None and until <= at]:
                del entries[broadcast_id]
            if not entries:
                del self._index[key]
        lapsed = [name for name, (_, until) in self._leases.items() if until <= at]
        for name in lapsed:
            del self._leases[name]
        counts["leases"] = len(lapsed)
        return counts

    async def index_broadcast(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        for key in keys:
            self._index.setdefault(key, {})[broadcast_id] = expires_at

    async def indexed_broadcasts(self, keys: list[str]) -> list[str]:
        return sorted({b for key in keys for b in self._index.get(key, {})})

    async def forget_index(self, keys: list[str]) -> None:
        for key in keys:
            self._index.pop(key, None)

    async def queue_erasure(self, person: PersonKey) -> None:
        self._erasures.setdefault(person, now())

    async def pending_erasures(self, limit: int) -> list[PersonKey]:
        return sorted(self._erasures, key=lambda p: self._erasures[p])[:limit]

    async def erasure_done(self, person: PersonKey) -> None:
        self._erasures.pop(person, None)

    # ---- leases -----------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        at = now()
        holder = self._leases.get(name)
        if holder is None or holder[0] == owner or holder[1] <= at:
            self._leases[name] = (owner, at + seconds)
            return True
        return False

    async def release_lease(self, name: str, owner: str) -> None:
        if self._leases.get(name, ("", 0))[0] == owner:
            del self._leases[name]

    async def read_state(self, name: str) -> dict[str, Any] | None:
        state = self._state.get(name)
        return copy.deepcopy(state) if state is not None else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        self._state[name] = copy.deepcopy(state)
