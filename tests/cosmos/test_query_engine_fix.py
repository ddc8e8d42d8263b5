"""The launcher's query-engine fix (linear reducers and sort, COSMOS_NOTES.md fix 3) changes no answer.

The same items and cross-partition queries go to the package as published (``--stock``) and to the
launcher's default; every answer, in order, page by page, must be the same. The queries cover what
the fix touches: FROM (every query), JOIN, ORDER BY (one key, descending, items missing the key),
TOP, aggregates, projections that leave fields undefined, and paging with continuation tokens.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient

from tests.support.cosmos_server import CosmosServer, CosmosServerUnavailableError

pytestmark = pytest.mark.cosmos

QUERIES = [
    "SELECT * FROM c",
    "SELECT c.id, c.n FROM c WHERE c.n >= 3",
    "SELECT TOP 4 c.id FROM c WHERE c.n > 1 ORDER BY c.rank",
    "SELECT c.id FROM c ORDER BY c.rank DESC",
    "SELECT c.id FROM c ORDER BY c.missing_sometimes",
    "SELECT c.id, t FROM c JOIN t IN c.tags WHERE t != 'b'",
    "SELECT VALUE COUNT(1) FROM c WHERE ARRAY_CONTAINS(c.tags, 'a')",
    "SELECT VALUE MAX(c.rank) FROM c",
    "SELECT c.id, c.missing_sometimes FROM c",
    "SELECT VALUE c.missing_sometimes FROM c",
]


def items() -> list[dict[str, Any]]:
    docs = []
    for n in range(12):
        doc: dict[str, Any] = {"id": f"i{n:02d}", "pk": f"p{n % 3}", "n": n, "rank": (n * 7) % 12, "tags": ["a", "b"]}
        if n % 2:
            doc["missing_sometimes"] = n
        if n % 4 == 0:
            doc["tags"] = ["c"]
        docs.append(doc)
    return docs


async def answers(server: CosmosServer) -> list[list[Any]]:
    out: list[list[Any]] = []
    async with CosmosClient(server.endpoint, credential=server.key) as client:
        db = await client.create_database_if_not_exists(f"tp-engine-{uuid.uuid4().hex[:8]}")
        container = await db.create_container_if_not_exists("things", partition_key=PartitionKey("/pk"))
        for doc in items():
            await container.create_item(doc)
        await container.upsert_item({**items()[5], "n": 50})  # a replace moves the item to the end
        for sql in QUERIES:
            rows = [row async for row in container.query_items(sql)]
            out.append(
                [{k: v for k, v in r.items() if not k.startswith("_")} if isinstance(r, dict) else r for r in rows]
            )
        pages = container.query_items("SELECT c.id FROM c ORDER BY c.rank", max_item_count=5).by_page()
        out.append([[row["id"] async for row in page] async for page in pages])
    return out


async def test_stock_and_fixed_engine_answer_the_same() -> None:
    results = []
    for stock in (True, False):
        try:
            server = CosmosServer(stock=stock).start()
        except CosmosServerUnavailableError as exc:
            pytest.skip(f"local Cosmos DB server unavailable: {exc}")
        try:
            results.append(await answers(server))
        finally:
            server.stop()
    stock_answers, fixed_answers = results
    assert all(stock_answers)  # every query found something to compare
    assert fixed_answers == stock_answers
