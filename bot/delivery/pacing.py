"""Teams' rate limits kept proactively: per-conversation windows and a per-tenant send schedule.

Both take the time as an argument (``at``) or from an injected clock, so tests check them without
the wall clock.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import math
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Per bot per conversation (Teams' published limits): (window seconds, sends allowed in it).
CONVERSATION_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))

# Teams counts a conversation's calls as they arrive, a few milliseconds after we let them go, and
# by different amounts for each: a call that leaves exactly one window after the oldest could still
# land inside that window. Each window is kept this much longer.
WINDOW_MARGIN_SECONDS = 0.1

# Share of the configured per-tenant rate kept free: scheduling jitter and the network move a send
# by a few milliseconds, and a send that lands in the next second must not be the 51st of 50.
DEFAULT_HEADROOM = 0.04


def chat_key(conversation_id: str) -> int:
    """A conversation's key in the pacer: 64 bits of a stable hash of its id.

    A Teams personal chat id is about 130 characters (tests/fixtures/teams/activities). Kept by the
    id, a chat's entry cost ~240 bytes, kept for an hour after a 100,000-person broadcast: 24 MB;
    by this key ~112 bytes, 11 MB (measured; tests/delivery/test_pacing.py). Stable across processes (unlike
    ``hash()``), so a snapshot handed to the next leader names the same chats. Two chats sharing a
    key (about one chance in three billion at 100,000 chats) would only be paced together, more
    slowly, never faster."""
    return int.from_bytes(hashlib.blake2b(conversation_id.encode(), digest_size=8).digest(), "little")


def _restored_key(key: str) -> int:
    # Snapshots name chats by their key in decimal; one saved by an earlier version names them by
    # conversation id (never all digits: Teams ids start with "a:", "19:" or "29:").
    return int(key) if key.isascii() and key.isdigit() else chat_key(key)


class ConversationPacer:
    """Sliding windows of recent sends per conversation.

    A sender first asks ``delay``; when it is 0 it calls ``reserve`` at once (no await in between),
    and later ``sent`` when the call leaves, or ``release`` if it never does. A reservation counts as
    a send happening now in every window, so concurrent senders cannot together overshoot a window.
    """

    def __init__(
        self,
        windows: tuple[tuple[float, int], ...] = CONVERSATION_WINDOWS,
        *,
        clock: Callable[[], float] = time.monotonic,
        idle_check_every: int = 10_000,
        margin: float = WINDOW_MARGIN_SECONDS,
    ) -> None:
        self._windows = windows
        self._margin = margin
        self._longest = max(w for w, _ in windows)
        self._clock = clock
        # Send times as packed doubles, by chat_key: a broadcast to 100,000 people keeps one entry per
        # conversation for the longest window (an hour), and a deque each cost ~90 MB where these cost
        # ~25 MB. A conversation with a single send (nearly every one in a broadcast) keeps a bare
        # float, a quarter of an array's size; its second send turns it into an array.
        self._sends: dict[int, float | array[float]] = {}
        self._reserved: dict[int, int] = {}  # sends let go but not yet left, by chat_key
        self._idle_check_every = idle_check_every
        self._since_idle_check = 0

    def delay(self, conversation_id: str, at: float | None = None) -> float:
        """Seconds to wait before one more send to this conversation stays within every window."""
        at = self._clock() if at is None else at
        key = chat_key(conversation_id)
        sends = self._live(key, at)
        reserved = self._reserved.get(key, 0)
        if not sends and not reserved:
            return 0.0
        wait = 0.0
        for window, allowed in self._windows:
            if len(sends) + reserved < allowed:
                continue
            in_window = [t for t in sends if t > at - window - self._margin] + [at] * reserved
            if len(in_window) >= allowed:
                # The send that must leave the window before one more fits (reservations leave last).
                wait = max(wait, in_window[-allowed] + window + self._margin - at)
        return wait

    def _live(self, key: int, at: float) -> tuple[float, ...] | array[float]:
        """The conversation's sends within the longest window; older ones are dropped as they go."""
        sends = self._sends.get(key)
        if isinstance(sends, float):
            if sends > at - self._longest:
                return (sends,)
            del self._sends[key]
            return ()
        if sends is None:
            return ()
        expired = bisect.bisect_right(sends, at - self._longest)
        if expired:
            del sends[:expired]
        return sends

    def reserve(self, conversation_id: str) -> None:
        key = chat_key(conversation_id)
        self._reserved[key] = self._reserved.get(key, 0) + 1

    def release(self, conversation_id: str) -> None:
        """A reserved send that did not happen."""
        self._release(chat_key(conversation_id))

    def _release(self, key: int) -> None:
        left = self._reserved.get(key, 0) - 1
        if left > 0:
            self._reserved[key] = left
        else:
            self._reserved.pop(key, None)

    def sent(self, conversation_id: str, at: float | None = None) -> None:
        """A reserved send left now (or at ``at``)."""
        key = chat_key(conversation_id)
        self._release(key)
        self._record(key, at)

    def record(self, conversation_id: str, at: float | None = None) -> None:
        self._record(chat_key(conversation_id), at)

    def _record(self, key: int, at: float | None) -> None:
        at = self._clock() if at is None else at
        sends = self._sends.get(key)
        if sends is None:
            self._sends[key] = float(at)
        elif isinstance(sends, float):
            self._sends[key] = array("d", (sends, at))
        else:
            sends.append(at)
        self._since_idle_check += 1
        # Sweep now and then (not on every send: with many conversations a sweep walks them all).
        if self._since_idle_check >= self._idle_check_every:
            self._since_idle_check = 0
            self._forget_idle(at)

    def tracked(self) -> int:
        return len(self._sends)

    def snapshot(
        self, at: float | None = None, *, horizon: float = 30.0, limit: int = 20_000
    ) -> dict[str, list[float]]:
        """Recent sends per conversation (the last ``horizon`` seconds), for the next leader; each
        conversation named by its ``chat_key`` in decimal.

        The hourly window is not carried over: it would mean every send of the last hour."""
        at = self._clock() if at is None else at
        found: dict[str, list[float]] = {}
        total = 0
        for key, sends in self._sends.items():
            recent = [t for t in _times(sends) if t > at - horizon]
            if recent:
                found[str(key)] = recent
                total += len(recent)
                if total >= limit:
                    break
        return found

    def restore(self, sends: dict[str, list[float]]) -> None:
        """Take over another dispatcher's recent sends (times on this pacer's clock), by ``chat_key``
        in decimal or, as an earlier version saved them, by conversation id."""
        for name, times in sends.items():
            key = _restored_key(name)
            merged = sorted([*_times(self._sends.get(key)), *times])
            if merged:
                self._sends[key] = float(merged[0]) if len(merged) == 1 else array("d", merged)

    def _forget_idle(self, at: float) -> None:
        for key in [k for k, s in self._sends.items() if _last(s) <= at - self._longest]:
            del self._sends[key]


def _times(sends: float | array[float] | None) -> tuple[float, ...] | array[float]:
    """A conversation's kept send times, whichever form they are kept in."""
    if sends is None:
        return ()
    return (sends,) if isinstance(sends, float) else sends


def _last(sends: float | array[float]) -> float:
    if isinstance(sends, float):
        return sends
    return sends[-1] if sends else float("-inf")


@dataclass
class _Schedule:
    group_time: float = float("-inf")  # when the current group of sends leaves
    group_used: int = 0
    paused_until: float = 0.0
    smooth_until: float = 0.0  # after a 429: one send per slot, no groups, until then
    departures: deque[float] = field(default_factory=deque)  # actual sends in the last second


class TenantRateLimiter:
    """A send schedule per tenant (Teams limits each app per tenant), plus pauses after a 429.

    Callers reserve slots and sleep until theirs, so sends leave in arrival order; a send to an idle
    tenant leaves at once. Under load, slots come in small groups (about a tenth of a second's worth:
    7 every 144 ms at 48.7/s): waking the event loop once per group instead of once per send more than
    halves the CPU each send costs. The schedule runs 0.3 of a send per second under ``per_second``
    (or ``headroom`` under the configured rate, when that is faster).
    Because a busy machine wakes sleepers late (and a late group then leaves right before the next
    one), the sends that actually left are counted too: no second ever holds more than
    ``per_second`` of them, one or two under the configured rate.

    A group moved by network or scheduling jitter moves all its sends into the next second at once.
    So once Teams answers 429 anyway, the tenant is paused for Retry-After and then paced one send
    per slot (evenly, ``1 / effective_rate`` apart) for ``smooth_seconds``, which tolerates that
    jitter far better, at a higher CPU cost per send.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        headroom: float = DEFAULT_HEADROOM,
        groups_per_second: float = 10.0,
        smooth_seconds: float = 300.0,
        smooth: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        headroom_rate = rate_per_second * (1.0 - headroom)
        # One or two under the rate, but never under what the even schedule itself puts in a second.
        self.per_second = min(
            max(1, math.floor(rate_per_second)),
            max(math.floor(rate_per_second * (1.0 - headroom / 2)), math.floor(headroom_rate) + 1),
        )
        # The departure count is the guard against jitter, so the schedule may run up to 0.3 of a send
        # per second under it (48.7/s at 50/s, where the headroom alone would give 48/s): throughput
        # that the guard does not need. (Half a send under it, 48.5/s, measured 96.7-97.1 % of the cap.)
        self.effective_rate = max(headroom_rate, min(self.per_second - 0.3, rate_per_second * (1.0 - headroom / 2)))
        if rate_per_second * headroom > 4:
            # A raised budget (hundreds a second): the same jitter moves many more sends, so the
            # whole headroom stays spare: the schedule runs at 480/s at 500/s, and no second holds
            # more than 481 departures, which leaves 40 ms of arrival jitter before Teams' count.
            self.effective_rate = headroom_rate
            self.per_second = math.floor(headroom_rate) + 1
        self.group_size = _group_size(self.effective_rate, self.per_second, self.effective_rate / groups_per_second)
        self.group_spacing = self.group_size / self.effective_rate
        self.smooth_seconds = smooth_seconds
        # Smooth from the first send: one send per slot always (the dispatcher's default), not only
        # after a 429. Measured: 0.97 of a 50/s cap with no 429 instead of 0.93-0.96 with one.
        self.smooth = smooth
        self._clock = clock
        self._sleep = sleep
        self._schedules: dict[str, _Schedule] = {}

    def _schedule(self, tenant_id: str) -> _Schedule:
        schedule = self._schedules.get(tenant_id)
        if schedule is None:
            schedule = self._schedules[tenant_id] = _Schedule()
        return schedule

    def reserve(self, tenant_id: str, at: float | None = None) -> float:
        """Take the tenant's next send slot; returns the moment it starts (``at`` or later)."""
        at = self._clock() if at is None else at
        s = self._schedule(tenant_id)
        smooth = self.smooth or at < s.smooth_until
        size, spacing = (1, 1.0 / self.effective_rate) if smooth else (self.group_size, self.group_spacing)
        if s.group_used < size and s.group_time >= s.paused_until and at < s.group_time + spacing:
            # Room in the current group: leave with it, or right away if it has already started (so a
            # lone send never waits for a group).
            s.group_used += 1
            return max(at, s.group_time)
        s.group_time = max(at, s.group_time + spacing, s.paused_until)
        s.group_used = 1
        return s.group_time

    def depart(self, tenant_id: str, at: float | None = None) -> float:
        """Count a send leaving now if the last second has room (returns 0); else how long until it has."""
        at = self._clock() if at is None else at
        departures = self._schedule(tenant_id).departures
        while departures and departures[0] <= at - 1.0:
            departures.popleft()
        if len(departures) >= self.per_second:
            # A millisecond more, so rounding never leaves the oldest send on the window's edge.
            return departures[-self.per_second] + 1.001 - at
        departures.append(at)
        return 0.0

    async def acquire(self, tenant_id: str) -> None:
        """Wait for this tenant's next slot, and for room in the last second."""
        wait = self.reserve(tenant_id) - self._clock()
        while True:
            if wait > 0:
                await self._sleep(wait)
            if self._clock() < self._schedule(tenant_id).paused_until:
                # A 429 arrived while we slept: take a slot behind the pause like everyone else.
                wait = self.reserve(tenant_id) - self._clock()
                continue
            wait = self.depart(tenant_id)
            if wait <= 0:
                return

    def snapshot(self, at: float | None = None) -> dict[str, dict[str, object]]:
        """Each tenant's pacing now (times on this limiter's clock), for the next leader."""
        at = self._clock() if at is None else at
        found: dict[str, dict[str, object]] = {}
        for tenant_id, s in self._schedules.items():
            departures = [t for t in s.departures if t > at - 1.0]
            if departures or s.paused_until > at or s.smooth_until > at or s.group_time > at - 1.0:
                found[tenant_id] = {
                    "departures": departures,
                    "lastSlot": max(s.group_time, departures[-1] if departures else float("-inf")),
                    "pausedUntil": s.paused_until,
                    "smoothUntil": s.smooth_until,
                }
        return found

    def restore(self, tenants: dict[str, dict[str, object]]) -> None:
        """Continue another dispatcher's schedule: its last second's sends count, its pause holds, and
        the next slot follows its last one (no burst as if the tenant had been idle)."""
        for tenant_id, state in tenants.items():
            s = self._schedule(tenant_id)
            departures = sorted(float(t) for t in state.get("departures", []))  # type: ignore[union-attr]
            s.departures = deque(sorted([*s.departures, *departures]))
            last = float(state.get("lastSlot", float("-inf")))  # type: ignore[arg-type]
            if last > s.group_time:
                s.group_time = last
                s.group_used = self.group_size  # the slot is taken: the next send gets the following one
            s.paused_until = max(s.paused_until, float(state.get("pausedUntil", 0.0)))  # type: ignore[arg-type]
            s.smooth_until = max(s.smooth_until, float(state.get("smoothUntil", 0.0)))  # type: ignore[arg-type]

    def pause(self, tenant_id: str, seconds: float, at: float | None = None) -> None:
        """Teams said 429 (with Retry-After): hold every send to this tenant for that long."""
        at = self._clock() if at is None else at
        schedule = self._schedule(tenant_id)
        schedule.paused_until = max(schedule.paused_until, at + seconds)
        schedule.smooth_until = max(schedule.smooth_until, schedule.paused_until + self.smooth_seconds)


def _group_size(rate: float, per_second: int, target: float) -> int:
    """The group size nearest ``target`` whose whole groups never put more than ``per_second`` sends
    in one second: a second holds at most floor(rate / size) + 1 groups. Size 1 always fits."""
    best = 1
    for size in range(2, max(2, math.ceil(rate / 2)) + 1):
        fits = (math.floor(rate / size) + 1) * size <= per_second
        if fits and abs(size - target) < abs(best - target):
            best = size
    return best
