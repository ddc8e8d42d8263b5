"""In-memory erasure requests."""

from __future__ import annotations

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.base.erasures import Erasures
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryErasures(Erasures):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def queue(self, person: PersonKey) -> None:
        self.db.erasures.setdefault(person, now())

    async def pending(self, limit: int) -> list[PersonKey]:
        return sorted(self.db.erasures, key=lambda p: self.db.erasures[p])[:limit]

    async def done(self, person: PersonKey) -> None:
        self.db.erasures.pop(person, None)
