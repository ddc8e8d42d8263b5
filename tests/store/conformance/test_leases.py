"""Conformance of ``store.leases`` (every backend): leases and saved state."""

from __future__ import annotations

import asyncio

from teams_proactive.bot.store.base import Store


async def test_leases(store: Store) -> None:
    assert await store.leases.acquire("dispatcher", "a", 30) is True
    assert await store.leases.acquire("dispatcher", "b", 30) is False  # held by another
    assert await store.leases.acquire("dispatcher", "a", 30) is True  # renewed by its holder
    assert await store.leases.acquire("other", "b", 30) is True  # leases are per name
    await store.leases.release("dispatcher", "b")  # not b's to release
    assert await store.leases.acquire("dispatcher", "b", 30) is False
    await store.leases.release("dispatcher", "a")
    assert await store.leases.acquire("dispatcher", "b", 0) is True
    # b's lease ran out at once (0 s): anyone may take it over.
    assert await store.leases.acquire("dispatcher", "c", 30) is True
    assert await store.leases.acquire("dispatcher", "b", 30) is False


async def test_concurrent_lease_acquirers_one_wins(store: Store) -> None:
    results = await asyncio.gather(*(store.leases.acquire("dispatcher", f"o{i}", 30) for i in range(10)))
    assert results.count(True) == 1


async def test_state_documents_are_replaced_and_read_back(store: Store) -> None:
    assert await store.leases.read_state("pacing") is None
    await store.leases.write_state("pacing", {"tenants": {"t1": {"pausedUntil": 12.5, "departures": [1.0, 2.0]}}})
    await store.leases.write_state("other", {"x": 1})
    await store.leases.write_state("pacing", {"tenants": {"t2": {"pausedUntil": 0.0, "departures": []}}})
    assert await store.leases.read_state("pacing") == {"tenants": {"t2": {"pausedUntil": 0.0, "departures": []}}}
    assert await store.leases.read_state("other") == {"x": 1}
