"""Teams' rate limits kept proactively: per-conversation windows and a per-tenant token bucket."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

# Per bot per conversation (Teams' published limits): (window seconds, sends allowed in it).
CONVERSATION_WINDOWS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))


class ConversationPacer:
    """Sliding windows of recent sends per conversation."""

    def __init__(self, windows: tuple[tuple[float, int], ...] = CONVERSATION_WINDOWS) -> None:
        self._windows = windows
        self._longest = max(w for w, _ in windows)
        self._sends: dict[str, deque[float]] = {}

    def delay(self, conversation_id: str, at: float | None = None) -> float:
        """Seconds to wait before one more send to this conversation stays within every window."""
        at = time.monotonic() if at is None else at
        sends = self._sends.get(conversation_id)
        if not sends:
            return 0.0
        while sends and sends[0] <= at - self._longest:
            sends.popleft()
        wait = 0.0
        for window, allowed in self._windows:
            in_window = [t for t in sends if t > at - window] if len(sends) >= allowed else []
            if len(in_window) >= allowed:
                # The oldest send that must leave the window before one more fits.
                wait = max(wait, in_window[-allowed] + window - at)
        return wait

    def record(self, conversation_id: str, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self._sends.setdefault(conversation_id, deque()).append(at)
        if len(self._sends) > 50_000:
            self._forget_idle(at)

    def _forget_idle(self, at: float) -> None:
        for cid in [c for c, s in self._sends.items() if not s or s[-1] <= at - self._longest]:
            del self._sends[cid]


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TenantRateLimiter:
    """A token bucket per tenant (Teams limits each app per tenant), plus pauses after a 429."""

    def __init__(self, rate_per_second: float, burst: float | None = None) -> None:
        self.rate = rate_per_second
        # A small burst: Teams measures over short windows, so a full second's worth at once risks 429s.
        self.burst = burst if burst is not None else max(1.0, rate_per_second / 10)
        self._buckets: dict[str, _Bucket] = {}

    async def acquire(self, tenant_id: str) -> None:
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(tokens=self.burst, updated=time.monotonic())
        # Callers queue on the lock so tokens go out in arrival order at an even pace.
        async with bucket.lock:
            while True:
                at = time.monotonic()
                if at < bucket.paused_until:
                    await asyncio.sleep(bucket.paused_until - at)
                    continue
                bucket.tokens = min(self.burst, bucket.tokens + (at - bucket.updated) * self.rate)
                bucket.updated = at
                if bucket.tokens >= 1.0:
                    bucket.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - bucket.tokens) / self.rate)

    def pause(self, tenant_id: str, seconds: float) -> None:
        """Teams said 429 with Retry-After: hold every send to this tenant for that long."""
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(tokens=0.0, updated=time.monotonic())
        bucket.paused_until = max(bucket.paused_until, time.monotonic() + seconds)
        bucket.tokens = 0.0
