"""A query that carries a partition key sees that logical partition only, as on Cosmos DB.

Cosmos DB runs ``query_items(..., partition_key=X)`` against partition X
(https://learn.microsoft.com/azure/cosmos-db/how-to-query-container, "In-partition query"), whatever
the WHERE clause says. The published ``@vercel/cosmosdb-server`` ignores the partition key header:
it evaluates every query over the whole container, and rejects one whose WHERE clause has no
equality on the partition key path. The launcher's fix (tests/support/cosmos_server.cjs) scopes the
query; the last test shows the stock package's answers, so the fix is what these tests rely on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError

from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.cosmos_server import CosmosServer, CosmosServerUnavailableError

pytestmark = pytest.mark.cosmos


def params(**values: Any) -> list[dict[str, Any]]:
    return [{"name": f"@{name}", "value": value} for name, value in values.items()]


async def ids(container: ContainerProxy, sql: str, pk: str | None = None, **values: Any) -> list[Any]:
    kwargs: dict[str, Any] = {"parameters": params(**values)}
    if pk is not None:
        kwargs["partition_key"] = pk
    return [row["id"] if isinstance(row, dict) else row async for row in container.query_items(sql, **kwargs)]


async def people_container(client: CosmosClient, database: str) -> AsyncIterator[ContainerProxy]:
    db = await client.create_database_if_not_exists(database)
    container = await db.create_container_if_not_exists("people", partition_key=PartitionKey("/pk"))
    # Two people ("A" and "B"), the same kind of item in each, interleaved in insertion order.
    for n in range(3):
        for pk in ("A", "B"):
            await container.create_item({"id": f"{pk}{n}", "pk": pk, "kind": "surface", "n": n})
    yield container


async def test_partition_key_scopes_the_query_whatever_the_where_clause(
    cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    async with CosmosClient(cosmos_target.endpoint, credential=cosmos_target.key) as client:
        async for people in people_container(client, cosmos_database):
            # No filter on c.pk at all: still only A's items.
            assert sorted(await ids(people, "SELECT * FROM c", "A")) == ["A0", "A1", "A2"]
            assert sorted(await ids(people, "SELECT * FROM c WHERE c.kind = @k", "A", k="surface")) == [
                "A0",
                "A1",
                "A2",
            ]
            assert await ids(people, "SELECT VALUE COUNT(1) FROM c WHERE c.n >= 1", "B") == [2]
            # A WHERE clause naming the other partition finds nothing in this one.
            assert await ids(people, "SELECT * FROM c WHERE c.pk = @other", "A", other="B") == []
            either = "SELECT * FROM c WHERE c.pk = @a OR c.kind = @k"
            assert sorted(await ids(people, either, "B", a="A", k="surface")) == ["B0", "B1", "B2"]
            # Without a partition key the query still spans every partition.
            assert len(await ids(people, "SELECT * FROM c WHERE c.kind = @k", k="surface")) == 6
            assert await ids(people, "SELECT * FROM c", "nobody") == []


async def test_scope_follows_creates_replaces_and_deletes(cosmos_target: CosmosTarget, cosmos_database: str) -> None:
    async with CosmosClient(cosmos_target.endpoint, credential=cosmos_target.key) as client:
        async for people in people_container(client, cosmos_database):
            await people.upsert_item({"id": "A1", "pk": "A", "kind": "surface", "n": 10})  # replace
            await people.delete_item("A0", partition_key="A")
            await people.create_item({"id": "A3", "pk": "A", "kind": "surface", "n": 3})
            await people.create_item({"id": "A0", "pk": "B", "kind": "surface", "n": 5})  # same id, other person
            sql = "SELECT * FROM c ORDER BY c.n"
            assert await ids(people, sql, "A") == ["A2", "A3", "A1"]
            assert await ids(people, sql, "B") == ["B0", "B1", "B2", "A0"]
            assert await ids(people, "SELECT VALUE MAX(c.n) FROM c", "A") == [10]
            # Paged: every item of the partition exactly once, none of the other's.
            pages = people.query_items("SELECT * FROM c WHERE c.kind = @k", parameters=params(k="surface"),
                                       partition_key="B", max_item_count=1)  # fmt: skip
            seen = [row["id"] async for page in pages.by_page() async for row in page]
            assert sorted(seen) == ["A0", "B0", "B1", "B2"]


async def test_the_stock_package_ignores_the_partition_key() -> None:
    """Why the launcher's fix exists: without it, the same queries answer other partitions' items,
    or 400 "missing partition keys" (Cosmos DB answers both from partition A only)."""
    try:
        server = CosmosServer(stock=True).start()
    except CosmosServerUnavailableError as exc:
        pytest.skip(f"local Cosmos DB server unavailable: {exc}")
    try:
        async with CosmosClient(server.endpoint, credential=server.key) as client:
            async for people in people_container(client, f"tp-stock-{uuid.uuid4().hex[:8]}"):
                assert sorted(await ids(people, "SELECT * FROM c WHERE c.pk = @other", "A", other="B")) == [
                    "B0",
                    "B1",
                    "B2",
                ]
                with pytest.raises(CosmosHttpResponseError) as refused:
                    await ids(people, "SELECT * FROM c WHERE c.kind = @k", "A", k="surface")
                assert refused.value.status_code == 400
                assert "missing partition keys" in str(refused.value)
    finally:
        server.stop()
