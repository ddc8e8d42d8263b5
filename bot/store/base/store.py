"""The store: a backend's lifecycle and retention, and the repositories it hands out, one per kind of record."""

from __future__ import annotations

import abc
from typing import Protocol

from teams_proactive.bot.store.base.broadcasts import Broadcasts
from teams_proactive.bot.store.base.erasures import Erasures
from teams_proactive.bot.store.base.keys import Keys
from teams_proactive.bot.store.base.leases import Leases
from teams_proactive.bot.store.base.outbox import Outbox
from teams_proactive.bot.store.base.quarantine import Quarantine
from teams_proactive.bot.store.base.references import References
from teams_proactive.bot.store.base.subscriptions import Subscriptions


class Store(abc.ABC):
    """Async persistence, reached through one repository per kind of record:

    ``references`` (and the people they resolve to), ``outbox`` (deliveries and their claims),
    ``broadcasts`` (with recipient chunks and the person index), ``keys``, ``subscriptions`` (with
    webhook notifications), ``erasures``, ``leases`` (with saved state) and ``quarantine`` (records a loop could not read or
    process, moved aside).
    """

    reference_ttl_seconds: float | None = None
    references: References
    outbox: Outbox
    broadcasts: Broadcasts
    keys: Keys
    subscriptions: Subscriptions
    erasures: Erasures
    leases: Leases
    quarantine: Quarantine

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Create tables/containers if missing (and bring an older store's schema up to date)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    @abc.abstractmethod
    async def purge_expired(self, at: float) -> dict[str, int]:
        """Physically remove what expired by ``at``: references, deliveries (card waits too),
        broadcasts, webhook events, broadcast index entries, lapsed leases and quarantined records kept
        past their time. Returns how many of
        each kind went. A backend whose database expires items by itself (Cosmos DB's per-item
        ``ttl``) may leave the work to it and return nothing."""

    async def compact(self) -> None:  # noqa: B027 - optional hook
        """Make what was just deleted unrecoverable from the store's files (SQLite: checkpoint and
        truncate the WAL). Called after an erase and after a purge that removed something."""

    def repositories(self) -> dict[str, object]:
        """Each repository by its attribute name (for tests and tools that walk them all)."""
        return {name: getattr(self, name) for name in REPOSITORIES}


class Database(Protocol):
    """What a backend's shared part (connections, schema or containers, purge) does for its whole store."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def purge_expired(self, at: float) -> dict[str, int]: ...

    async def compact(self) -> None: ...


class DatabaseStore(Store):
    """A store whose lifecycle and retention are its backend's shared database's: every backend is one,
    its repositories built over the same ``db``."""

    db: Database

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()

    async def purge_expired(self, at: float) -> dict[str, int]:
        return await self.db.purge_expired(at)

    async def compact(self) -> None:
        await self.db.compact()


REPOSITORIES = ("references", "outbox", "broadcasts", "keys", "subscriptions", "erasures", "leases", "quarantine")
