"""Cosmos DB leases and saved state."""

from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceNotFoundError
from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.leases import Leases
from teams_proactive.bot.store.cosmos.database import (
    LEASE_GRACE_SECONDS,
    SCHEMA_VERSION,
    VERSION_FIELD,
    CosmosDatabase,
    alias_doc_id,
)


class CosmosLeases(Leases):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    async def acquire(self, name: str, owner: str, seconds: float) -> bool:
        lease_id = alias_doc_id(name)
        at = now()
        doc = await self.db.read("leases", lease_id, lease_id)
        body = self.db.with_ttl(
            {"id": lease_id, "owner": owner, "until": at + seconds}, at + seconds + LEASE_GRACE_SECONDS
        )
        try:
            if doc is None:
                await self.db.create("leases", body, lease_id)
            elif doc["owner"] == owner or doc["until"] <= at:
                await self.db.replace("leases", body, doc["_etag"])
            else:
                return False
        except ConcurrencyConflict:
            return False  # someone else took or renewed it between our read and our write
        return True

    async def release(self, name: str, owner: str) -> None:
        lease_id = alias_doc_id(name)
        doc = await self.db.read("leases", lease_id, lease_id)
        if doc is None or doc["owner"] != owner:
            return
        try:
            await self.db.containers["leases"].delete_item(
                lease_id, partition_key=lease_id, etag=doc["_etag"], match_condition=MatchConditions.IfNotModified
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
            pass  # taken over after it lapsed, or gone already: not ours to release

    # Small shared state lives beside the leases (one point read or upsert, never queried).
    async def read_state(self, name: str) -> dict[str, Any] | None:
        state_id = alias_doc_id("state:" + name)
        doc = await self.db.read("leases", state_id, state_id)
        return dict(doc["state"]) if doc is not None and isinstance(doc.get("state"), dict) else None

    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        state_id = alias_doc_id("state:" + name)
        await self.db.containers["leases"].upsert_item({"id": state_id, "state": state, VERSION_FIELD: SCHEMA_VERSION})
