"""SQLite references: one row per person and surface, with the columns lookups filter on."""

from __future__ import annotations

import sqlite3
from typing import Any

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import Reference, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Page, PersonKey
from teams_proactive.bot.store.base.references import References
from teams_proactive.bot.store.sqlite.database import SqliteDatabase, lowered, make_etag
from teams_proactive.bot.unreadable import decode_each


class SqliteReferences(References):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.reference_ttl_seconds = db.reference_ttl_seconds

    @staticmethod
    def _ref(row: Any) -> Reference:
        return Reference.from_doc(jsoncodec.loads(row[1]), etag=row[0])

    def _live_refs(self, rows: list[Any]) -> list[Reference]:
        at = now()
        return [r for r in (self._ref(row) for row in rows) if not r.is_expired(at)]

    async def get(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        rid = f"{tenant_id}|{user_key}|{surface}"
        rows = await self.db.run(
            lambda c: c.execute("SELECT etag, body FROM refs WHERE id=?", (rid,)).fetchall(), inline=True
        )
        live = self._live_refs(rows)
        return live[0] if live else None

    async def of_person(self, tenant_id: str, user_key: str) -> list[Reference]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT etag, body FROM refs WHERE tenant_id=? AND user_key=? ORDER BY surface",
                (tenant_id, user_key),
            ).fetchall(),
            inline=True,
        )
        return self._live_refs(rows)

    async def write(self, ref: Reference, etag: str | None) -> Reference:
        new_etag = make_etag()
        values = (
            ref.tenant_id, ref.user_key, ref.surface, lowered(ref.aad_object_id), lowered(ref.upn),
            lowered(ref.email), ref.status, ref.channel_id, ref.last_seen, ref.expires_at, new_etag,
            jsoncodec.dumps(ref.to_doc()),
        )  # fmt: skip

        def write(c: sqlite3.Connection) -> None:
            if etag is None:
                try:
                    c.execute(
                        "INSERT INTO refs (tenant_id, user_key, surface, aad, upn, email, status, channel_id,"
                        " last_seen, expires_at, etag, body, id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (*values, ref.doc_id),
                    )
                except sqlite3.IntegrityError as exc:
                    # An expired record may still sit there: it counts as absent.
                    cur = c.execute(
                        "UPDATE refs SET tenant_id=?, user_key=?, surface=?, aad=?, upn=?, email=?, status=?,"
                        " channel_id=?, last_seen=?, expires_at=?, etag=?, body=? WHERE id=? AND"
                        " expires_at IS NOT NULL AND expires_at <= ?",
                        (*values, ref.doc_id, now()),
                    )
                    if cur.rowcount != 1:
                        raise ConcurrencyConflict(ref.doc_id) from exc
                return
            cur = c.execute(
                "UPDATE refs SET tenant_id=?, user_key=?, surface=?, aad=?, upn=?, email=?, status=?,"
                " channel_id=?, last_seen=?, expires_at=?, etag=?, body=? WHERE id=? AND etag=?",
                (*values, ref.doc_id, etag),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(ref.doc_id)

        await self.db.run(write, inline=True, write=True)
        stored = ref.copy()
        stored.etag = new_etag
        return stored

    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        value = recipient.strip().lower()
        sql = "SELECT DISTINCT tenant_id, user_key FROM refs WHERE (aad=? OR upn=? OR email=?)"
        params: list[Any] = [value, value, value]
        sql += " AND (expires_at IS NULL OR expires_at > ?)"
        params.append(now())
        if tenant_id:
            sql += " AND tenant_id=?"
            params.append(tenant_id)
        rows = await self.db.run(lambda c: c.execute(sql, params).fetchall(), inline=True)
        return [PersonKey(t, u) for t, u in rows]

    async def page(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]:
        sql = "SELECT etag, body, id FROM refs WHERE (expires_at IS NULL OR expires_at > ?)"
        params: list[Any] = [now()]
        for column, value in (("tenant_id", tenant_id), ("status", status), ("surface", surface)):
            if value:
                sql += f" AND {column}=?"
                params.append(value)
        if token:
            sql += " AND id > ?"
            params.append(token)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit + 1)
        rows = await self.db.run(lambda c: c.execute(sql, params).fetchall())
        try:
            items = [self._ref(row) for row in rows[:limit]]
        except Exception:  # one that cannot be read goes to quarantine; the page holds the rest
            items, unreadable = decode_each(((row[2], row) for row in rows[:limit]), self._ref, "reference")
            await self.db.set_aside(unreadable)
        return Page(items, rows[limit - 1][2] if len(rows) > limit else None)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT body FROM refs WHERE tenant_id=? AND channel_id=? AND (expires_at IS NULL OR expires_at > ?)"
                " ORDER BY last_seen DESC LIMIT 1",
                (tenant_id, channel_id, now()),
            ).fetchall()
        )
        return jsoncodec.loads(rows[0][0])["service_url"] if rows else None

    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        def delete(c: sqlite3.Connection) -> int:
            return c.execute("DELETE FROM refs WHERE tenant_id=? AND user_key=?", (tenant_id, user_key)).rowcount

        return await self.db.run(delete)
