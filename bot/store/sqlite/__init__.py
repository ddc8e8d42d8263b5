"""SQLite backend: one WAL-mode file, safe for several threads and several processes."""

from teams_proactive.bot.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
