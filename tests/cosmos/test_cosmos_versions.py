"""Cosmos DB documents carry the schema version that wrote them; a newer one is refused, not misread."""

from __future__ import annotations

import pytest
from teams_proactive.bot.model import Delivery
from teams_proactive.bot.store.base import StoreTooNew
from teams_proactive.bot.store.cosmos.database import SCHEMA_MARKER_ID, SCHEMA_VERSION, VERSION_FIELD

from tests.cosmos.conftest import OpenStore

pytestmark = pytest.mark.cosmos


def delivery(delivery_id: str) -> Delivery:
    return Delivery(id=delivery_id, owner="k", tenant_id="t1", user_key="u1", recipient="u1", content={"text": "hi"})


async def test_written_documents_and_the_database_carry_the_version(open_store: OpenStore) -> None:
    store = await open_store()
    await store.outbox.create(delivery("d1"))
    await store.leases.write_state("pacing", {"n": 1})
    doc = await store.containers["deliveries"].read_item("d1", partition_key="d1")
    assert doc[VERSION_FIELD] == SCHEMA_VERSION
    marker = await store.containers["leases"].read_item(SCHEMA_MARKER_ID, partition_key=SCHEMA_MARKER_ID)
    assert marker[VERSION_FIELD] == SCHEMA_VERSION


async def test_a_document_without_a_version_is_read_as_before(open_store: OpenStore) -> None:
    store = await open_store()
    doc = delivery("old").to_doc()
    await store.containers["deliveries"].create_item(doc)  # as the release before versions wrote it
    read = await store.outbox.get("old")
    assert read is not None and read.content == {"text": "hi"}


async def test_a_document_of_a_newer_release_is_refused(open_store: OpenStore) -> None:
    store = await open_store()
    doc = {**delivery("new").to_doc(), VERSION_FIELD: SCHEMA_VERSION + 1}
    await store.containers["deliveries"].create_item(doc)
    with pytest.raises(StoreTooNew, match="newer release"):
        await store.outbox.get("new")
    with pytest.raises(StoreTooNew, match="newer release"):
        await store.outbox.page(limit=10)


async def test_a_database_a_newer_release_wrote_to_is_refused_at_open(open_store: OpenStore) -> None:
    store = await open_store()
    await store.containers["leases"].upsert_item({"id": SCHEMA_MARKER_ID, VERSION_FIELD: SCHEMA_VERSION + 1})
    with pytest.raises(StoreTooNew, match=r"schema version 2, written by a newer release"):
        await open_store()
    marker = await store.containers["leases"].read_item(SCHEMA_MARKER_ID, partition_key=SCHEMA_MARKER_ID)
    assert marker[VERSION_FIELD] == SCHEMA_VERSION + 1  # left as it was
