"""Conformance of ``store.broadcasts`` (every backend): the lifecycle of a broadcast and its expiry."""

from __future__ import annotations

from typing import Any

import pytest
from teams_proactive.bot.model import (
    Broadcast,
    now,
)
from teams_proactive.bot.store.base import ConcurrencyConflict, Store

from tests.store.conformance.factories import (
    make_broadcast,
    race_first_write,
)


async def test_broadcast_lifecycle(store: Store) -> None:
    assert await store.broadcasts.get("missing") is None
    created = await store.broadcasts.create(make_broadcast("b1"))
    assert created.etag
    with pytest.raises(ConcurrencyConflict):
        await store.broadcasts.create(make_broadcast("b1"))
    await store.broadcasts.create(make_broadcast("b2", status="running"))
    await store.broadcasts.create(make_broadcast("b3", status="completed"))
    assert {b.id for b in await store.broadcasts.unfinished()} == {"b1", "b2"}

    read = await store.broadcasts.get("b1")
    assert read is not None and read.recipients == ["a@contoso.example", "b@contoso.example"]
    read.status = "running"
    read.total = 2
    written = await store.broadcasts.write(read, read.etag or "")
    with pytest.raises(ConcurrencyConflict):
        await store.broadcasts.write(read, read.etag or "")

    async def skip_one(write: Any) -> None:
        other = await store.broadcasts.get("b1")
        assert other is not None
        other.skipped = [{"recipient": "x", "code": "RecipientNotFound", "message": "never seen"}]
        await write(other, other.etag)

    race_first_write(store.broadcasts, "write", skip_one)

    def complete(current: Broadcast) -> Broadcast:
        current.status = "completed"
        return current

    done = await store.broadcasts.update("b1", complete)
    assert done is not None and done.etag != written.etag
    final = await store.broadcasts.get("b1")
    assert final is not None and final.status == "completed" and len(final.skipped) == 1
    assert {b.id for b in await store.broadcasts.unfinished()} == {"b2"}
    assert sorted(await store.broadcasts.ids()) == ["b1", "b2", "b3"]
    await store.broadcasts.create(make_broadcast("gone", status="completed", expires_at=now() - 1))
    assert "gone" not in await store.broadcasts.ids()  # past its retention: as good as deleted


async def test_expired_broadcast_is_invisible(store: Store) -> None:
    await store.broadcasts.create(make_broadcast("b1", expires_at=now() - 1))
    assert await store.broadcasts.get("b1") is None
    assert await store.broadcasts.unfinished() == []
    again = await store.broadcasts.create(make_broadcast("b1"))
    assert again.etag and await store.broadcasts.get("b1") is not None
