"""The dispatcher's outcome writer: a broadcast's outcomes go to the store in groups, each against its etag."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from teams_proactive.bot.delivery.outcomes import OutcomeWriter
from teams_proactive.bot.model import Delivery, DeliveryStatus
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.memory import MemoryStore
from teams_proactive.bot.store.memory.database import MemoryDatabase
from teams_proactive.bot.store.memory.outbox import MemoryOutbox

HOUR = 3600.0  # a window no test waits for: groups leave when full or drained


def on_a_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


class CountingOutbox(MemoryOutbox):
    def __init__(self, db: MemoryDatabase) -> None:
        super().__init__(db)
        self.groups: list[list[str]] = []

    async def write_many(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
        self.groups.append([d.id for d, _ in writes])
        return await super().write_many(writes)


class CountingStore(MemoryStore):
    outbox: CountingOutbox

    def __init__(self) -> None:
        super().__init__()
        self.outbox = self.make_outbox()

    def make_outbox(self) -> CountingOutbox:
        return CountingOutbox(self.db)

    @property
    def groups(self) -> list[list[str]]:
        return self.outbox.groups


async def created(store: CountingStore, count: int) -> list[Delivery]:
    deliveries = []
    for i in range(count):
        stored, _ = await store.outbox.create(
            Delivery(
                id=f"d{i}",
                owner="k",
                tenant_id="t",
                user_key=f"u{i}",
                recipient=f"p{i}@contoso.example",
                content={"text": "hello"},
                broadcast_id="b",
            )
        )
        stored.status = DeliveryStatus.DELIVERED
        deliveries.append(stored)
    return deliveries


@on_a_loop
async def test_a_full_group_is_one_store_call_and_each_writer_gets_its_record() -> None:
    store = CountingStore()
    writer = OutcomeWriter(store, window=HOUR, max_group=3)
    deliveries = await created(store, 3)
    written = await asyncio.gather(*(writer.write(d, d.etag or "") for d in deliveries))
    assert store.groups == [["d0", "d1", "d2"]]
    assert [w.id for w in written] == ["d0", "d1", "d2"]
    for w in written:
        stored = await store.outbox.get(w.id)
        assert stored is not None and stored.status == DeliveryStatus.DELIVERED and stored.etag == w.etag


@on_a_loop
async def test_a_stale_write_fails_alone() -> None:
    store = CountingStore()
    writer = OutcomeWriter(store, window=HOUR, max_group=2)
    fresh, stale = await created(store, 2)
    await store.outbox.write(stale, stale.etag or "")  # another writer got there first
    results = await asyncio.gather(
        writer.write(fresh, fresh.etag or ""), writer.write(stale, stale.etag or ""), return_exceptions=True
    )
    assert results[0].id == "d0"  # type: ignore[union-attr]
    assert isinstance(results[1], ConcurrencyConflict)


@on_a_loop
async def test_drain_writes_what_waits() -> None:
    store = CountingStore()
    writer = OutcomeWriter(store, window=HOUR)
    (delivery,) = await created(store, 1)
    waiting = asyncio.ensure_future(writer.write(delivery, delivery.etag or ""))
    await asyncio.sleep(0)  # the write is queued, its window far away
    assert store.groups == []
    await writer.drain()
    assert (await waiting).id == "d0" and store.groups == [["d0"]]


@on_a_loop
async def test_a_store_failure_reaches_every_writer_of_the_group() -> None:
    class FailingOutbox(CountingOutbox):
        async def write_many(self, writes: list[tuple[Delivery, str]]) -> list[Delivery | None]:
            raise OSError("disk full")

    class Failing(CountingStore):
        def make_outbox(self) -> CountingOutbox:
            return FailingOutbox(self.db)

    store = Failing()
    writer = OutcomeWriter(store, window=HOUR, max_group=2)
    deliveries = await created(store, 2)
    results = await asyncio.gather(*(writer.write(d, d.etag or "") for d in deliveries), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    with pytest.raises(OSError):
        await Failing().outbox.write_many([])
