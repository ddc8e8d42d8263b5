"""Broadcast recipient lists in chunks, on every backend: a 25,000-address list of long addresses fits
Cosmos DB's 2 MB item limit because no single record holds it (the local Cosmos server does not
enforce that limit itself, so the test measures the documents instead)."""

from __future__ import annotations

import json

from teams_proactive.bot.delivery.broadcasts import RECIPIENT_CHUNK, BroadcastService
from teams_proactive.bot.delivery.dispatcher import Dispatcher, DispatcherSettings
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import Store

COSMOS_ITEM_LIMIT = 2 * 1024 * 1024


async def test_chunks_are_written_read_and_replaced(store: Store) -> None:
    assert await store.broadcasts.read_chunk("b1", 0) is None
    await store.broadcasts.write_chunk("b1", 0, ["a@contoso.example", "b@contoso.example"], None)
    await store.broadcasts.write_chunk("b1", 1, ["c@contoso.example"], None)
    assert await store.broadcasts.read_chunk("b1", 0) == ["a@contoso.example", "b@contoso.example"]
    assert await store.broadcasts.read_chunk("b1", 1) == ["c@contoso.example"]
    assert await store.broadcasts.read_chunk("b2", 0) is None
    await store.broadcasts.write_chunk("b1", 0, ["(forgotten)", "b@contoso.example"], None)
    assert await store.broadcasts.read_chunk("b1", 0) == ["(forgotten)", "b@contoso.example"]
    await store.broadcasts.write_chunk("old", 0, ["gone@contoso.example"], now() - 1)
    assert await store.broadcasts.read_chunk("old", 0) is None  # its broadcast's retention ran out


async def test_25000_long_addresses_fit_in_chunks(store: Store) -> None:
    # Dispatcher without a client: only its notify() is used by start_broadcast.
    service = BroadcastService(store, Dispatcher(store, None, DispatcherSettings()))  # type: ignore[arg-type]
    recipients = [f"{'x' * 270}.{i:05d}@a-rather-long-subdomain.contoso.example" for i in range(25_000)]
    assert len(json.dumps(recipients)) > COSMOS_ITEM_LIMIT  # one record could not have held them
    broadcast, created = await service.start_broadcast(
        Caller(name="test"), content={"text": "All hands"}, recipients=recipients, tenant_id="tenant-1"
    )
    assert created
    stored = await store.broadcasts.get(broadcast.id)
    assert stored is not None and stored.recipients == [] and stored.total == 25_000
    assert stored.recipient_chunks == 25_000 // RECIPIENT_CHUNK
    assert len(json.dumps(stored.to_doc())) < 64 * 1024
    read_back: list[str] = []
    async for chunk in service.recipients_of(stored):
        assert len(json.dumps(chunk)) < COSMOS_ITEM_LIMIT // 4
        read_back += chunk
    assert read_back == recipients
