"""Conformance of ``store.keys`` (every backend): API keys and their unique names."""

from __future__ import annotations

import asyncio

import pytest
from teams_proactive.bot.model import (
    ApiKey,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, Store


async def test_api_keys(store: Store) -> None:
    assert await store.keys.get("missing") is None
    flows = await store.keys.create(ApiKey(id="k1", name="flows", secret_hash="h1", scopes=["send"]))
    assert flows.etag
    await store.keys.create(ApiKey(id="k2", name="agents", secret_hash="h2", scopes=["send"], tenant_id="t1"))
    with pytest.raises(ConcurrencyConflict):
        await store.keys.create(ApiKey(id="k3", name="flows", secret_hash="h3", scopes=["admin"]))
    assert await store.keys.get("k3") is None
    assert [k.name for k in await store.keys.list_all()] == ["agents", "flows"]

    read = await store.keys.get("k1")
    assert read is not None and (read.secret_hash, read.scopes) == ("h1", ["send"])
    read.revoked_at = now()
    revoked = await store.keys.write(read, read.etag or "")
    assert revoked.etag != read.etag
    with pytest.raises(ConcurrencyConflict):
        await store.keys.write(read, read.etag or "")
    again = await store.keys.get("k1")
    assert again is not None and again.revoked_at is not None


async def test_concurrent_keys_with_one_name_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.keys.create(ApiKey(id=f"k{i}", name="same", secret_hash="h", scopes=["send"])) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ApiKey) for r in results) == 1
    assert all(isinstance(r, ApiKey | ConcurrencyConflict) for r in results)
    assert [k.name for k in await store.keys.list_all()] == ["same"]
