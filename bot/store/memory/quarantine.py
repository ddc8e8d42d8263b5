"""In-memory quarantine: records moved out of their dictionary, kept beside their reason."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.base.quarantine import KINDS, Quarantine, QuarantinedRecord
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryQuarantine(Quarantine):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    @property
    def keep_seconds(self) -> float:  # type: ignore[override]
        return self.db.quarantine_seconds

    @keep_seconds.setter
    def keep_seconds(self, seconds: float) -> None:
        self.db.quarantine_seconds = seconds

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "delivery": self.db.deliveries,
            "broadcast": self.db.broadcasts,
            "notification": self.db.notifications,
            "reference": self.db.refs,
        }
        return tables[kind]

    async def isolate(self, kind: str, record_id: str, reason: str) -> bool:
        record = self._table(kind).pop(record_id, None)
        if record is None:
            return False
        at = now()
        self.db.quarantine[(kind, record_id)] = (
            QuarantinedRecord(kind, record_id, reason, at, at + self.db.quarantine_seconds),
            record,
        )
        return True

    def _kept(self) -> list[QuarantinedRecord]:
        at = now()
        return [q for q, _ in self.db.quarantine.values() if q.expires_at is None or q.expires_at > at]

    async def list(self, kind: str | None = None, limit: int = 100) -> list[QuarantinedRecord]:
        kept = [q for q in self._kept() if kind is None or q.kind == kind]
        return sorted(kept, key=lambda q: q.quarantined_at, reverse=True)[:limit]

    async def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for q in self._kept():
            counts[q.kind] = counts.get(q.kind, 0) + 1
        return counts

    async def remove(self, kind: str, record_id: str) -> bool:
        return self.db.quarantine.pop((kind, record_id), None) is not None

    async def forget(self, person: PersonKey) -> int:
        doomed = [
            key
            for key, (_, record) in self.db.quarantine.items()
            if getattr(record, "tenant_id", None) == person.tenant_id
            and getattr(record, "user_key", None) == person.user_key
        ]
        for key in doomed:
            del self.db.quarantine[key]
        return len(doomed)
