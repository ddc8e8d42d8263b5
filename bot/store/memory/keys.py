"""In-memory API keys."""

from __future__ import annotations

from teams_proactive.bot.model import ApiKey
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.keys import Keys
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryKeys(Keys):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def create(self, key: ApiKey) -> ApiKey:
        if any(k.name == key.name for k in self.db.keys.values()):
            raise ConcurrencyConflict(key.name)
        return self.db.create(self.db.keys, key.id, key)

    async def get(self, key_id: str) -> ApiKey | None:
        return self.db.visible(self.db.keys.get(key_id))

    async def list_all(self) -> list[ApiKey]:
        return sorted((k.copy() for k in self.db.keys.values()), key=lambda k: k.name)

    async def write(self, key: ApiKey, etag: str) -> ApiKey:
        return self.db.replace(self.db.keys, key.id, key, etag)
