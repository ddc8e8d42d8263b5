"""SQLite backend: one WAL-mode file, safe for several threads and several processes.

Each record is kept whole as JSON beside the few columns that queries filter on. Short point reads
and writes run inline on the event loop with a connection that never waits for a lock (busy timeout
0): they take a fraction of a millisecond, and handing each to a thread cost the outbox more CPU than
the statement itself. When the file is locked by another writer, and for anything bulky (lists,
counts, batches), the call goes to a small thread pool (one connection per thread) that may wait, so
the event loop never does.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import (
    ApiKey,
    Broadcast,
    Delivery,
    DeliveryStatus,
    Notification,
    Reference,
    Subscription,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, Page, PersonKey, ReadTally, Store, visible

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_key TEXT NOT NULL, surface TEXT NOT NULL,
    aad TEXT, upn TEXT, email TEXT, status TEXT NOT NULL, channel_id TEXT, last_seen REAL,
    expires_at REAL, etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refs_person ON refs (tenant_id, user_key);
CREATE INDEX IF NOT EXISTS refs_aad ON refs (aad);
CREATE INDEX IF NOT EXISTS refs_upn ON refs (upn);
CREATE INDEX IF NOT EXISTS refs_email ON refs (email);
CREATE INDEX IF NOT EXISTS refs_tenant_status ON refs (tenant_id, status);
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, not_before REAL NOT NULL, lease_until REAL,
    broadcast_id TEXT, tenant_id TEXT, user_key TEXT, expires_at REAL, etag TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, not_before);
CREATE INDEX IF NOT EXISTS deliveries_single_due ON deliveries (status, not_before) WHERE broadcast_id IS NULL;
CREATE INDEX IF NOT EXISTS deliveries_broadcast ON deliveries (broadcast_id, status);
CREATE INDEX IF NOT EXISTS deliveries_person ON deliveries (tenant_id, user_key);
-- GetBroadcast's engagement (tally_reads) is counted from these partial indexes alone, without parsing
-- bodies. Partial, so that a write leaves them alone until the delivery is delivered, read or answered.
CREATE INDEX IF NOT EXISTS deliveries_delivered ON deliveries (broadcast_id, expires_at)
    WHERE broadcast_id IS NOT NULL AND json_extract(body, '$.delivered_at') IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_seen ON deliveries (broadcast_id, json_extract(body, '$.read_at'),
    json_extract(body, '$.responded_at'), expires_at) WHERE broadcast_id IS NOT NULL
    AND json_extract(body, '$.delivered_at') IS NOT NULL
    AND (json_extract(body, '$.read_at') IS NOT NULL OR json_extract(body, '$.responded_at') IS NOT NULL);
CREATE TABLE IF NOT EXISTS broadcasts (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, expires_at REAL, etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS broadcast_recipients (
    broadcast_id TEXT NOT NULL, idx INTEGER NOT NULL, expires_at REAL, body TEXT NOT NULL,
    PRIMARY KEY (broadcast_id, idx));
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY, due REAL NOT NULL, tenant_id TEXT, user_key TEXT, expires_at REAL,
    etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (due);
CREATE INDEX IF NOT EXISTS notifications_person ON notifications (tenant_id, user_key);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
CREATE INDEX IF NOT EXISTS refs_expiry ON refs (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS broadcast_index (
    key TEXT NOT NULL, broadcast_id TEXT NOT NULL, expires_at REAL, PRIMARY KEY (key, broadcast_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS broadcast_index_expiry ON broadcast_index (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS erasures (
    tenant_id TEXT NOT NULL, user_key TEXT NOT NULL, requested_at REAL NOT NULL, PRIMARY KEY (tenant_id, user_key));
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, body TEXT NOT NULL);
"""
# Rows removed per statement while purging: each batch is one short write transaction, so sends
# and captures are never held up for long behind a large purge.
PURGE_BATCH = 500
# A lapsed lease is kept this long before it is removed (it is harmless; this only keeps it from
# being removed while its holder is about to renew it late).
LEASE_GRACE_SECONDS = 300.0

PENDING = (DeliveryStatus.QUEUED.value, DeliveryStatus.SCHEDULED.value)


def _etag() -> str:
    return uuid.uuid4().hex


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


class SqliteStore(Store):
    """The default store: a single file, created on first use."""

    def __init__(self, path: str, *, reference_ttl_seconds: float | None = None, threads: int = 4) -> None:
        self.path = path
        self.reference_ttl_seconds = reference_ttl_seconds
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-store")
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Inline writes do not checkpoint the WAL themselves (that can take milliseconds): every so
        # many, a passive checkpoint runs on the pool.
        self._inline_writes = 0

    # ---- plumbing ---------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN ourselves so a claim is one atomic transaction.
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only an OS crash may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # Deleted and overwritten content is zeroed in the file, not left in free pages.
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _inline_connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "inline", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute("PRAGMA secure_delete=ON")
            self._local.inline = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False, write: bool = False) -> T:
        """Run ``fn`` with a connection: inline when asked and the lock is free, else on the pool.

        ``fn`` must be safe to run again after SQLITE_BUSY: its first write statement (or its
        BEGIN IMMEDIATE) is what meets the lock, so nothing was written when it is refused.
        """
        if inline and self.path != ":memory:":
            conn = self._inline_connection()
            try:
                result = fn(conn)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                if write:
                    self._inline_writes += 1
                    if self._inline_writes >= 500:
                        self._inline_writes = 0
                        self._executor.submit(self._checkpoint)
                return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connection()))

    def _checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # a checkpoint is housekeeping; the next one catches up
            pass

    @staticmethod
    def _tx(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def open(self) -> None:
        def create(c: sqlite3.Connection) -> None:
            c.executescript(SCHEMA)

        def make_folder() -> None:
            if self.path != ":memory:":
                Path(self.path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)

        await asyncio.to_thread(make_folder)
        await self._run(create)

    async def close(self) -> None:
        def close_all() -> None:
            # Queries still running on the pool finish first (cancelling their caller does not stop
            # the thread): closing a connection under a running statement crashes the process.
            self._executor.shutdown(wait=True)
            with self._connections_lock:
                for conn in self._connections:
                    conn.close()
                self._connections.clear()

        # Run inline, not on the default executor: at interpreter exit that executor is already shut
        # down, and closing is the last thing the store does anyway.
        close_all()

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    # ---- references -------------------------------------------------------------------------
    @staticmethod
    def _ref(row: Any) -> Reference:
        return Reference.from_doc(jsoncodec.loads(row[1]), etag=row[0])

    def _live_refs(self, rows: list[Any]) -> list[Reference]:
        at = now()
        return [r for r in (self._ref(row) for row in rows) if not r.is_expired(at)]

    async def get_reference(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        rid = f"{tenant_id}|{user_key}|{surface}"
        rows = await self._run(
            lambda c: c.execute("SELECT etag, body FROM refs WHERE id=?", (rid,)).fetchall(), inline=True
        )
        live = self._live_refs(rows)
        return live[0] if live else None

    async def person_references(self, tenant_id: str, user_key: str) -> list[Reference]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT etag, body FROM refs WHERE tenant_id=? AND user_key=? ORDER BY surface",
                (tenant_id, user_key),
            ).fetchall(),
            inline=True,
        )
        return self._live_refs(rows)

    async def write_reference(self, ref: Reference, etag: str | None) -> Reference:
        new_etag = _etag()
        values = (
            ref.tenant_id, ref.user_key, ref.surface, _lower(ref.aad_object_id), _lower(ref.upn),
            _lower(ref.email), ref.status, ref.channel_id, ref.last_seen, ref.expires_at, new_etag,
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

        await self._run(write, inline=True, write=True)
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
        rows = await self._run(lambda c: c.execute(sql, params).fetchall(), inline=True)
        return [PersonKey(t, u) for t, u in rows]

    async def list_references(
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
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        items = [self._ref(row) for row in rows[:limit]]
        return Page(items, rows[limit - 1][2] if len(rows) > limit else None)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        rows = await self._run(
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

        return await self._run(delete)

    # ---- deliveries -------------------------------------------------------------------------
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

    async def create_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        etag = _etag()

        def create(c: sqlite3.Connection) -> tuple[Delivery, bool]:
            cur = c.execute(self._INSERT_DELIVERY, self._delivery_values(delivery, etag))
            if cur.rowcount == 1:
                stored = delivery.copy()
                stored.etag = etag
                return stored, True
            row = c.execute("SELECT etag, body FROM deliveries WHERE id=?", (delivery.id,)).fetchone()
            return self._delivery(row), False

        return await self._run(create, inline=True, write=True)

    async def create_deliveries(self, deliveries: list[Delivery]) -> int:
        def create(c: sqlite3.Connection) -> int:
            def insert() -> int:
                before = c.total_changes
                c.executemany(self._INSERT_DELIVERY, [self._delivery_values(d, _etag()) for d in deliveries])
                return c.total_changes - before

            return self._tx(c, insert)

        return await self._run(create)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT etag, body FROM deliveries WHERE id=? AND (expires_at IS NULL OR expires_at > ?)",
                (delivery_id, now()),
            ).fetchall(),
            inline=True,
        )
        return self._delivery(rows[0]) if rows else None

    async def write_delivery(self, delivery: Delivery, etag: str) -> Delivery:
        new_etag = _etag()

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(self._UPDATE_DELIVERY, (*self._delivery_values(delivery, new_etag), etag))
            if cur.rowcount != 1:
                raise ConcurrencyConflict(delivery.id)

        await self._run(write, inline=True, write=True)
        # Shallow: the record was just serialised, so nothing here shares state with the store.
        stored = copy.copy(delivery)
        stored.etag = new_etag
        return stored

    async def write_deliveries(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
        # One transaction for the group: a commit costs more than the UPDATE it makes durable.
        etags = [_etag() for _ in writes]
        values = [(*self._delivery_values(d, new), etag) for (d, etag), new in zip(writes, etags, strict=True)]

        def write(c: sqlite3.Connection) -> list[bool]:
            return self._tx(c, lambda: [c.execute(self._UPDATE_DELIVERY, v).rowcount == 1 for v in values])

        written = await self._run(write, inline=True, write=True)
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

        def claim(c: sqlite3.Connection) -> list[Delivery]:
            def take() -> list[Delivery]:
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
                rows = c.execute(
                    f"{self._CLAIM_DELIVERIES} WHERE id IN ({','.join('?' * len(ids))}) RETURNING id, etag, body",
                    (lease_until, owner, jsoncodec.dumps(lease_until), jsoncodec.dumps(at), *ids),
                ).fetchall()
                claimed = {row[0]: self._delivery(row[1:]) for row in rows}
                return [claimed[i] for i in ids if i in claimed]

            return self._tx(c, take)

        return await self._run(claim, inline=True, write=True)

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

        return await self._run(earliest, inline=True)

    async def count_deliveries(self, broadcast_id: str) -> dict[str, int]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT status, COUNT(*) FROM deliveries WHERE broadcast_id=?"
                " AND (expires_at IS NULL OR expires_at > ?) GROUP BY status",
                (broadcast_id, now()),
            ).fetchall()
        )
        return {status: count for status, count in rows}

    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        rows = await self._run(
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

        return await self._run(tally)

    async def list_deliveries(
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
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        return Page([self._delivery(r) for r in rows[:limit]], rows[limit - 1][2] if len(rows) > limit else None)

    # ---- broadcasts -------------------------------------------------------------------------
    async def create_broadcast(self, broadcast: Broadcast) -> Broadcast:
        return await self._create_doc("broadcasts", broadcast, broadcast.id, {"status": broadcast.status})

    async def get_broadcast(self, broadcast_id: str) -> Broadcast | None:
        return await self._get_doc("broadcasts", Broadcast, broadcast_id)

    async def write_broadcast(self, broadcast: Broadcast, etag: str) -> Broadcast:
        return await self._replace_doc("broadcasts", broadcast, broadcast.id, etag, {"status": broadcast.status})

    async def write_recipient_chunk(
        self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None
    ) -> None:
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

            self._tx(c, upsert)

        await self._run(write, write=True)

    async def read_recipient_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT body FROM broadcast_recipients WHERE broadcast_id=? AND idx=?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (broadcast_id, index, now()),
            ).fetchall()
        )
        return list(jsoncodec.loads(rows[0][0])) if rows else None

    async def unfinished_broadcasts(self) -> list[Broadcast]:
        rows = await self._run(
            lambda c: c.execute("SELECT etag, body FROM broadcasts WHERE status != 'completed'").fetchall()
        )
        return visible(Broadcast.from_doc(jsoncodec.loads(body), etag=etag) for etag, body in rows)

    async def broadcast_ids(self) -> list[str]:
        rows = await self._run(
            lambda c: c.execute(
                # The retention time lives in the record (the expires_at column is not kept up).
                "SELECT id FROM broadcasts WHERE coalesce(json_extract(body, '$.expires_at') > ?, 1)",
                (now(),),
            ).fetchall()
        )
        return [broadcast_id for (broadcast_id,) in rows]

    # ---- API keys, subscriptions ------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> ApiKey:
        return await self._create_doc("api_keys", key, key.id, {"name": key.name})

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        return await self._get_doc("api_keys", ApiKey, key_id)

    async def list_api_keys(self) -> list[ApiKey]:
        rows = await self._run(lambda c: c.execute("SELECT etag, body FROM api_keys ORDER BY name").fetchall())
        return [ApiKey.from_doc(jsoncodec.loads(body), etag=etag) for etag, body in rows]

    async def write_api_key(self, key: ApiKey, etag: str) -> ApiKey:
        return await self._replace_doc("api_keys", key, key.id, etag, {"name": key.name})

    async def create_subscription(self, subscription: Subscription) -> Subscription:
        return await self._create_doc("subscriptions", subscription, subscription.id, {"event": subscription.event})

    async def get_subscription(self, subscription_id: str) -> Subscription | None:
        return await self._get_doc("subscriptions", Subscription, subscription_id)

    async def delete_subscription(self, subscription_id: str) -> bool:
        def delete(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM subscriptions WHERE id=?", (subscription_id,)).rowcount == 1

        return await self._run(delete)

    async def list_subscriptions(self, event: str | None = None) -> list[Subscription]:
        sql, params = "SELECT etag, body FROM subscriptions", ()
        if event:
            sql, params = sql + " WHERE event=?", (event,)
        rows = await self._run(lambda c: c.execute(sql, params).fetchall())
        return [Subscription.from_doc(jsoncodec.loads(body), etag=etag) for etag, body in rows]

    # ---- leases -----------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        def acquire(c: sqlite3.Connection) -> bool:
            at = now()
            cur = c.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET"
                " owner=excluded.owner, until=excluded.until WHERE leases.owner=excluded.owner OR leases.until<=?",
                (name, owner, at + seconds, at),
            )
            return cur.rowcount == 1

        return await self._run(acquire, inline=True, write=True)

    async def release_lease(self, name: str, owner: str) -> None:
        await self._run(
            lambda c: c.execute("DELETE FROM leases WHERE name=? AND owner=?", (name, owner)), inline=True, write=True
        )

    # ---- retention and erasure -------------------------------------------------------------
    _PURGES = (
        ("references", "refs", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        ("deliveries", "deliveries", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        # The broadcasts table's expires_at column is not kept up: the record's own value counts.
        ("broadcasts", "broadcasts", "id", "coalesce(expires_at, json_extract(body, '$.expires_at')) <= ?"),
        ("notifications", "notifications", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        ("broadcastIndex", "broadcast_index", "rowid", "expires_at IS NOT NULL AND expires_at <= ?"),
    )

    async def purge_expired(self, at: float) -> dict[str, int]:
        def purge(c: sqlite3.Connection) -> dict[str, int]:
            counts: dict[str, int] = {}
            for kind, table, key, expired in self._PURGES:
                if table == "broadcast_index":
                    # A WITHOUT ROWID table: delete by its primary key in batches.
                    batch = (
                        "DELETE FROM broadcast_index WHERE (key, broadcast_id) IN (SELECT key, broadcast_id"
                        f" FROM broadcast_index WHERE {expired} LIMIT {PURGE_BATCH})"
                    )
                else:
                    batch = f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {expired} LIMIT {PURGE_BATCH})"
                total = 0
                while True:
                    removed = self._tx(c, lambda batch=batch: c.execute(batch, (at,)).rowcount)
                    total += removed
                    if removed < PURGE_BATCH:
                        break
                counts[kind] = total
            counts["leases"] = self._tx(
                c, lambda: c.execute("DELETE FROM leases WHERE until <= ?", (at - LEASE_GRACE_SECONDS,)).rowcount
            )
            return counts

        return await self._run(purge)

    async def compact(self) -> None:
        def checkpoint(c: sqlite3.Connection) -> None:
            # Copy the WAL into the file (where secure_delete zeroed what was deleted) and cut the
            # WAL to zero bytes: the old page images holding the erased content go with it. A
            # reader that holds an old snapshot makes it return busy; the next compaction catches up.
            busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.info("WAL checkpoint after an erase was blocked by a reader; it runs again later")

        if self.path != ":memory:":
            await self._run(checkpoint)

    async def index_broadcast(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        rows = [(key, broadcast_id, expires_at) for key in dict.fromkeys(keys)]

        def insert(c: sqlite3.Connection) -> None:
            self._tx(
                c,
                lambda: c.executemany(
                    "INSERT INTO broadcast_index (key, broadcast_id, expires_at) VALUES (?,?,?)"
                    " ON CONFLICT(key, broadcast_id) DO UPDATE SET expires_at=excluded.expires_at",
                    rows,
                ),
            )

        if rows:
            await self._run(insert)

    async def indexed_broadcasts(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT DISTINCT broadcast_id FROM broadcast_index WHERE key IN ({marks}) ORDER BY broadcast_id", keys
            ).fetchall()
        )
        return [broadcast_id for (broadcast_id,) in rows]

    async def forget_index(self, keys: list[str]) -> None:
        if keys:
            marks = ",".join("?" * len(keys))
            await self._run(lambda c: c.execute(f"DELETE FROM broadcast_index WHERE key IN ({marks})", keys))

    async def queue_erasure(self, person: PersonKey) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO erasures (tenant_id, user_key, requested_at) VALUES (?,?,?)",
                (person.tenant_id, person.user_key, now()),
            ),
            write=True,
        )

    async def pending_erasures(self, limit: int) -> list[PersonKey]:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT tenant_id, user_key FROM erasures ORDER BY requested_at LIMIT ?", (limit,)
            ).fetchall()
        )
        return [PersonKey(t, u) for t, u in rows]

    async def erasure_done(self, person: PersonKey) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM erasures WHERE tenant_id=? AND user_key=?", (person.tenant_id, person.user_key)
            ),
            write=True,
        )

    async def read_state(self, name: str) -> dict[str, Any] | None:
        row = await self._run(lambda c: c.execute("SELECT body FROM state WHERE name=?", (name,)).fetchone())
        return dict(jsoncodec.loads(row[0])) if row else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        body = jsoncodec.dumps(state)
        await self._run(
            lambda c: c.execute(
                "INSERT INTO state (name, body) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET body=excluded.body",
                (name, body),
            ),
            inline=True,
            write=True,
        )

    # ---- notifications ----------------------------------------------------------------------
    @staticmethod
    def _notification_values(n: Notification, etag: str) -> tuple[Any, ...]:
        # ``due``: when it may be claimed, whether it waits for its next attempt or for a lease to lapse.
        due = max(n.not_before, n.lease_until or 0.0)
        return (due, n.tenant_id, n.user_key, n.expires_at, etag, jsoncodec.dumps(n.to_doc()), n.id)

    _UPDATE_NOTIFICATION = (
        "UPDATE notifications SET due=?, tenant_id=?, user_key=?, expires_at=?, etag=?, body=? WHERE id=?"
    )

    @staticmethod
    def _notification(row: Any) -> Notification:
        return Notification.from_doc(jsoncodec.loads(row[1]), etag=row[0])

    async def create_notifications(self, notifications: list[Notification]) -> None:
        values = [self._notification_values(n, _etag()) for n in notifications]

        def insert(c: sqlite3.Connection) -> None:
            self._tx(
                c,
                lambda: c.executemany(
                    "INSERT INTO notifications (due, tenant_id, user_key, expires_at, etag, body, id)"
                    " VALUES (?,?,?,?,?,?,?)",
                    values,
                ),
            )

        await self._run(insert, inline=True, write=True)

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        def claim(c: sqlite3.Connection) -> list[Notification]:
            def take() -> list[Notification]:
                # Events past their last chance are dropped here: nothing else sweeps this table.
                c.execute("DELETE FROM notifications WHERE expires_at <= ?", (at,))
                rows = c.execute(
                    "SELECT etag, body FROM notifications WHERE due <= ? ORDER BY due LIMIT ?", (at, limit)
                ).fetchall()
                claimed = []
                for row in rows:
                    n = self._notification(row)
                    n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
                    n.etag = _etag()
                    c.execute(self._UPDATE_NOTIFICATION, self._notification_values(n, n.etag))
                    claimed.append(n)
                return claimed

            return self._tx(c, take)

        return await self._run(claim, inline=True, write=True)

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        stored = notification.copy()
        stored.etag = _etag()

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(
                self._UPDATE_NOTIFICATION + " AND etag=?", (*self._notification_values(stored, stored.etag), etag)
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(notification.id)

        await self._run(write, inline=True, write=True)
        return stored

    async def delete_notification(self, notification_id: str) -> None:
        await self._run(
            lambda c: c.execute("DELETE FROM notifications WHERE id=?", (notification_id,)), inline=True, write=True
        )

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        def delete(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM notifications WHERE tenant_id=? AND user_key=?", (tenant_id, user_key)
            ).rowcount

        return await self._run(delete)

    # ---- generic documents ------------------------------------------------------------------
    async def _create_doc(self, table: str, record: Any, doc_id: str, columns: dict[str, Any]) -> Any:
        etag = _etag()
        names = ", ".join(["id", "etag", "body", *columns])
        marks = ", ".join("?" * (3 + len(columns)))

        def insert(c: sqlite3.Connection) -> None:
            try:
                c.execute(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})",
                    (doc_id, etag, jsoncodec.dumps(record.to_doc()), *columns.values()),
                )
            except sqlite3.IntegrityError as exc:
                # An expired record may still sit there: it counts as absent.
                row = c.execute(f"SELECT etag, body FROM {table} WHERE id=?", (doc_id,)).fetchone()
                expires_at = jsoncodec.loads(row[1]).get("expires_at") if row else None
                if expires_at is None or expires_at > now():
                    raise ConcurrencyConflict(doc_id) from exc
                sets = ", ".join(f"{name}=?" for name in ["etag", "body", *columns])
                cur = c.execute(
                    f"UPDATE {table} SET {sets} WHERE id=? AND etag=?",
                    (etag, jsoncodec.dumps(record.to_doc()), *columns.values(), doc_id, row[0]),
                )
                if cur.rowcount != 1:
                    raise ConcurrencyConflict(doc_id) from exc

        await self._run(insert)
        stored = record.copy()
        stored.etag = etag
        return stored

    async def _get_doc(self, table: str, cls: Any, doc_id: str) -> Any:
        rows = await self._run(lambda c: c.execute(f"SELECT etag, body FROM {table} WHERE id=?", (doc_id,)).fetchall())
        if not rows:
            return None
        record = cls.from_doc(jsoncodec.loads(rows[0][1]), etag=rows[0][0])
        expires_at = getattr(record, "expires_at", None)
        return None if expires_at is not None and expires_at <= now() else record

    async def _replace_doc(self, table: str, record: Any, doc_id: str, etag: str, columns: dict[str, Any]) -> Any:
        new_etag = _etag()
        sets = ", ".join(f"{name}=?" for name in ["etag", "body", *columns])

        def replace(c: sqlite3.Connection) -> None:
            cur = c.execute(
                f"UPDATE {table} SET {sets} WHERE id=? AND etag=?",
                (new_etag, jsoncodec.dumps(record.to_doc()), *columns.values(), doc_id, etag),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(doc_id)

        await self._run(replace)
        stored = record.copy()
        stored.etag = new_etag
        return stored
