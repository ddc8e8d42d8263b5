"""In-memory leases and saved state."""

from __future__ import annotations

import copy
from typing import Any

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base.leases import Leases
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryLeases(Leases):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def acquire(self, name: str, owner: str, seconds: float) -> bool:
        at = now()
        holder = self.db.leases.get(name)
        if holder is None or holder[0] == owner or holder[1] <= at:
            self.db.leases[name] = (owner, at + seconds)
            return True
        return False

    async def release(self, name: str, owner: str) -> None:
        if self.db.leases.get(name, ("", 0))[0] == owner:
            del self.db.leases[name]

    async def read_state(self, name: str) -> dict[str, Any] | None:
        state = self.db.state.get(name)
        return copy.deepcopy(state) if state is not None else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        self.db.state[name] = copy.deepcopy(state)
