"""Cosmos DB erasure requests."""

from __future__ import annotations

import contextlib
import hashlib

from azure.cosmos.exceptions import CosmosResourceNotFoundError
from teams_proactive.bot.model import now, person_id
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey
from teams_proactive.bot.store.base.erasures import Erasures
from teams_proactive.bot.store.cosmos.database import CosmosDatabase, query_params


class CosmosErasures(Erasures):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    @staticmethod
    def _erasure_id(person: PersonKey) -> str:
        return "erase:" + hashlib.sha256(person_id(person.tenant_id, person.user_key).encode()).hexdigest()

    async def queue(self, person: PersonKey) -> None:
        doc = {"id": self._erasure_id(person), "tenant_id": person.tenant_id, "user_key": person.user_key}
        doc["requested_at"] = now()
        with contextlib.suppress(ConcurrencyConflict):
            await self.db.create("erasures", doc, doc["id"])  # asked for already: once is enough

    async def pending(self, limit: int) -> list[PersonKey]:
        docs = await self.db.query(
            "erasures", "SELECT TOP @n c.tenant_id, c.user_key FROM c ORDER BY c.requested_at", query_params(n=limit)
        )
        return [PersonKey(d["tenant_id"], d["user_key"]) for d in docs]

    async def done(self, person: PersonKey) -> None:
        erasure_id = self._erasure_id(person)
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self.db.containers["erasures"].delete_item(erasure_id, partition_key=erasure_id)
