"""Writes the outcomes of a broadcast's sends in groups: one store call for those that finish together."""

from __future__ import annotations

import asyncio
import logging

from teams_proactive.bot.model import Delivery
from teams_proactive.bot.store.base import ConcurrencyConflict, Store

log = logging.getLogger(__name__)


class OutcomeWriter:
    """``write`` behaves like ``Store.outbox.write`` (a stale etag raises ConcurrencyConflict),
    but the writes that arrive within ``window`` seconds of the first go to the store together.

    At Teams' pace a broadcast finishes a send every 20 ms; written one by one, each outcome is its
    own SQLite transaction, whose commit costs more than the UPDATE itself. A group (a claim
    batch's worth, or what finished within a tenth of a second) shares one. The wait adds at most
    ``window`` to when a broadcast's report shows the send; it adds nothing to what a crash can cost (the send keeps its place among those in
    flight until its outcome is written, and only those can be sent again after a crash).
    """

    def __init__(self, store: Store, *, window: float = 0.1, max_group: int = 100) -> None:
        self._store = store
        self._window = window
        self._max_group = max_group
        self._pending: list[tuple[Delivery, str, asyncio.Future[Delivery]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def write(self, delivery: Delivery, etag: str) -> Delivery:
        loop = asyncio.get_running_loop()
        written: asyncio.Future[Delivery] = loop.create_future()
        self._pending.append((delivery, etag, written))
        if len(self._pending) >= self._max_group:
            self._flush_now()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush_now)
        return await written

    async def drain(self) -> None:
        """Write what is waiting now (the dispatcher stops)."""
        self._flush_now()
        if self._flushes:
            await asyncio.wait(set(self._flushes))

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._pending = self._pending, []
        if group:
            task = asyncio.get_running_loop().create_task(self._flush(group), name="outcomes")
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, group: list[tuple[Delivery, str, asyncio.Future[Delivery]]]) -> None:
        try:
            results = await self._store.outbox.write_many([(delivery, etag) for delivery, etag, _ in group])
        except Exception as exc:  # the store failed: each writer handles it as its own failed write
            for _, _, written in group:
                if not written.done():
                    written.set_exception(exc)
            return
        for (delivery, _, written), stored in zip(group, results, strict=True):
            if written.done():
                continue  # its sender was cancelled (stop): the lease runs out and it is sent again
            if stored is None:
                written.set_exception(ConcurrencyConflict(delivery.id))
            else:
                written.set_result(stored)
