"""The broadcasts repository: broadcasts, their recipient lists in chunks, and the person index erasure uses."""

from __future__ import annotations

import abc
from collections.abc import Callable

from teams_proactive.bot.model import Broadcast
from teams_proactive.bot.store.base.records import read_modify_write


class Broadcasts(abc.ABC):
    """One message to many people; the deliveries it makes live in the outbox."""

    @abc.abstractmethod
    async def create(self, broadcast: Broadcast) -> Broadcast: ...

    @abc.abstractmethod
    async def get(self, broadcast_id: str) -> Broadcast | None: ...

    @abc.abstractmethod
    async def write(self, broadcast: Broadcast, etag: str) -> Broadcast: ...

    @abc.abstractmethod
    async def unfinished(self) -> list[Broadcast]: ...

    @abc.abstractmethod
    async def ids(self) -> list[str]:
        """The id of every broadcast still kept (finished or not); broadcasts are few."""

    async def update(self, broadcast_id: str, change: Callable[[Broadcast], Broadcast | None]) -> Broadcast | None:
        """Apply ``change`` to the broadcast and write it conditionally, retrying on conflict."""

        async def read() -> Broadcast | None:
            return await self.get(broadcast_id)

        def guarded(current: Broadcast | None) -> Broadcast | None:
            return change(current) if current is not None else None

        async def write(b: Broadcast, etag: str | None) -> Broadcast:
            assert etag is not None
            return await self.write(b, etag)

        return await read_modify_write(read, guarded, write)

    # A list of 100,000 addresses is several megabytes: one record would pass Cosmos DB's 2 MB item
    # limit and be rewritten whole on every change of the broadcast. Chunks are written once, before
    # the broadcast record that points at them, and read one at a time while it is expanded.
    @abc.abstractmethod
    async def write_chunk(self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None) -> None:
        """Create or replace chunk ``index`` of a broadcast's recipient list."""

    @abc.abstractmethod
    async def read_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        """Chunk ``index`` of a broadcast's recipient list (None: no such chunk, or expired)."""

    # ---- the person index -------------------------------------------------------------------
    @abc.abstractmethod
    async def index(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        """Note that the broadcast names each of ``keys`` (opaque per-tenant person/address keys, see
        ``teams_proactive.bot.recipients.index_keys``), so an erase finds it without reading every broadcast."""

    @abc.abstractmethod
    async def indexed(self, keys: list[str]) -> list[str]:
        """Ids of the broadcasts noted under any of ``keys``."""

    @abc.abstractmethod
    async def forget_index(self, keys: list[str]) -> None:
        """Drop every index entry under ``keys`` (the keys are derived from a person's addresses)."""
