"""The in-memory store for tests: the same semantics as the others, nothing survives the process."""

from __future__ import annotations

from teams_proactive.bot.store.base import DatabaseStore
from teams_proactive.bot.store.memory.broadcasts import MemoryBroadcasts
from teams_proactive.bot.store.memory.database import MemoryDatabase
from teams_proactive.bot.store.memory.erasures import MemoryErasures
from teams_proactive.bot.store.memory.keys import MemoryKeys
from teams_proactive.bot.store.memory.leases import MemoryLeases
from teams_proactive.bot.store.memory.outbox import MemoryOutbox
from teams_proactive.bot.store.memory.quarantine import MemoryQuarantine
from teams_proactive.bot.store.memory.references import MemoryReferences
from teams_proactive.bot.store.memory.subscriptions import MemorySubscriptions


class MemoryStore(DatabaseStore):
    """The memory backend: one shared MemoryDatabase, one repository per kind of record."""

    def __init__(self, *, reference_ttl_seconds: float | None = None) -> None:
        self.db = MemoryDatabase(reference_ttl_seconds=reference_ttl_seconds)
        self.reference_ttl_seconds = reference_ttl_seconds
        self.references = MemoryReferences(self.db)
        self.outbox = MemoryOutbox(self.db)
        self.broadcasts = MemoryBroadcasts(self.db)
        self.keys = MemoryKeys(self.db)
        self.subscriptions = MemorySubscriptions(self.db)
        self.erasures = MemoryErasures(self.db)
        self.leases = MemoryLeases(self.db)
        self.quarantine = MemoryQuarantine(self.db)
