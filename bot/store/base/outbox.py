"""The outbox repository: deliveries, their claims by the dispatcher, due times and per-broadcast counts."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable

from teams_proactive.bot.model import Delivery
from teams_proactive.bot.store.base.records import ConcurrencyConflict, Page, PersonKey, ReadTally, read_modify_write


class Outbox(abc.ABC):
    """Deliveries (one message to one person) from creation to their final status."""

    @abc.abstractmethod
    async def create(self, delivery: Delivery) -> tuple[Delivery, bool]:
        """Insert unless a delivery with that id exists; returns (stored delivery, created?)."""

    @abc.abstractmethod
    async def create_many(self, deliveries: list[Delivery]) -> int:
        """Insert many, skipping ids that exist (idempotent); returns how many were new."""

    @abc.abstractmethod
    async def get(self, delivery_id: str) -> Delivery | None: ...

    @abc.abstractmethod
    async def write(self, delivery: Delivery, etag: str) -> Delivery:
        """Conditionally replace a delivery."""

    async def write_many(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
        """Conditionally replace several deliveries (each against its own etag), in order; None where
        the etag no longer matched. Stores that can (SQLite) write them in one transaction."""

        async def write(delivery: Delivery, etag: str) -> Delivery | None:
            try:
                return await self.write(delivery, etag)
            except ConcurrencyConflict:
                return None

        return list(await asyncio.gather(*(write(d, etag) for d, etag in writes)))

    @abc.abstractmethod
    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        """Take up to ``limit`` deliveries that are due (or whose lease ran out): mark them
        ``sending`` under ``owner``'s lease. Two claimers never get the same delivery."""

    @abc.abstractmethod
    async def next_due_at(self) -> float | None:
        """When the earliest pending delivery becomes due (None when the outbox is empty)."""

    @abc.abstractmethod
    async def count(self, broadcast_id: str) -> dict[str, int]:
        """Deliveries of a broadcast by status."""

    @abc.abstractmethod
    async def page(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]: ...

    async def update(self, delivery_id: str, change: Callable[[Delivery], Delivery | None]) -> Delivery | None:
        """Apply ``change`` to the delivery and write it conditionally, retrying on conflict."""

        async def read() -> Delivery | None:
            return await self.get(delivery_id)

        def guarded(current: Delivery | None) -> Delivery | None:
            return change(current) if current is not None else None

        async def write(d: Delivery, etag: str | None) -> Delivery:
            assert etag is not None
            return await self.write(d, etag)

        return await read_modify_write(read, guarded, write)

    # ---- proactive installation (docs/graph.md) and engagement --------------------------------
    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        """Deliveries of a broadcast by ``install_outcome`` (installed, alreadyInstalled, failure codes).

        The portable way reads the broadcast's deliveries page by page; a backend that can count in
        the database overrides it."""
        counts: dict[str, int] = {}
        token: str | None = None
        while True:
            page = await self.page(broadcast_id=broadcast_id, limit=500, token=token)
            for delivery in page.items:
                if delivery.install_outcome:
                    counts[delivery.install_outcome] = counts.get(delivery.install_outcome, 0) + 1
            token = page.next_token
            if not token:
                return counts

    async def tally_reads(self, broadcast_id: str) -> ReadTally:
        """Delivered, answered and first-seen moments of a broadcast's live deliveries.

        The portable way reads the deliveries page by page; a backend that can count in the database
        overrides it (GetBroadcast asks on every call, and a report is polled)."""
        tally = ReadTally(0, 0, [])
        token: str | None = None
        while True:
            page = await self.page(broadcast_id=broadcast_id, limit=500, token=token)
            for d in page.items:
                if d.delivered_at is None:
                    continue
                tally.delivered += 1
                tally.answered += d.responded_at is not None
                times = [t for t in (d.read_at, d.responded_at) if t is not None]
                if times:
                    tally.seen.append(min(times))
            token = page.next_token
            if not token:
                return tally
