"""An erase reads only what concerns the person: broadcasts through the person index, never all of them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.bot.model import Broadcast, Delivery, Reference, Surface
from teams_proactive.bot.recipients import forget, index_keys
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.bot.store.memory import MemoryStore
from teams_proactive.bot.store.sqlite import SqliteStore


def _ref(tenant: str, user: str, upn: str) -> Reference:
    return Reference(
        tenant_id=tenant, user_key=user, surface=Surface.TEAMS, conversation_id=f"a:{user}",
        service_url="https://smba.example/teams/", channel_id="msteams", user_id=f"29:{user}", bot_id="28:bot",
        aad_object_id=user, upn=upn,
    )  # fmt: skip


async def _scenario(store: Store) -> tuple[dict[str, int], list[str]]:
    await store.open()
    await store.references.write(_ref("t1", "adele", "adele@contoso.example"), None)
    # 200 finished broadcasts that do not name her, in her tenant and in another.
    for n in range(200):
        tenant = "t1" if n % 2 else "t2"
        await store.broadcasts.create(
            Broadcast(id=f"other-{n:03}", owner="k", tenant_id=tenant, content={}, recipients=[f"p{n}@x.example"],
                      status="completed")
        )  # fmt: skip
        await store.broadcasts.index(f"other-{n:03}", index_keys(tenant, [f"p{n}@x.example"]), None)
    # One that skipped her (indexed at expansion), one she got (found through her delivery).
    await store.broadcasts.create(
        Broadcast(id="skipped-her", owner="k", tenant_id="t1", content={}, recipients=["adele@contoso.example"],
                  status="completed", skipped=[{"recipient": "adele@contoso.example", "code": "RecipientOptedOut"}])
    )  # fmt: skip
    await store.broadcasts.index("skipped-her", index_keys("t1", ["adele@contoso.example"]), None)
    await store.broadcasts.create(
        Broadcast(id="sent-her", owner="k", tenant_id="t1", content={}, recipients=["ADELE@contoso.example"],
                  status="completed")
    )  # fmt: skip
    await store.outbox.create(
        Delivery(id="d1", owner="k", tenant_id="t1", user_key="adele", recipient="ADELE@contoso.example",
                 content={"text": "hi"}, broadcast_id="sent-her")
    )  # fmt: skip
    read: list[str] = []
    original = store.broadcasts.get

    async def counting(broadcast_id: str) -> Any:
        read.append(broadcast_id)
        return await original(broadcast_id)

    store.broadcasts.get = counting  # type: ignore[method-assign]
    try:
        result = await forget(store, PersonKey("t1", "adele"))
        for broadcast_id in ("skipped-her", "sent-her"):
            stored = await original(broadcast_id)
            assert stored is not None and stored.recipients == ["(forgotten)"], stored
    finally:
        await store.close()
    return result, read


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_forget_reads_only_the_broadcasts_that_name_the_person(tmp_path: Path, backend: str) -> None:
    store: Store = MemoryStore() if backend == "memory" else SqliteStore(str(tmp_path / "store.db"))
    result, read = asyncio.run(_scenario(store))
    assert result["broadcasts"] == 2
    assert sorted(set(read)) == ["sent-her", "skipped-her"]
