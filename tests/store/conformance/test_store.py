"""Conformance of the store itself (every backend): it answers once open."""

from __future__ import annotations

from teams_proactive.bot.store.base import Store


async def test_ping(store: Store) -> None:
    await store.ping()
