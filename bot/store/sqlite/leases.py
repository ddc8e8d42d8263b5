"""SQLite leases and saved state."""

from __future__ import annotations

import sqlite3
from typing import Any

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import now
from teams_proactive.bot.store.base.leases import Leases
from teams_proactive.bot.store.sqlite.database import SqliteDatabase


class SqliteLeases(Leases):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def acquire(self, name: str, owner: str, seconds: float) -> bool:
        def acquire(c: sqlite3.Connection) -> bool:
            at = now()
            cur = c.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET"
                " owner=excluded.owner, until=excluded.until WHERE leases.owner=excluded.owner OR leases.until<=?",
                (name, owner, at + seconds, at),
            )
            return cur.rowcount == 1

        return await self.db.run(acquire, inline=True, write=True)

    async def release(self, name: str, owner: str) -> None:
        await self.db.run(
            lambda c: c.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner)), inline=True, write=True
        )

    async def read_state(self, name: str) -> dict[str, Any] | None:
        row = await self.db.run(lambda c: c.execute("SELECT body FROM state WHERE name=?", (name,)).fetchone())
        return dict(jsoncodec.loads(row[0])) if row else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        body = jsoncodec.dumps(state)
        await self.db.run(
            lambda c: c.execute(
                "INSERT INTO state (name, body) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET body=excluded.body",
                (name, body),
            ),
            inline=True,
            write=True,
        )
