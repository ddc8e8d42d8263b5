"""Fixtures for the Cosmos DB backend's own tests (the shared conformance suite lives in tests/store)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from teams_proactive.bot.store.cosmos import CosmosStore

from tests.support.async_tests import loop, pytest_pyfunc_call  # noqa: F401 - fixture and hook
from tests.support.cosmos_fixtures import CosmosTarget, cosmos_database, cosmos_target  # noqa: F401 - fixtures

OpenStore = Callable[..., Awaitable[CosmosStore]]


@pytest.fixture
def open_store(request: pytest.FixtureRequest) -> Iterator[OpenStore]:
    """``await open_store(reference_ttl_seconds=None)``: a CosmosStore on this test's database, opened
    on the test's loop and closed afterwards. Every store made in one test shares the database."""
    event_loop: asyncio.AbstractEventLoop = request.getfixturevalue("loop")
    target: CosmosTarget = request.getfixturevalue("cosmos_target")
    database: str = request.getfixturevalue("cosmos_database")
    opened: list[CosmosStore] = []

    async def make(*, reference_ttl_seconds: float | None = None) -> CosmosStore:
        store = CosmosStore(
            target.endpoint,
            key=target.key,
            database=database,
            reference_ttl_seconds=reference_ttl_seconds,
        )
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        event_loop.run_until_complete(store.close())
