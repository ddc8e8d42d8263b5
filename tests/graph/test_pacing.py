"""Graph pacing: each kind of call stays under its published per-app-per-tenant rate; a 429 pauses it."""

from __future__ import annotations

import asyncio

from teams_proactive.bot.graph.client import IDENTITY, TEAMS_APPS_WRITE, _Bucket


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _take_all(bucket: _Bucket, count: int, cost: float, clock: FakeClock) -> list[float]:
    async def run() -> list[float]:
        times = []
        for _ in range(count):
            await bucket.take(cost)
            times.append(clock.now)
        return times

    return asyncio.run(run())


def test_installs_stay_under_30_per_second_per_tenant() -> None:
    clock = FakeClock()
    bucket = _Bucket(TEAMS_APPS_WRITE.rate, clock=clock, sleep=clock.sleep)
    times = _take_all(bucket, 300, 1.0, clock)
    # In any one-second window, the first one too, at most 30 calls leave.
    for i, at in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < at + 1.0 - 1e-9)
        assert in_window <= 30, (i, in_window)
    assert times[-1] - times[0] <= 300 / 27 + 1e-6  # and the lane is not left idle either


def test_identity_calls_spend_resource_units() -> None:
    clock = FakeClock()
    bucket = _Bucket(IDENTITY.rate, clock=clock, sleep=clock.sleep)
    # transitiveMembers with $select costs 4 units: 350 units/s allow 87 pages a second, not 350.
    times = _take_all(bucket, 875, 4.0, clock)
    for i, at in enumerate(times):
        assert sum(4 for t in times[i:] if t < at + 1.0 - 1e-9) <= 350
    assert times[-1] - times[0] >= 875 * 4 / 350 - 1.5


def test_a_429_pauses_the_lane_for_its_retry_after() -> None:
    clock = FakeClock()
    bucket = _Bucket(30.0, clock=clock, sleep=clock.sleep)
    _take_all(bucket, 1, 1.0, clock)
    paused_at = clock.now
    bucket.pause(7.0)
    (next_call,) = _take_all(bucket, 1, 1.0, clock)
    assert next_call >= paused_at + 7.0
