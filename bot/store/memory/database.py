"""The in-memory backend's tables: dictionaries of records keyed by id, and the create/replace rules they share."""

from __future__ import annotations

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
)
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey
from teams_proactive.bot.store.base.quarantine import DEFAULT_KEEP_SECONDS

PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED)


class MemoryDatabase:
    """Dictionaries of records keyed by id; every read returns a copy, as a database would."""

    def __init__(self, *, reference_ttl_seconds: float | None = None) -> None:
        self.reference_ttl_seconds = reference_ttl_seconds
        self.refs: dict[str, Reference] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.broadcasts: dict[str, Broadcast] = {}
        self.recipient_chunks: dict[tuple[str, int], tuple[list[str], float | None]] = {}
        self.keys: dict[str, ApiKey] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.state: dict[str, dict[str, Any]] = {}
        self.notifications: dict[str, Notification] = {}
        self.index: dict[str, dict[str, float | None]] = {}  # key -> broadcast id -> expiry
        self.erasures: dict[PersonKey, float] = {}
        # (kind, id) -> (what was noted, the record as it was)
        self.quarantine: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.quarantine_seconds = DEFAULT_KEEP_SECONDS

    async def ping(self) -> None:
        return None

    # ---- generic ----------------------------------------------------------------------------
    @staticmethod
    def visible(record: Any | None) -> Any | None:
        if record is None:
            return None
        expires_at = getattr(record, "expires_at", None)
        if expires_at is not None and expires_at <= now():
            return None
        return record.copy()

    @staticmethod
    def stored(table: dict[str, Any], doc_id: str, record: Any) -> Any:
        stored = record.copy()
        stored.etag = uuid.uuid4().hex
        table[doc_id] = stored
        return stored.copy()

    def create(self, table: dict[str, Any], doc_id: str, record: Any) -> Any:
        if self.visible(table.get(doc_id)) is not None:
            raise ConcurrencyConflict(doc_id)
        return self.stored(table, doc_id, record)

    def replace(self, table: dict[str, Any], doc_id: str, record: Any, etag: str) -> Any:
        current = table.get(doc_id)
        if current is None or current.etag != etag:
            raise ConcurrencyConflict(doc_id)
        return self.stored(table, doc_id, record)

    # ---- retention and erasure -------------------------------------------------------------
    async def purge_expired(self, at: float) -> dict[str, int]:
        def expired(record: Any) -> bool:
            return record.expires_at is not None and record.expires_at <= at

        counts = {}
        for kind, table in (
            ("references", self.refs),
            ("deliveries", self.deliveries),
            ("broadcasts", self.broadcasts),
            ("notifications", self.notifications),
        ):
            doomed = [doc_id for doc_id, record in table.items() if expired(record)]
            for doc_id in doomed:
                del table[doc_id]
            counts[kind] = len(doomed)
        for key, entries in list(self.index.items()):
            for broadcast_id in [b for b, until in entries.items() if until is not None and until <= at]:
                del entries[broadcast_id]
            if not entries:
                del self.index[key]
        lapsed = [name for name, (_, until) in self.leases.items() if until <= at]
        for name in lapsed:
            del self.leases[name]
        counts["leases"] = len(lapsed)
        kept_past = [key for key, (q, _) in self.quarantine.items() if q.expires_at is not None and q.expires_at <= at]
        for key in kept_past:
            del self.quarantine[key]
        counts["quarantine"] = len(kept_past)
        return counts

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def compact(self) -> None:
        return None
