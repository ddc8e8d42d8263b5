"""In-memory broadcasts, their recipient chunks and the person index."""

from __future__ import annotations

from teams_proactive.bot.model import Broadcast, now
from teams_proactive.bot.store.base.broadcasts import Broadcasts
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryBroadcasts(Broadcasts):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def create(self, broadcast: Broadcast) -> Broadcast:
        return self.db.create(self.db.broadcasts, broadcast.id, broadcast)

    async def get(self, broadcast_id: str) -> Broadcast | None:
        return self.db.visible(self.db.broadcasts.get(broadcast_id))

    async def write(self, broadcast: Broadcast, etag: str) -> Broadcast:
        return self.db.replace(self.db.broadcasts, broadcast.id, broadcast, etag)

    async def write_chunk(self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None) -> None:
        self.db.recipient_chunks[(broadcast_id, index)] = (list(recipients), expires_at)

    async def read_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        chunk = self.db.recipient_chunks.get((broadcast_id, index))
        if chunk is None or (chunk[1] is not None and chunk[1] <= now()):
            return None
        return list(chunk[0])

    async def unfinished(self) -> list[Broadcast]:
        return [
            b.copy() for b in self.db.broadcasts.values() if b.status != "completed" and self.db.visible(b) is not None
        ]

    async def ids(self) -> list[str]:
        return [b.id for b in self.db.broadcasts.values() if self.db.visible(b) is not None]

    async def index(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        for key in keys:
            self.db.index.setdefault(key, {})[broadcast_id] = expires_at

    async def indexed(self, keys: list[str]) -> list[str]:
        return sorted({b for key in keys for b in self.db.index.get(key, {})})

    async def forget_index(self, keys: list[str]) -> None:
        for key in keys:
            self.db.index.pop(key, None)
