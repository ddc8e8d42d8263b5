"""Cosmos DB API keys, with a name: document per key name that keeps names unique."""

from __future__ import annotations

from teams_proactive.bot.model import ApiKey
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.keys import Keys
from teams_proactive.bot.store.cosmos.database import CosmosDatabase, name_doc_id


class CosmosKeys(Keys):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    async def create(self, key: ApiKey) -> ApiKey:
        # Names are unique across keys: a "name:" document claims the name first (a unique key
        # policy would only be unique within one partition).
        name_doc = {"id": name_doc_id(key.name), "kind": "name", "key_id": key.id}
        try:
            await self.db.create("keys", name_doc, name_doc["id"])
        except ConcurrencyConflict:
            claim = await self.db.read("keys", name_doc["id"], name_doc["id"])
            if claim is None or await self.db.read("keys", claim["key_id"], claim["key_id"]) is not None:
                raise
            # The claim outlived a key creation that failed half-way: take the name over.
            await self.db.replace("keys", name_doc, claim["_etag"])
        doc = key.to_doc()
        doc["kind"] = "key"
        stored = await self.db.create("keys", doc, key.id)
        return ApiKey.from_doc(stored, etag=stored["_etag"])

    async def get(self, key_id: str) -> ApiKey | None:
        doc = await self.db.read_live("keys", key_id, key_id)
        if doc is None or doc.get("kind") != "key":
            return None
        return ApiKey.from_doc(doc, etag=doc["_etag"])

    async def list_all(self) -> list[ApiKey]:
        docs = await self.db.query("keys", "SELECT * FROM c WHERE c.kind = 'key'")
        return sorted((ApiKey.from_doc(d, etag=d["_etag"]) for d in docs), key=lambda k: k.name)

    async def write(self, key: ApiKey, etag: str) -> ApiKey:
        doc = key.to_doc()
        doc["kind"] = "key"
        stored = await self.db.replace("keys", doc, etag)
        return ApiKey.from_doc(stored, etag=stored["_etag"])
