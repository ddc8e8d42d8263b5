"""Cosmos DB broadcasts, their recipient chunks and the person index (personindex container)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from azure.cosmos.exceptions import CosmosResourceNotFoundError
from teams_proactive.bot.model import Broadcast, now
from teams_proactive.bot.store.base import MAX_CONFLICT_RETRIES, ConcurrencyConflict
from teams_proactive.bot.store.base.broadcasts import Broadcasts
from teams_proactive.bot.store.cosmos.database import (
    CONCURRENT_WRITES,
    FORBIDDEN_ID_CHARS,
    LIVE_FILTER,
    SCHEMA_VERSION,
    VERSION_FIELD,
    CosmosDatabase,
    query_params,
)
from teams_proactive.bot.unreadable import decode_each, reason_of


class CosmosBroadcasts(Broadcasts):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    def _broadcast_doc(self, b: Broadcast) -> dict[str, Any]:
        return self.db.with_ttl(b.to_doc(), b.expires_at)

    async def create(self, broadcast: Broadcast) -> Broadcast:
        stored = await self.db.create("broadcasts", self._broadcast_doc(broadcast), broadcast.id)
        return Broadcast.from_doc(stored, etag=stored["_etag"])

    async def get(self, broadcast_id: str) -> Broadcast | None:
        doc = await self.db.read_live("broadcasts", broadcast_id, broadcast_id)
        if doc is None:
            return None
        try:
            return Broadcast.from_doc(doc, etag=doc["_etag"])
        except Exception as exc:  # unreadable: moved to quarantine, and absent from now on
            await self.db.move_aside("broadcast", broadcast_id, reason_of(exc), doc)
            return None

    async def write(self, broadcast: Broadcast, etag: str) -> Broadcast:
        stored = await self.db.replace("broadcasts", self._broadcast_doc(broadcast), etag)
        return Broadcast.from_doc(stored, etag=stored["_etag"])

    async def write_chunk(self, broadcast_id: str, index: int, recipients: list[str], expires_at: float | None) -> None:
        chunk_id = f"{broadcast_id}.{index}"
        doc = self.db.with_ttl(
            {"id": chunk_id, "broadcast_id": broadcast_id, "index": index, "recipients": recipients,
             "expires_at": expires_at, VERSION_FIELD: SCHEMA_VERSION},
            expires_at,
        )  # fmt: skip
        await self.db.containers["recipients"].upsert_item(doc)

    async def read_chunk(self, broadcast_id: str, index: int) -> list[str] | None:
        chunk_id = f"{broadcast_id}.{index}"
        doc = await self.db.read_live("recipients", chunk_id, chunk_id)
        return list(doc["recipients"]) if doc is not None else None

    async def unfinished(self) -> list[Broadcast]:
        docs = await self.db.query(
            "broadcasts", f"SELECT * FROM c WHERE c.status != 'completed' AND {LIVE_FILTER}", query_params(now=now())
        )

        def decode(doc: dict[str, Any]) -> Broadcast:
            return Broadcast.from_doc(doc, etag=doc["_etag"])

        try:
            return [decode(d) for d in docs]
        except Exception:  # one that cannot be read goes to quarantine; the coordinator gets the rest
            broadcasts, unreadable = decode_each(((str(d.get("id")), d) for d in docs), decode, "broadcast")
            await self.db.set_aside(unreadable, {str(d.get("id")): d for d in docs})
            return broadcasts

    async def ids(self) -> list[str]:
        return await self.db.query(
            "broadcasts", f"SELECT VALUE c.id FROM c WHERE {LIVE_FILTER}", query_params(now=now())
        )

    async def index(self, broadcast_id: str, keys: list[str], expires_at: float | None) -> None:
        slots = asyncio.Semaphore(CONCURRENT_WRITES)

        async def note(key: str) -> None:
            async with slots:
                await self._note_index(key, broadcast_id, expires_at)

        await asyncio.gather(*(note(k) for k in dict.fromkeys(keys)))

    async def _note_index(self, key: str, broadcast_id: str, expires_at: float | None) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self.db.read("personindex", key, key)
            at = now()
            broadcasts = {
                b: until for b, until in (doc or {}).get("broadcasts", {}).items() if until is None or until > at
            }
            if broadcast_id in broadcasts and broadcasts[broadcast_id] == expires_at:
                return
            broadcasts[broadcast_id] = expires_at
            untils = list(broadcasts.values())
            body = {"id": key, "broadcasts": broadcasts}
            if None not in untils:
                self.db.with_ttl(body, max(u for u in untils if u is not None))
            try:
                if doc is None:
                    await self.db.create("personindex", body, key)
                else:
                    await self.db.replace("personindex", body, doc["_etag"])
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"person index {key} kept changing")

    async def indexed(self, keys: list[str]) -> list[str]:
        docs = await asyncio.gather(*(self.db.read("personindex", k, k) for k in dict.fromkeys(keys)))
        at = now()
        return sorted(
            {
                b
                for doc in docs
                if doc is not None
                for b, until in doc.get("broadcasts", {}).items()
                if until is None or until > at
            }
        )

    async def forget_index(self, keys: list[str]) -> None:
        async def drop(key: str) -> None:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.db.containers["personindex"].delete_item(key, partition_key=key)

        await asyncio.gather(*(drop(k) for k in dict.fromkeys(keys) if not FORBIDDEN_ID_CHARS.search(k)))
