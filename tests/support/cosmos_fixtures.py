"""Fixtures for tests that need Cosmos DB: the local wire-compatible server, or a real account.

By default one ``@vercel/cosmosdb-server`` (see ``cosmos_server.py``) runs per test session on a free
loopback port. Set ``COSMOS_TEST_ENDPOINT`` (and ``COSMOS_TEST_KEY``; without it, Entra ID through
``DefaultAzureCredential``) to run the same tests against a real account or the official emulator.
Each test gets a database of its own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.cosmos_server import CosmosServer, CosmosServerUnavailableError


@dataclass(frozen=True)
class CosmosTarget:
    endpoint: str
    key: str
    local: bool  # the in-memory test server (TTL never enforced, see COSMOS_NOTES.md)

    def env(self, database: str) -> dict[str, str]:
        """The app's own settings for this account and database."""
        return {
            "STORE_URL": "cosmos",
            "COSMOS_ENDPOINT": self.endpoint,
            "COSMOS_KEY": self.key,
            "COSMOS_DATABASE": database,
        }


@pytest.fixture(scope="session")
def cosmos_target() -> Iterator[CosmosTarget]:
    endpoint = os.environ.get("COSMOS_TEST_ENDPOINT", "").strip()
    if endpoint:
        yield CosmosTarget(endpoint, os.environ.get("COSMOS_TEST_KEY", ""), local=False)
        return
    try:
        server = CosmosServer().start()
    except CosmosServerUnavailableError as exc:
        pytest.skip(f"local Cosmos DB server unavailable: {exc}")
    try:
        yield CosmosTarget(server.endpoint, server.key, local=True)
    finally:
        server.stop()


async def drop_database(target: CosmosTarget, name: str) -> None:
    from azure.cosmos.aio import CosmosClient
    from azure.cosmos.exceptions import CosmosResourceNotFoundError

    credential: object = target.key
    if not target.key:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        async with CosmosClient(target.endpoint, credential=credential) as client:  # type: ignore[arg-type]
            with contextlib.suppress(CosmosResourceNotFoundError):
                await client.delete_database(name)
    finally:
        if not target.key:
            await credential.close()  # type: ignore[attr-defined]


@pytest.fixture
def cosmos_database(cosmos_target: CosmosTarget) -> Iterator[str]:
    """A fresh database name for this test (the store creates it); dropped afterwards."""
    name = f"tp-test-{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(drop_database(cosmos_target, name))
