"""A new dispatcher leader starts from the pace recorded in the store, not from an empty limiter."""

from __future__ import annotations

import asyncio
import time

from teams_proactive.bot.delivery.dispatcher import Dispatcher, DispatcherSettings
from teams_proactive.bot.delivery.pacing import ConversationPacer, TenantRateLimiter
from teams_proactive.bot.store.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_restored_limiter_continues_the_schedule_instead_of_bursting() -> None:
    clock = Clock()
    old = TenantRateLimiter(50.0, smooth=True, clock=clock)
    for _ in range(old.per_second):  # a full second's worth of sends just left
        slot = old.reserve("t")
        clock.now = slot
        assert old.depart("t") == 0
    fresh = TenantRateLimiter(50.0, smooth=True, clock=clock)
    assert fresh.depart("t") == 0  # an empty limiter would send at once: the 51st call in that second

    new = TenantRateLimiter(50.0, smooth=True, clock=clock)
    new.restore(old.snapshot())
    assert new.depart("t") > 0  # the second is full: wait for room
    assert new.reserve("t") > clock.now  # and the next slot follows the old leader's last one


def test_a_restored_limiter_keeps_a_pause_and_a_restored_pacer_keeps_the_windows() -> None:
    clock = Clock()
    old = TenantRateLimiter(50.0, clock=clock)
    old.pause("t", 30.0)
    pacer = ConversationPacer(clock=clock)
    for _ in range(7):
        pacer.record("chat")
    new = TenantRateLimiter(50.0, clock=clock)
    new.restore(old.snapshot())
    assert new.reserve("t") >= clock.now + 30.0
    new_pacer = ConversationPacer(clock=clock)
    new_pacer.restore(pacer.snapshot())
    assert new_pacer.delay("chat") > 0 and new_pacer.delay("other") == 0


def test_the_next_leader_loads_the_pace_the_last_one_recorded() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        settings = DispatcherSettings(leader_lease_seconds=3.0, poll_seconds=0.05)
        first = Dispatcher(store, object(), settings)  # type: ignore[arg-type] - never sends here
        first.start()
        await _until(lambda: first.is_leader)
        # Teams said 429 with Retry-After 60, and one chat had its second's worth of sends.
        first.budget.throttled("tenant-a", 60.0)
        for _ in range(7):
            first.budget.pacer.record("a:chat")
        await first.stop()  # records the pace and hands the lease over

        second = Dispatcher(store, object(), settings)  # type: ignore[arg-type]
        assert second.budget.limiter.reserve("tenant-b") <= time.monotonic() + 0.01  # unrelated tenant: at once
        second.start()
        try:
            await _until(lambda: second.is_leader)
            assert second.budget.limiter.reserve("tenant-a") > time.monotonic() + 50  # the pause holds
            assert second.budget.pacer.delay("a:chat") > 0  # the chat's window holds
            assert (await store.leases.read_state("dispatcher-pacing") or {}).get("tenants", {}).get("tenant-a")
        finally:
            await second.stop()

    asyncio.run(scenario())


async def _until(check, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)
