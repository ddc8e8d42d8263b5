"""SQLite erasure requests."""

from __future__ import annotations

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.base.erasures import Erasures
from teams_proactive.bot.store.sqlite.database import SqliteDatabase


class SqliteErasures(Erasures):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def queue(self, person: PersonKey) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO erasures (tenant_id, user_key, requested_at) VALUES (?,?,?)",
                (person.tenant_id, person.user_key, now()),
            ),
            write=True,
        )

    async def pending(self, limit: int) -> list[PersonKey]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT tenant_id, user_key FROM erasures ORDER BY requested_at LIMIT ?", (limit,)
            ).fetchall()
        )
        return [PersonKey(t, u) for t, u in rows]

    async def done(self, person: PersonKey) -> None:
        await self.db.run(
            lambda c: c.execute(
                "DELETE FROM erasures WHERE tenant_id=? AND user_key=?", (person.tenant_id, person.user_key)
            ),
            write=True,
        )
