"""The SQLite store (the default): one file, created on first use."""

from __future__ import annotations

from teams_proactive.bot.store.base import DatabaseStore
from teams_proactive.bot.store.sqlite.broadcasts import SqliteBroadcasts
from teams_proactive.bot.store.sqlite.database import SqliteDatabase
from teams_proactive.bot.store.sqlite.erasures import SqliteErasures
from teams_proactive.bot.store.sqlite.keys import SqliteKeys
from teams_proactive.bot.store.sqlite.leases import SqliteLeases
from teams_proactive.bot.store.sqlite.outbox import SqliteOutbox
from teams_proactive.bot.store.sqlite.quarantine import SqliteQuarantine
from teams_proactive.bot.store.sqlite.references import SqliteReferences
from teams_proactive.bot.store.sqlite.subscriptions import SqliteSubscriptions


class SqliteStore(DatabaseStore):
    """The sqlite backend: one shared SqliteDatabase, one repository per kind of record."""

    def __init__(self, path: str, *, reference_ttl_seconds: float | None = None, threads: int = 4) -> None:
        self.db = SqliteDatabase(path, reference_ttl_seconds=reference_ttl_seconds, threads=threads)
        self.reference_ttl_seconds = reference_ttl_seconds
        self.references = SqliteReferences(self.db)
        self.outbox = SqliteOutbox(self.db)
        self.broadcasts = SqliteBroadcasts(self.db)
        self.keys = SqliteKeys(self.db)
        self.subscriptions = SqliteSubscriptions(self.db)
        self.erasures = SqliteErasures(self.db)
        self.leases = SqliteLeases(self.db)
        self.quarantine = SqliteQuarantine(self.db)

    @property
    def path(self) -> str:
        """The database file (``:memory:`` for a private in-memory one)."""
        return self.db.path
