"""Store backends (memory, SQLite, Cosmos DB), each handing out one repository per kind of record;
``create_store`` picks one from ``STORE_URL``."""

from __future__ import annotations

from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store.base import ConcurrencyConflict, Page, PersonKey, Store, StoreError, StoreTooNew

__all__ = ["ConcurrencyConflict", "Page", "PersonKey", "Store", "StoreError", "StoreTooNew", "create_store"]


def create_store(settings: BotSettings) -> Store:
    """Build (not yet open) the store named by ``settings.store_url``; quarantined records are kept
    for ``DELIVERY_RETENTION_DAYS``."""
    store = _backend(settings)
    store.quarantine.keep_seconds = settings.delivery_retention_days * 86400
    return store


def _backend(settings: BotSettings) -> Store:
    url = settings.store_url
    ttl = settings.reference_ttl_days * 86400 if settings.reference_ttl_days else None
    if url.startswith("sqlite:///"):
        from teams_proactive.bot.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), reference_ttl_seconds=ttl)
    if url == "memory":
        from teams_proactive.bot.store.memory import MemoryStore

        return MemoryStore(reference_ttl_seconds=ttl)
    if url == "cosmos":
        from teams_proactive.bot.store.cosmos import CosmosStore

        return CosmosStore.from_settings(settings, reference_ttl_seconds=ttl)
    raise ValueError(f"STORE_URL must be sqlite:///PATH, memory or cosmos, not {url!r}")
