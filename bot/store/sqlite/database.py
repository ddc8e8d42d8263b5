"""The SQLite backend's shared part: the file, its connections (inline and pooled), the schema and retention.

Each record is kept whole as JSON beside the few columns that queries filter on. Short point reads
and writes run inline on the event loop with a connection that never waits for a lock (busy timeout
0): they take a fraction of a millisecond, and handing each to a thread cost the outbox more CPU than
the statement itself. When the file is locked by another writer, and for anything bulky (lists,
counts, batches), the call goes to a small thread pool (one connection per thread) that may wait, so
the event loop never does.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import DeliveryStatus, now
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.quarantine import DEFAULT_KEEP_SECONDS
from teams_proactive.bot.store.sqlite.schema import SCHEMA_VERSION, migrate
from teams_proactive.bot.unreadable import Unreadable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Rows removed per statement while purging: each batch is one short write transaction, so sends
# and captures are never held up for long behind a large purge.
PURGE_BATCH = 500
# A lapsed lease is kept this long before it is removed (it is harmless; this only keeps it from
# being removed while its holder is about to renew it late).
LEASE_GRACE_SECONDS = 300.0

PENDING = (DeliveryStatus.QUEUED.value, DeliveryStatus.SCHEDULED.value)

# The table each kind of record that can be quarantined lives in.
QUARANTINE_TABLES = {
    "delivery": "deliveries", "broadcast": "broadcasts", "notification": "notifications", "reference": "refs",
}  # fmt: skip
# Whom a record of each table is about, from its columns (a broadcast names many people: none).
PERSON_COLUMNS = {
    "deliveries": "tenant_id, user_key",
    "broadcasts": "NULL, NULL",
    "notifications": "tenant_id, user_key",
    "refs": "tenant_id, user_key",
}


def logged_id(kind: str, record_id: str) -> str:
    """What a log line may say of a quarantined record's id: a reference's id names the person."""
    return "(id not logged)" if kind == "reference" else record_id


def make_etag() -> str:
    return uuid.uuid4().hex


def lowered(value: str | None) -> str | None:
    return value.lower() if value else None


class SqliteDatabase:
    """One WAL-mode file, safe for several threads and several processes; the repositories run their statements through it."""

    def __init__(self, path: str, *, reference_ttl_seconds: float | None = None, threads: int = 4) -> None:
        self.path = path
        self.reference_ttl_seconds = reference_ttl_seconds
        self.local = threading.local()
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-store")
        self.connections: list[sqlite3.Connection] = []
        self.connections_lock = threading.Lock()
        # Inline writes do not checkpoint the WAL themselves (that can take milliseconds): every so
        # many, a passive checkpoint runs on the pool.
        self.inline_writes = 0
        self.quarantine_seconds = DEFAULT_KEEP_SECONDS

    # ---- plumbing ---------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            # isolation_level=None: we issue BEGIN ourselves so a claim is one atomic transaction.
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only an OS crash may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # Deleted and overwritten content is zeroed in the file, not left in free pages.
            conn.execute("PRAGMA secure_delete=ON")
            self.local.conn = conn
            with self.connections_lock:
                self.connections.append(conn)
        return conn

    def inline_connection(self) -> sqlite3.Connection:
        conn = getattr(self.local, "inline", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute("PRAGMA secure_delete=ON")
            self.local.inline = conn
            with self.connections_lock:
                self.connections.append(conn)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = False, write: bool = False) -> T:
        """Run ``fn`` with a connection: inline when asked and the lock is free, else on the pool.

        ``fn`` must be safe to run again after SQLITE_BUSY: its first write statement (or its
        BEGIN IMMEDIATE) is what meets the lock, so nothing was written when it is refused.
        """
        if inline and self.path != ":memory:":
            conn = self.inline_connection()
            try:
                result = fn(conn)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                if write:
                    self.inline_writes += 1
                    if self.inline_writes >= 500:
                        self.inline_writes = 0
                        self.executor.submit(self.checkpoint)
                return result
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(self.connection()))

    def checkpoint(self) -> None:
        try:
            self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # a checkpoint is housekeeping; the next one catches up
            pass

    @staticmethod
    def tx(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
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
            applied = migrate(c, self.path)
            if applied:
                log.info("SQLite store %s: schema brought to version %d (steps %s)", self.path, SCHEMA_VERSION, applied)

        def make_folder() -> None:
            if self.path != ":memory:":
                Path(self.path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)

        await asyncio.to_thread(make_folder)
        await self.run(create)

    async def close(self) -> None:
        def close_all() -> None:
            # Queries still running on the pool finish first (cancelling their caller does not stop
            # the thread): closing a connection under a running statement crashes the process.
            self.executor.shutdown(wait=True)
            with self.connections_lock:
                for conn in self.connections:
                    conn.close()
                self.connections.clear()

        # Run inline, not on the default executor: at interpreter exit that executor is already shut
        # down, and closing is the last thing the store does anyway.
        close_all()

    async def ping(self) -> None:
        await self.run(lambda c: c.execute("SELECT 1").fetchone())

    # ---- retention and erasure -------------------------------------------------------------
    PURGES = (
        ("references", "refs", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        ("deliveries", "deliveries", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        # The broadcasts table's expires_at column is not kept up: the record's own value counts.
        ("broadcasts", "broadcasts", "id", "coalesce(expires_at, json_extract(body, '$.expires_at')) <= ?"),
        ("notifications", "notifications", "id", "expires_at IS NOT NULL AND expires_at <= ?"),
        ("broadcastIndex", "broadcast_index", "rowid", "expires_at IS NOT NULL AND expires_at <= ?"),
        ("quarantine", "quarantine", "rowid", "expires_at IS NOT NULL AND expires_at <= ?"),
    )

    async def purge_expired(self, at: float) -> dict[str, int]:
        def purge(c: sqlite3.Connection) -> dict[str, int]:
            counts: dict[str, int] = {}
            for kind, table, key, expired in self.PURGES:
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
                    removed = self.tx(c, lambda batch=batch: c.execute(batch, (at,)).rowcount)
                    total += removed
                    if removed < PURGE_BATCH:
                        break
                counts[kind] = total
            counts["leases"] = self.tx(
                c, lambda: c.execute("DELETE FROM leases WHERE until <= ?", (at - LEASE_GRACE_SECONDS,)).rowcount
            )
            return counts

        return await self.run(purge)

    async def compact(self) -> None:
        def checkpoint(c: sqlite3.Connection) -> None:
            # Copy the WAL into the file (where secure_delete zeroed what was deleted) and cut the
            # WAL to zero bytes: the old page images holding the erased content go with it. A
            # reader that holds an old snapshot makes it return busy; the next compaction catches up.
            busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.info("WAL checkpoint after an erase was blocked by a reader; it runs again later")

        if self.path != ":memory:":
            await self.run(checkpoint)

    # ---- quarantine -------------------------------------------------------------------------
    def move_aside(self, c: sqlite3.Connection, kind: str, record_id: str, reason: str) -> bool:
        """Move one row into the quarantine table, its body copied as stored (inside the caller's
        transaction, or on its own in autocommit mode)."""
        table = QUARANTINE_TABLES[kind]
        at = now()
        cur = c.execute(
            "INSERT OR REPLACE INTO quarantine (kind, id, reason, quarantined_at, expires_at, tenant_id, user_key, body)"
            f" SELECT ?, id, ?, ?, ?, {PERSON_COLUMNS[table]}, body FROM {table} WHERE id=?",
            (kind, reason, at, at + self.quarantine_seconds, record_id),
        )
        if cur.rowcount != 1:
            return False
        c.execute(f"DELETE FROM {table} WHERE id=?", (record_id,))
        log.warning("%s %s moved to quarantine: %s", kind, logged_id(kind, record_id), reason)
        return True

    async def set_aside(self, unreadable: list[Unreadable]) -> None:
        """Move records a read could not decode into quarantine, so no loop meets them again."""
        if unreadable:
            await self.run(
                lambda c: self.tx(c, lambda: [self.move_aside(c, u.kind, u.record_id, u.reason) for u in unreadable]),
                write=True,
            )

    # ---- generic documents ------------------------------------------------------------------
    async def create_doc(self, table: str, record: Any, doc_id: str, columns: dict[str, Any]) -> Any:
        etag = make_etag()
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

        await self.run(insert)
        stored = record.copy()
        stored.etag = etag
        return stored

    async def get_doc(self, table: str, cls: Any, doc_id: str) -> Any:
        rows = await self.run(lambda c: c.execute(f"SELECT etag, body FROM {table} WHERE id=?", (doc_id,)).fetchall())
        if not rows:
            return None
        record = cls.from_doc(jsoncodec.loads(rows[0][1]), etag=rows[0][0])
        expires_at = getattr(record, "expires_at", None)
        return None if expires_at is not None and expires_at <= now() else record

    async def replace_doc(self, table: str, record: Any, doc_id: str, etag: str, columns: dict[str, Any]) -> Any:
        new_etag = make_etag()
        sets = ", ".join(f"{name}=?" for name in ["etag", "body", *columns])

        def replace(c: sqlite3.Connection) -> None:
            cur = c.execute(
                f"UPDATE {table} SET {sets} WHERE id=? AND etag=?",
                (new_etag, jsoncodec.dumps(record.to_doc()), *columns.values(), doc_id, etag),
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(doc_id)

        await self.run(replace)
        stored = record.copy()
        stored.etag = new_etag
        return stored
