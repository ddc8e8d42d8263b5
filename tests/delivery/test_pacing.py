"""Teams' limits kept ahead of time: per-conversation windows and the per-tenant schedule, on an injected clock."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import tracemalloc
from collections import deque

import pytest
from teams_proactive.bot.delivery.pacing import (
    CONVERSATION_WINDOWS,
    WINDOW_MARGIN_SECONDS,
    ConversationPacer,
    TenantRateLimiter,
    chat_key,
)


def most_in_any_second(times: list[float]) -> int:
    """The largest number of sends inside any half-open second (t - 1, t], as Teams counts them."""
    ordered = sorted(times)
    return max(bisect.bisect_right(ordered, t) - bisect.bisect_right(ordered, t - 1.0) for t in ordered)


def teams_refusals(times: list[float], cap: int) -> int:
    """How many sends a service allowing ``cap`` per sliding second (like the fake) would refuse."""
    recent: deque[float] = deque()
    refused = 0
    for at in sorted(times):
        while recent and recent[0] <= at - 1.0:
            recent.popleft()
        if len(recent) >= cap:
            refused += 1
        else:
            recent.append(at)
    return refused


# ---- ConversationPacer ---------------------------------------------------------------------
def test_windows_are_teams_published_limits() -> None:
    assert CONVERSATION_WINDOWS == ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))


def test_seven_per_second_then_wait_for_the_oldest_to_leave() -> None:
    pacer = ConversationPacer(margin=0)
    for i in range(7):
        assert pacer.delay("c", at=i * 0.1) == 0
        pacer.record("c", at=i * 0.1)
    assert pacer.delay("c", at=0.65) == pytest.approx(0.35)  # the send at 0.0 leaves the window at 1.0
    assert pacer.delay("other", at=0.65) == 0  # windows are per conversation


def test_eight_per_two_seconds() -> None:
    pacer = ConversationPacer(margin=0)
    for at in (0.0, 0.2, 0.4, 0.6, 1.1, 1.3, 1.5, 1.7):  # never 7 within one second
        assert pacer.delay("c", at=at) == 0
        pacer.record("c", at=at)
    assert pacer.delay("c", at=1.8) == pytest.approx(0.2)  # the 9th waits for 0.0 to leave the 2 s window


def test_sixty_per_thirty_seconds_and_1800_per_hour() -> None:
    pacer = ConversationPacer(margin=0)
    for i in range(60):  # one every 0.4 s: inside the 1 s and 2 s windows
        pacer.record("c", at=i * 0.4)
    assert pacer.delay("c", at=24.0) == pytest.approx(6.0)  # 0.0 leaves the 30 s window at 30.0

    hourly = ConversationPacer(margin=0)
    for i in range(1800):
        hourly.record("c", at=i * 1.9)  # 1800 sends, a bit under two seconds apart
    last = 1799 * 1.9
    assert hourly.delay("c", at=last + 1.9) == pytest.approx(3600.0 - (last + 1.9))


def test_reservations_count_as_sends_now() -> None:
    """Concurrent senders reserve before they wait for the tenant: together they cannot overshoot."""
    pacer = ConversationPacer(clock=lambda: 10.0, margin=0)
    for _ in range(7):
        assert pacer.delay("c") == 0
        pacer.reserve("c")
    assert pacer.delay("c") > 0
    pacer.release("c")  # one of them never sent
    assert pacer.delay("c") == 0
    pacer.reserve("c")
    for _ in range(7):
        pacer.sent("c")  # they all left: now real sends at 10.0
    assert pacer.delay("c", at=10.5) == pytest.approx(0.5)
    assert pacer.delay("c", at=11.0) == 0


def test_idle_conversations_are_forgotten() -> None:
    pacer = ConversationPacer(idle_check_every=100)
    for i in range(150):
        pacer.record(f"c{i}", at=float(i))
    pacer.record("late", at=5000.0)  # past the longest window (an hour) for the first ones
    for i in range(99):
        pacer.record("late", at=5000.0 + i)
    assert pacer.tracked() < 150


def test_a_conversation_with_one_send_keeps_a_bare_time_and_still_counts() -> None:
    # A broadcast sends once to each of up to 100,000 chats and keeps each time for an hour: one
    # float each, not an array (which is about four times the size in memory).
    pacer = ConversationPacer(margin=0)
    pacer.record("c", at=10.0)
    assert isinstance(pacer._sends[chat_key("c")], float)
    assert pacer.snapshot(at=10.5) == {str(chat_key("c")): [10.0]}
    for i in range(1, 7):
        assert pacer.delay("c", at=10.0 + i * 0.1) == 0
        pacer.record("c", at=10.0 + i * 0.1)
    assert not isinstance(pacer._sends[chat_key("c")], float)  # a second send turns it into the packed form
    assert pacer.delay("c", at=10.65) == pytest.approx(0.35)  # the first send still counts
    # The lone time of another chat expires after the hour like any other, reservations included.
    pacer.record("d", at=0.0)
    pacer.reserve("d")
    assert pacer.delay("d", at=3600.5) == 0
    pacer.release("d")
    assert pacer.delay("d", at=3600.5) == 0 and chat_key("d") not in pacer._sends


def test_restored_sends_count_and_take_more() -> None:
    pacer = ConversationPacer(margin=0)
    pacer.restore({"c": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "one": [0.2]})
    assert isinstance(pacer._sends[chat_key("one")], float)
    assert pacer.delay("c", at=0.6) == 0
    pacer.record("c", at=0.6)
    assert pacer.delay("c", at=0.65) == pytest.approx(0.35)
    pacer.record("one", at=0.3)
    assert pacer.snapshot(at=0.7)[str(chat_key("one"))] == [0.2, 0.3]


def test_a_chat_costs_the_same_small_memory_whatever_the_length_of_its_id() -> None:
    # Teams personal chat ids are about 130 characters (the documented activities in
    # tests/fixtures/teams/activities); a broadcast keeps one entry per chat for an hour. Kept by
    # the id itself, an entry cost 222 bytes at 20,000 chats (~240 at 100,000); by its 64-bit key 89 (~112).
    documented = "a:1U5SrqPsDVMzyjYN7qn2ZQyIJY6TFMcHvWNGyp-Qd98M4bMTiPVVXyEYShvmLHjEQq_zLqJHQRMw3mvn3WXlwjc6WMHTYF"
    chats = 20_000
    pacer = ConversationPacer(margin=0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(chats):
            # A fresh id each time, dropped after the send: as a delivery's reference is.
            pacer.record(f"{documented}{i:032d}", at=float(i) / 1000)
        per_chat = (tracemalloc.get_traced_memory()[0] - before) / chats
    finally:
        tracemalloc.stop()
    assert per_chat < 130, per_chat
    assert pacer.tracked() == chats and pacer.delay(f"{documented}{0:032d}", at=1.0) == 0


def test_a_snapshot_names_chats_by_key_and_restores_under_the_same_key() -> None:
    old = ConversationPacer(margin=0)
    for i in range(7):
        old.record("a:1chat", at=i * 0.1)
    snapshot = old.snapshot(at=0.65)
    assert list(snapshot) == [str(chat_key("a:1chat"))]
    new = ConversationPacer(margin=0)
    new.restore(snapshot)
    assert new.delay("a:1chat", at=0.65) == pytest.approx(0.35)  # 7 sends in the last second


# ---- TenantRateLimiter ---------------------------------------------------------------------
@pytest.mark.parametrize("rate", [5.0, 30.0, 50.0, 100.0, 200.0])
def test_schedule_stays_under_the_rate_in_every_second(rate: float) -> None:
    limiter = TenantRateLimiter(rate)
    slots = [limiter.reserve("t", at=0.0) for _ in range(int(rate * 20))]
    assert slots == sorted(slots)  # first come, first served
    assert most_in_any_second(slots) <= limiter.per_second <= rate
    sustained = len(slots) / slots[-1]
    assert 0.95 * rate <= sustained <= rate  # the headroom is small


@pytest.mark.parametrize(
    ("rate", "per_second", "schedule"),
    [(50.0, 49, 48.7), (30.0, 29, 28.8), (100.0, 98, 97.7), (5.0, 5, 4.8), (500.0, 481, 480.0)],
)
def test_the_schedule_runs_just_under_the_departure_cap(rate: float, per_second: int, schedule: float) -> None:
    """One send per second stays spare for jitter (at 50/s: never more than 49 leave in a second);
    the schedule itself runs 0.3 of a send under that, or at the headroom when that is faster."""
    limiter = TenantRateLimiter(rate)
    assert limiter.per_second == per_second
    assert limiter.effective_rate == pytest.approx(schedule)
    assert math.floor(limiter.effective_rate) + 1 <= limiter.per_second  # an even second never overflows


def test_slots_come_in_groups_and_a_pause_spreads_them_out() -> None:
    limiter = TenantRateLimiter(50.0)
    assert limiter.group_size > 1
    slots = [limiter.reserve("t", at=0.0) for _ in range(limiter.group_size * 3)]
    assert len(set(slots)) == 3  # whole groups leave together

    limiter.pause("t", 2.0, at=slots[-1])
    after = [limiter.reserve("t", at=slots[-1]) for _ in range(100)]
    assert min(after) >= slots[-1] + 2.0  # nothing before Retry-After is over
    assert len(set(after)) == len(after)  # then one send per slot, evenly spaced
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(after)}
    assert gaps == {round(1.0 / limiter.effective_rate, 6)}


def test_tenants_have_separate_schedules() -> None:
    limiter = TenantRateLimiter(10.0)
    a = [limiter.reserve("a", at=0.0) for _ in range(20)]
    b = [limiter.reserve("b", at=0.0) for _ in range(20)]
    assert a == b


def test_an_idle_tenant_sends_at_once() -> None:
    limiter = TenantRateLimiter(50.0)
    assert limiter.reserve("t", at=100.0) == 100.0
    assert limiter.reserve("t", at=500.0) == 500.0
    # Well under the rate (20 a second), no send waits for a group to form.
    arrivals = [1000.0 + i * 0.05 for i in range(200)]
    assert [limiter.reserve("t", at=at) for at in arrivals] == arrivals


class FakeClock:
    """Time that moves only when the limiter sleeps; ``late`` makes some sleeps overshoot."""

    def __init__(self, late: float = 0.0, seed: int = 7) -> None:
        self.now = 0.0
        self.late = late
        self.random = random.Random(seed)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.late and self.random.random() < 0.3:
            self.now += self.random.uniform(0, self.late)  # a busy machine wakes the sleeper late


@pytest.mark.parametrize("late", [0.0, 0.08])
def test_sends_that_left_never_exceed_the_rate_even_when_wakeups_are_late(late: float) -> None:
    clock = FakeClock(late)
    limiter = TenantRateLimiter(50.0, clock=clock, sleep=clock.sleep)

    async def run() -> list[float]:
        departures = []
        for _ in range(2000):
            await limiter.acquire("t")
            departures.append(clock())
        return departures

    departures = asyncio.run(run())
    assert most_in_any_second(departures) <= limiter.per_second < 50
    assert teams_refusals(departures, cap=50) == 0
    if not late:
        assert len(departures) / departures[-1] >= 0.95 * 50


def test_acquire_waits_out_a_pause_that_arrives_while_sleeping() -> None:
    clock = FakeClock()
    limiter = TenantRateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.reserve("t", at=0.0)  # the next slot is in the future

    async def run() -> float:
        limiter.pause("t", 5.0, at=0.0)
        await limiter.acquire("t")
        return clock()

    assert asyncio.run(run()) >= 5.0


def test_windows_keep_a_margin_for_arrival_jitter() -> None:
    pacer = ConversationPacer()
    for i in range(7):
        pacer.record("c", at=i * 0.01)
    # The oldest leaves Teams' 1 s window at 1.0; we wait the margin more, in case it arrived late.
    assert pacer.delay("c", at=0.5) == pytest.approx(0.5 + WINDOW_MARGIN_SECONDS)
