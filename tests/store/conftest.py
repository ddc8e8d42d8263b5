"""Fixtures for the store conformance suite: one suite, every backend (memory, SQLite, Cosmos DB)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from teams_proactive.bot.store.base import Store

from tests.support.async_tests import loop, pytest_pyfunc_call  # noqa: F401 - fixture and hook
from tests.support.cosmos_fixtures import cosmos_database, cosmos_target  # noqa: F401 - fixtures

StoreFactory = Callable[..., Store]


@pytest.fixture(params=["memory", "sqlite", pytest.param("cosmos", marks=pytest.mark.cosmos)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """``make_store(reference_ttl_seconds=None)``: an open store of the backend under test. Stores made
    in one test share their data for SQLite (one file) and Cosmos DB (one database), not for memory."""
    event_loop: asyncio.AbstractEventLoop = request.getfixturevalue("loop")
    opened: list[Store] = []

    def make(*, reference_ttl_seconds: float | None = None) -> Store:
        store: Store
        if backend == "memory":
            from teams_proactive.bot.store.memory import MemoryStore

            store = MemoryStore(reference_ttl_seconds=reference_ttl_seconds)
        elif backend == "sqlite":
            from teams_proactive.bot.store.sqlite import SqliteStore

            store = SqliteStore(str(tmp_path / "store.db"), reference_ttl_seconds=reference_ttl_seconds)
        else:
            from teams_proactive.bot.store.cosmos import CosmosStore

            target = request.getfixturevalue("cosmos_target")
            database = request.getfixturevalue("cosmos_database")
            store = CosmosStore(
                target.endpoint, key=target.key, database=database, reference_ttl_seconds=reference_ttl_seconds
            )
        event_loop.run_until_complete(store.open())
        opened.append(store)
        return store

    yield make
    for store in opened:
        event_loop.run_until_complete(store.close())


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()


@pytest.fixture
def ttl_store(make_store: StoreFactory) -> Store:
    """A store with REFERENCE_TTL_DAYS set (one hour, in seconds)."""
    return make_store(reference_ttl_seconds=3600)
