"""The SQLite schema, its version (``PRAGMA user_version``) and the ordered steps that bring an older file up to it.

A file made before versions existed reads version 0. Opening a store runs, in one ``BEGIN IMMEDIATE``
transaction: a check of the version (a newer one is refused: this release does not write to it), the
baseline below (every table and index, ``IF NOT EXISTS``, so it also heals a file missing one), then
each step numbered above the file's version, once, each noted in ``schema_history``, and the new
version. The version is read again inside the transaction, so when several processes open the same
file together, the first migrates and the others find the work done.

To change the schema: add a step at the end of ``MIGRATIONS`` (the next number) that alters what
exists (``ALTER TABLE``, a new table or index, a backfill), and change the baseline to match, so a
new file and an upgraded one end up alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import StoreTooNew

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
CREATE TABLE IF NOT EXISTS quarantine (
    kind TEXT NOT NULL, id TEXT NOT NULL, reason TEXT NOT NULL, quarantined_at REAL NOT NULL,
    expires_at REAL, tenant_id TEXT, user_key TEXT, body NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS quarantine_person ON quarantine (tenant_id, user_key) WHERE user_key IS NOT NULL;
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _schema_history(c: sqlite3.Connection) -> None:
    c.execute(
        "CREATE TABLE IF NOT EXISTS schema_history ("
        " version INTEGER PRIMARY KEY, applied_at REAL NOT NULL, description TEXT NOT NULL)"
    )


def _quarantine(c: sqlite3.Connection) -> None:
    # The baseline (run first, IF NOT EXISTS) made the table; the step records when it arrived.
    for statement in SCHEMA_STATEMENTS:
        if " quarantine " in statement or " quarantine (" in statement:
            c.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "versioned schema: PRAGMA user_version and the schema_history table", _schema_history),
    Migration(2, "quarantine: records a loop could not read or process, moved aside (issue 24)", _quarantine),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def statements(script: str) -> list[str]:
    """The statements of a script, one by one (``executescript`` would commit the open transaction)."""
    found: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        found.append(current.strip())
    return found


SCHEMA_STATEMENTS = tuple(statements(SCHEMA))


def too_new(path: str, version: int) -> StoreTooNew:
    return StoreTooNew(
        f"The SQLite store {path} has schema version {version}, written by a newer release of"
        f" teams-proactive; this release knows versions up to {SCHEMA_VERSION} and does not write to it."
        " Run the newer release, or restore a copy of the file made before the upgrade."
    )


def user_version(c: sqlite3.Connection) -> int:
    return int(c.execute("PRAGMA user_version").fetchone()[0])


def migrate(c: sqlite3.Connection, path: str) -> list[int]:
    """Bring the file to ``SCHEMA_VERSION`` (see the module's docstring); returns the steps applied.

    ``c`` is in autocommit mode (``isolation_level=None``) and waits for the write lock (busy timeout)."""
    if user_version(c) > SCHEMA_VERSION:  # refused before taking the write lock
        raise too_new(path, user_version(c))
    c.execute("BEGIN IMMEDIATE")
    try:
        # Again under the lock: another process may have migrated (or a newer release written) since.
        version = user_version(c)
        if version > SCHEMA_VERSION:
            raise too_new(path, version)
        for statement in SCHEMA_STATEMENTS:
            c.execute(statement)
        applied = []
        for step in MIGRATIONS:
            if step.version > version:
                step.apply(c)
                c.execute(
                    "INSERT INTO schema_history (version, applied_at, description) VALUES (?, ?, ?)",
                    (step.version, now(), step.description),
                )
                applied.append(step.version)
        if version != SCHEMA_VERSION:
            # A pragma cannot take a bound parameter; the value is our own integer.
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return applied
