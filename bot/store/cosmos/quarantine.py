"""Cosmos DB quarantine: a record moved out of its container into ``quarantine`` (the document as it was,
beside its reason, with a ttl of the retention period)."""

from __future__ import annotations

import contextlib

from azure.cosmos.exceptions import CosmosResourceNotFoundError
from teams_proactive.bot.model import now
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.base.quarantine import KINDS, Quarantine, QuarantinedRecord
from teams_proactive.bot.store.cosmos.database import (
    CONTAINER_OF,
    LIVE_FILTER,
    CosmosDatabase,
    quarantine_doc_id,
    query_params,
)


class CosmosQuarantine(Quarantine):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    @property
    def keep_seconds(self) -> float:  # type: ignore[override]
        return self.db.quarantine_seconds

    @keep_seconds.setter
    def keep_seconds(self, seconds: float) -> None:
        self.db.quarantine_seconds = seconds

    async def isolate(self, kind: str, record_id: str, reason: str) -> bool:
        container = CONTAINER_OF[kind]
        item_id, pk = record_id, record_id
        if kind == "reference":  # tenant|user key|surface: the surface in the person's partition
            pk, _, item_id = record_id.rpartition("|")
        try:
            # Raw, not through db.read: the document may be one no codec of ours can take.
            doc = dict(await self.db.containers[container].read_item(item_id, partition_key=pk))
        except CosmosResourceNotFoundError:
            return False
        return await self.db.move_aside(kind, record_id, reason, doc)

    async def list(self, kind: str | None = None, limit: int = 100) -> list[QuarantinedRecord]:
        where = f"{LIVE_FILTER}" + (" AND c.kind = @kind" if kind else "")
        params = query_params(now=now(), n=limit, **({"kind": kind} if kind else {}))
        docs = await self.db.query(
            "quarantine",
            "SELECT TOP @n c.kind, c.record_id, c.reason, c.quarantined_at, c.expires_at FROM c"
            f" WHERE {where} ORDER BY c.quarantined_at DESC",
            params,
        )
        return [
            QuarantinedRecord(d["kind"], d["record_id"], d["reason"], d["quarantined_at"], d.get("expires_at"))
            for d in docs
        ]

    async def counts(self) -> dict[str, int]:
        async def count(kind: str) -> int:
            rows = await self.db.query(
                "quarantine",
                f"SELECT VALUE COUNT(1) FROM c WHERE c.kind = @kind AND {LIVE_FILTER}",
                query_params(kind=kind, now=now()),
            )
            return int(rows[0]) if rows else 0

        return {kind: await count(kind) for kind in KINDS}

    async def forget(self, person: PersonKey) -> int:
        ids = await self.db.query(
            "quarantine",
            "SELECT VALUE c.id FROM c WHERE c.tenant_id = @t AND c.user_key = @u",
            query_params(t=person.tenant_id, u=person.user_key),
        )
        for doc_id in ids:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.db.containers["quarantine"].delete_item(doc_id, partition_key=doc_id)
        return len(ids)

    async def remove(self, kind: str, record_id: str) -> bool:
        doc_id = quarantine_doc_id(kind, record_id)
        try:
            await self.db.containers["quarantine"].delete_item(doc_id, partition_key=doc_id)
        except CosmosResourceNotFoundError:
            return False
        return True
