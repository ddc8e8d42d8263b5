"""SQLite quarantine: rows moved out of their table into ``quarantine``, body as stored, beside their reason."""

from __future__ import annotations

import sqlite3

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.base.quarantine import KINDS, Quarantine, QuarantinedRecord
from teams_proactive.bot.store.sqlite.database import SqliteDatabase


class SqliteQuarantine(Quarantine):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    @property
    def keep_seconds(self) -> float:  # type: ignore[override]
        return self.db.quarantine_seconds

    @keep_seconds.setter
    def keep_seconds(self, seconds: float) -> None:
        self.db.quarantine_seconds = seconds

    async def isolate(self, kind: str, record_id: str, reason: str) -> bool:
        return await self.db.run(
            lambda c: self.db.tx(c, lambda: self.db.move_aside(c, kind, record_id, reason)), write=True
        )

    async def list(self, kind: str | None = None, limit: int = 100) -> list[QuarantinedRecord]:
        sql = "SELECT kind, id, reason, quarantined_at, expires_at FROM quarantine WHERE (expires_at IS NULL OR expires_at > ?)"
        params: list[object] = [now()]
        if kind:
            sql += " AND kind=?"
            params.append(kind)
        sql += " ORDER BY quarantined_at DESC LIMIT ?"
        params.append(limit)
        rows = await self.db.run(lambda c: c.execute(sql, params).fetchall())
        return [QuarantinedRecord(*row) for row in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT kind, COUNT(*) FROM quarantine WHERE (expires_at IS NULL OR expires_at > ?) GROUP BY kind",
                (now(),),
            ).fetchall()
        )
        return {**dict.fromkeys(KINDS, 0), **{kind: count for kind, count in rows}}

    async def remove(self, kind: str, record_id: str) -> bool:
        def remove(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM quarantine WHERE kind=? AND id=?", (kind, record_id)).rowcount == 1

        return await self.db.run(remove, write=True)

    async def forget(self, person: PersonKey) -> int:
        def forget(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM quarantine WHERE tenant_id=? AND user_key=?", (person.tenant_id, person.user_key)
            ).rowcount

        return await self.db.run(forget, write=True)
