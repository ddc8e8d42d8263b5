"""The housekeeping (bot/delivery/housekeeping.py): an erasure that fails stays pending without holding
up the others, and the retention purge runs all the same (issue 24: nothing stops the rest)."""

from __future__ import annotations

import asyncio

from teams_proactive.bot.delivery.housekeeping import Housekeeper
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.memory import MemoryStore

STUCK = PersonKey("t1", "u-stuck")


def test_a_failing_erasure_stays_pending_and_the_rest_go_on() -> None:
    async def run() -> None:
        store = MemoryStore()
        original = store.subscriptions.forget_notifications

        async def failing_for_one(tenant_id: str, user_key: str) -> int:
            if PersonKey(tenant_id, user_key) == STUCK:
                raise RuntimeError("the store refused this one")
            return await original(tenant_id, user_key)

        store.subscriptions.forget_notifications = failing_for_one  # type: ignore[method-assign]
        await store.erasures.queue(STUCK)  # the oldest: first in every batch
        others = [PersonKey("t1", f"u{i}") for i in range(5)]
        for person in others:
            await store.erasures.queue(person)
        keeper = Housekeeper(store, erase_batch=2)
        await keeper.run()
        assert await store.erasures.pending(10) == [STUCK]
        assert keeper.stats["erased"] == 5 and keeper.stats["erase_failures"] == 1
        assert keeper.stats["purges"] == 1

    asyncio.run(run())
