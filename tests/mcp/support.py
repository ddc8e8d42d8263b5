"""An MCP session over real HTTP with the SDK's own client (mcp.client.streamable_http), run from sync tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

T = TypeVar("T")

FLAT_FORBIDDEN = ("$ref", "anyOf", "oneOf", "allOf", "$defs", "definitions")


@asynccontextmanager
async def mcp_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        create_mcp_http_client(headers=headers or {}) as http,
        streamable_http_client(url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def with_session(
    url: str, key: str | None, work: Callable[[ClientSession], Awaitable[T]], headers: dict[str, str] | None = None
) -> T:
    """Open a session with ``key`` as X-API-Key (or the given headers), run ``work`` in it, return what it returned."""

    async def run() -> T:
        async with mcp_session(url, {"X-API-Key": key} if key else dict(headers or {})) as session:
            return await work(session)

    return asyncio.run(run())


def forbidden_keys(node: Any, where: str = "") -> list[str]:
    """Every place in a JSON Schema where a key Copilot Studio cannot read appears."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FLAT_FORBIDDEN:
                found.append(f"{where}/{key}")
            found += forbidden_keys(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += forbidden_keys(value, f"{where}/{i}")
    if isinstance(node, dict) and isinstance(node.get("type"), list):
        found.append(f"{where}/type (a list)")
    return found


def rpc(live: Any, payload: Any, key: str | None, **headers: str) -> Any:
    """A raw JSON-RPC POST (for what the SDK client would never send): the requests.Response."""
    sent = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers}
    if key:
        sent["X-API-Key"] = key
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return live.http.post(live.url + "/mcp", data=data, headers=sent, timeout=60)
