"""Conformance of ``store.erasures`` (every backend): erasures asked for are kept until done, oldest first."""

from __future__ import annotations

from teams_proactive.bot.store.base import PersonKey, Store


async def test_erasures_are_pending_until_done_oldest_first(store: Store) -> None:
    first, second = PersonKey("t1", "u1"), PersonKey("t1", "u2")
    assert await store.erasures.pending(10) == []
    await store.erasures.queue(first)
    await store.erasures.queue(second)
    await store.erasures.queue(first)  # asked again: still one request
    assert await store.erasures.pending(10) == [first, second]
    assert await store.erasures.pending(1) == [first]
    await store.erasures.done(first)
    assert await store.erasures.pending(10) == [second]
