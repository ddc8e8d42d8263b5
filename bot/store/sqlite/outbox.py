"""SQLite outbox: deliveries, the dispatcher's claims (one transaction), due times and per-broadcast counts."""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import Delivery, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Page, PersonKey, ReadTally
from teams_proactive.bot.store.base.outbox import Outbox
from teams_proactive.bot.store.sqlite.database import PENDING, SqliteDatabase, make_etag
from teams_proactive.bot.unreadable import decode_each


class SqliteOutbox(Outbox):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    @staticmethod
    def _delivery_values(d: Delivery, etag: str) -> tuple[Any, ...]:
        return (
            d.status, d.not_before, d.lease_until, d.broadcast_id, d.tenant_id, d.user_key,
            d.expires_at, etag, jsoncodec.dumps(d.to_doc()), d.id,
        )  # fmt: skip

    # An existing id is left alone unless its retention ran out: an expired record counts as absent.
    _INSERT_DELIVERY = (
        "INSERT INTO deliveries (status, not_before, lease_until, broadcast_id, tenant_id,"
        " user_key, expires_at, etag, body, id) VALUES (?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET status=excluded.status, not_before=excluded.not_before,"
        " lease_until=excluded.lease_until, broadcast_id=excluded.broadcast_id, tenant_id=excluded.tenant_id,"
        " user_key=excluded.user_key, expires_at=excluded.expires_at, etag=excluded.etag, body=excluded.body"
        " WHERE deliveries.expires_at IS NOT NULL"
        " AND deliveries.expires_at <= (julianday('now') - 2440587.5) * 86400.0"
    )

    _UPDATE_DELIVERY = (
        "UPDATE deliveries SET status=?, not_before=?, lease_until=?, broadcast_id=?, tenant_id=?,"
        " user_key=?, expires_at=?, etag=?, body=? WHERE id=? AND etag=?"
    )

    # Claiming: the lease goes on the columns the outbox queries and on the body the record is read from.
    # Times go into the body as JSON text (json(?)): bound as REAL, json_set would keep 15 digits, and
    # a lease is compared exactly.
    _CLAIM_DELIVERIES = (
        "UPDATE deliveries SET status='sending', lease_until=?, etag=lower(hex(randomblob(16))),"
        " body=json_set(body, '$.status', 'sending', '$.lease_owner', ?, '$.lease_until', json(?), '$.updated_at', json(?))"
    )

    @staticmethod
    def _delivery(row: Any) -> Delivery:
        return Delivery.from_doc(jsoncodec.loads(row[1]), etag=row[0])

    async def _readable(self, rows: list[Any]) -> list[Delivery]:
        """``(id, etag, body)`` rows decoded; one that cannot be is moved to quarantine and left out.

        The batch is decoded at once (the usual case); only when that fails, row by row."""
        try:
            return [self._delivery(row[1:]) for row in rows]
        except Exception:
            decoded, unreadable = decode_each(((row[0], row[1:]) for row in rows), self._delivery, "delivery")
            await self.db.set_aside(unreadable)
            return decoded

    async def create(self, delivery: Delivery) -> tuple[Delivery, bool]:
        etag = make_etag()

        def create(c: sqlite3.Connection) -> tuple[Delivery, bool]:
            cur = c.execute(self._INSERT_DELIVERY, self._delivery_values(delivery, etag))
            if cur.rowcount == 1:
                stored = delivery.copy()
                stored.etag = etag
                return stored, True
            row = c.execute("SELECT etag, body FROM deliveries WHERE id=?", (delivery.id,)).fetchone()
            return self._delivery(row), False

        return await self.db.run(create, inline=True, write=True)

    async def create_many(self, deliveries: list[Delivery]) -> int:
        def create(c: sqlite3.Connection) -> int:
            def insert() -> int:
                before = c.total_changes
                c.executemany(self._INSERT_DELIVERY, [self._delivery_values(d, make_etag()) for d in deliveries])
                return c.total_changes - before

            return self.db.tx(c, insert)

        return await self.db.run(create)

    async def get(self, delivery_id: str) -> Delivery | None:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT id, etag, body FROM deliveries WHERE id=? AND (expires_at IS NULL OR expires_at > ?)",
                (delivery_id, now()),
            ).fetchall(),
            inline=True,
        )
        found = await self._readable(rows)
        return found[0] if found else None

    async def write(self, delivery: Delivery, etag: str) -> Delivery:
        new_etag = make_etag()

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(self._UPDATE_DELIVERY, (*self._delivery_values(delivery, new_etag), etag))
            if cur.rowcount != 1:
                raise ConcurrencyConflict(delivery.id)

        await self.db.run(write, inline=True, write=True)
        # Shallow: the record was just serialised, so nothing here shares state with the store.
        stored = copy.copy(delivery)
        stored.etag = new_etag
        return stored

    async def write_many(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
        # One transaction for the group: a commit costs more than the UPDATE it makes durable.
        etags = [make_etag() for _ in writes]
        values = [(*self._delivery_values(d, new), etag) for (d, etag), new in zip(writes, etags, strict=True)]

        def write(c: sqlite3.Connection) -> list[bool]:
            return self.db.tx(c, lambda: [c.execute(self._UPDATE_DELIVERY, v).rowcount == 1 for v in values])

        written = await self.db.run(write, inline=True, write=True)
        stored: list[Delivery | None] = []
        for (delivery, _), new, ok in zip(writes, etags, written, strict=True):
            result = copy.copy(delivery) if ok else None
            if result is not None:
                result.etag = new
            stored.append(result)
        return stored

    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        live = "(expires_at IS NULL OR expires_at > ?)"  # retention ran out: invisible, never sent
        lease_until = at + lease_seconds

        def claim(c: sqlite3.Connection) -> list[Any]:
            def take() -> list[Any]:
                # Single messages first, so a flow's SendMessage does not queue behind a broadcast;
                # then broadcast entries, then sends whose dispatcher died (lease ran out).
                ids = [
                    row[0]
                    for row in c.execute(
                        "SELECT id FROM deliveries WHERE broadcast_id IS NULL AND status IN (?,?)"
                        f" AND not_before <= ? AND {live} LIMIT ?",
                        (*PENDING, at, at, limit),
                    )
                ]
                if len(ids) < limit:
                    ids += [
                        row[0]
                        for row in c.execute(
                            "SELECT id FROM deliveries WHERE status IN (?,?) AND not_before <= ?"
                            f" AND broadcast_id IS NOT NULL AND {live}"
                            f" UNION ALL SELECT id FROM deliveries WHERE status='sending' AND lease_until <= ? AND {live}"
                            " LIMIT ?",
                            (*PENDING, at, at, at, at, limit - len(ids)),
                        )
                    ]
                if not ids:
                    return []

                # One statement marks the whole batch, the body edited by SQLite's json_set rather than
                # parsed and rewritten here: the claim is a large part of the outbox's cost per message.
                def mark(ids: list[str]) -> list[Any]:
                    return c.execute(
                        f"{self._CLAIM_DELIVERIES} WHERE id IN ({','.join('?' * len(ids))}) RETURNING id, etag, body",
                        (lease_until, owner, jsoncodec.dumps(lease_until), jsoncodec.dumps(at), *ids),
                    ).fetchall()

                try:
                    rows = mark(ids)
                except sqlite3.OperationalError as exc:
                    if "JSON" not in str(exc):
                        raise
                    # A body that is not JSON at all fails json_set for the whole batch: move it
                    # aside (in this transaction) and mark the others.
                    marks = ",".join("?" * len(ids))
                    broken = {
                        row[0]
                        for row in c.execute(
                            f"SELECT id FROM deliveries WHERE id IN ({marks}) AND NOT json_valid(body)", ids
                        )
                    }
                    for record_id in broken:
                        self.db.move_aside(c, "delivery", record_id, "malformed JSON")
                    ids = [i for i in ids if i not in broken]
                    rows = mark(ids) if ids else []
                order = {record_id: n for n, record_id in enumerate(ids)}
                return sorted(rows, key=lambda row: order.get(row[0], len(order)))

            return self.db.tx(c, take)

        return await self._readable(await self.db.run(claim, inline=True, write=True))

    async def next_due_at(self) -> float | None:
        def earliest(c: sqlite3.Connection) -> float | None:
            live, at = "(expires_at IS NULL OR expires_at > ?)", now()
            pending = c.execute(
                f"SELECT MIN(not_before) FROM deliveries WHERE status IN (?,?) AND {live}", (*PENDING, at)
            ).fetchone()[0]
            leased = c.execute(
                f"SELECT MIN(lease_until) FROM deliveries WHERE status='sending' AND {live}", (at,)
            ).fetchone()[0]
            times = [t for t in (pending, leased) if t is not None]
            return min(times) if times else None

        return await self.db.run(earliest, inline=True)

    async def count(self, broadcast_id: str) -> dict[str, int]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT status, COUNT(*) FROM deliveries WHERE broadcast_id=?"
                " AND (expires_at IS NULL OR expires_at > ?) GROUP BY status",
                (broadcast_id, now()),
            ).fetchall()
        )
        return {status: count for status, count in rows}

    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        rows = await self.db.run(
            lambda c: c.execute(
                "SELECT json_extract(body, '$.install_outcome') AS outcome, COUNT(*) FROM deliveries"
                " WHERE broadcast_id=? AND (expires_at IS NULL OR expires_at > ?) AND outcome IS NOT NULL"
                " GROUP BY outcome",
                (broadcast_id, now()),
            ).fetchall()
        )
        return {outcome: count for outcome, count in rows}

    async def tally_reads(self, broadcast_id: str) -> ReadTally:
        # Counted from the deliveries_delivered and deliveries_seen indexes (their WHERE terms and
        # expressions spelled exactly as there, so the planner uses them) rather than by loading
        # every delivery: GetBroadcast asks on every call, and a report is polled.
        where = (
            " FROM deliveries WHERE broadcast_id=? AND (expires_at IS NULL OR expires_at > ?)"
            " AND json_extract(body, '$.delivered_at') IS NOT NULL"
        )
        seen_where = (
            where
            + " AND (json_extract(body, '$.read_at') IS NOT NULL OR json_extract(body, '$.responded_at') IS NOT NULL)"
        )

        def tally(c: sqlite3.Connection) -> ReadTally:
            params = (broadcast_id, now())
            (delivered,) = c.execute("SELECT COUNT(*)" + where, params).fetchone()
            rows = c.execute(
                "SELECT json_extract(body, '$.read_at'), json_extract(body, '$.responded_at')" + seen_where, params
            ).fetchall()
            # The first of receipt and answer (SQLite's min() of two is NULL when either is).
            seen = [float(min(t for t in row if t is not None)) for row in rows]
            return ReadTally(int(delivered), sum(row[1] is not None for row in rows), seen)

        return await self.db.run(tally)

    async def page(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]:
        sql = "SELECT etag, body, id FROM deliveries WHERE (expires_at IS NULL OR expires_at > ?)"
        params: list[Any] = [now()]
        if broadcast_id:
            sql += " AND broadcast_id=?"
            params.append(broadcast_id)
        if status:
            sql += " AND status=?"
            params.append(status)
        if person:
            sql += " AND tenant_id=? AND user_key=?"
            params += [person.tenant_id, person.user_key]
        if token:
            sql += " AND id > ?"
            params.append(token)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit + 1)
        rows = await self.db.run(lambda c: c.execute(sql, params).fetchall())
        items = await self._readable([(r[2], r[0], r[1]) for r in rows[:limit]])
        return Page(items, rows[limit - 1][2] if len(rows) > limit else None)
