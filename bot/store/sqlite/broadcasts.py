"""SQLite broadcasts, their recipient chunks and the person index."""

from __future__ import annotations

import sqlite3

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import Broadcast, now
from teams_proactive.bot.store.base import visible
from teams_proactive.bot.store.base.broadcasts import Broadcasts
from teams_proactive.bot.store.sqlite.database import SqliteDatabase
from teams_proactive.bot.unreadable import Unreadable, decode_each, reason_of


class SqliteBroadcasts(Broadcasts):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def create(self, broadcast: Broadcast) -> Broadcast:
        return await self.db.create_doc("broadcasts", broadcast, broadcast.id, {"status": broadcast.status})

    async def get(self, broadcast_id: str) -> Broadcast | None:
        try:
            return await self.db.get_doc("broadcasts", Broadcast, broadcast_id)
        except sqlite3.Error:
            raise
        except Exception as exc:  # unreadable: moved to quarantine, and absent from now on
            await self.db.set_aside([Unreadable("broadcast", broadcast_id, reason_of(exc))])
            return None

    async def write(self, broadcast: Broadcast, etag: str) -> Broadcast:
        return await self.db.replace_doc("broadcasts", broadcast, broadcast.id, etag, {"status": broadcast.status})

    async def write_chunk(self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None) -> None:
        body = jsoncodec.dumps(recipients)

        def write(c: sqlite3.Connection) -> None:
            def upsert() -> None:
                c.execute(
                    "INSERT OR REPLACE INTO broadcast_recipients (broadcast_id, idx, expires_at, body)"
                    " VALUES (?, ?, ?, ?)",
                    (broadcast_id, index, expires_at, body),
                )
                if index == 0:
                    # Lists whose broadcast's retention ran out are physically removed here.
                    c.execute("DELETE FROM broadcast_recipients WHERE expires_at <= ?", (now(),))

            self.db.tx(c, upsert)

        await self.db.run(write, write=True)

    async def read_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT body FROM broadcast_recipients WHERE broadcast_id=? AND idx=?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (broadcast_id, index, now()),
            ).fetchall()
        )
        return list(jsoncodec.loads(rows[0][0])) if rows else None

    async def unfinished(self) -> list[Broadcast]:
        rows = await self.db.run(
            lambda c: c.execute("SELECT id, etag, body FROM broadcasts WHERE status != 'completed'").fetchall()
        )

        def decode(row: tuple[str, str]) -> Broadcast:
            return Broadcast.from_doc(jsoncodec.loads(row[1]), etag=row[0])

        try:
            broadcasts = [decode(row[1:]) for row in rows]
        except Exception:  # one that cannot be read goes to quarantine; the coordinator gets the rest
            broadcasts, unreadable = decode_each(((row[0], row[1:]) for row in rows), decode, "broadcast")
            await self.db.set_aside(unreadable)
        return visible(broadcasts)

    async def ids(self) -> list[str]:
        rows = await self.db.run(
            lambda c: c.execute(
                # The retention time lives in the record (the expires_at column is not kept up).
                "SELECT id FROM broadcasts WHERE coalesce(json_extract(body, '$.expires_at') > ?, 1)",
                (now(),),
            ).fetchall()
        )
        return [broadcast_id for (broadcast_id,) in rows]

    async def index(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        rows = [(key, broadcast_id, expires_at) for key in dict.fromkeys(keys)]

        def insert(c: sqlite3.Connection) -> None:
            self.db.tx(
                c,
                lambda: c.executemany(
                    "INSERT INTO broadcast_index (key, broadcast_id, expires_at) VALUES (?,?,?)"
                    " ON CONFLICT(key, broadcast_id) DO UPDATE SET expires_at=excluded.expires_at",
                    rows,
                ),
            )

        if rows:
            await self.db.run(insert)

    async def indexed(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = await self.db.run(
            lambda c: c.execute(
                f"SELECT DISTINCT broadcast_id FROM broadcast_index WHERE key IN ({marks}) ORDER BY broadcast_id", keys
            ).fetchall()
        )
        return [broadcast_id for (broadcast_id,) in rows]

    async def forget_index(self, keys: list[str]) -> None:
        if keys:
            marks = ",".join("?" * len(keys))
            await self.db.run(lambda c: c.execute(f"DELETE FROM broadcast_index WHERE key IN ({marks})", keys))
