"""Cosmos DB outbox: deliveries, the dispatcher's claims (conditional replaces on a due-ranked query), due times and counts."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from teams_proactive.bot.model import Delivery, DeliveryStatus, now
from teams_proactive.bot.store.base import MAX_CONFLICT_RETRIES, ConcurrencyConflict, Page, PersonKey, ReadTally
from teams_proactive.bot.store.base.outbox import Outbox
from teams_proactive.bot.store.cosmos.database import (
    ALL_STATUSES,
    BROADCAST_LANE,
    CONCURRENT_WRITES,
    LIVE_FILTER,
    PENDING,
    CosmosDatabase,
    query_params,
)
from teams_proactive.bot.unreadable import decode_each


class CosmosOutbox(Outbox):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    def _delivery_doc(self, d: Delivery) -> dict[str, Any]:
        doc = d.to_doc()
        # One number the outbox query filters and sorts on: when the delivery is next due, whether it
        # waits for its first attempt (not_before) or for a claimer's lease to lapse (lease_until).
        if d.status in PENDING:
            doc["due_at"] = d.not_before
        elif d.status == DeliveryStatus.SENDING:
            doc["due_at"] = d.lease_until or 0.0
        if "due_at" in doc:
            # Broadcast entries sort in a second lane, far in the future, so one index range query
            # hands out single messages first: a flow's SendMessage never queues behind a broadcast.
            doc["due_rank"] = doc["due_at"] + (BROADCAST_LANE if d.broadcast_id else 0.0)
        return self.db.with_ttl(doc, d.expires_at)

    @staticmethod
    def _delivery(doc: dict[str, Any]) -> Delivery:
        return Delivery.from_doc(doc, etag=doc["_etag"])

    async def _readable(self, docs: list[dict[str, Any]]) -> list[Delivery]:
        """The documents decoded; one that cannot be is moved to quarantine and left out (decoded
        row by row only when the batch fails)."""
        try:
            return [self._delivery(doc) for doc in docs]
        except Exception:
            decoded, unreadable = decode_each(((str(doc.get("id")), doc) for doc in docs), self._delivery, "delivery")
            await self.db.set_aside(unreadable, {str(doc.get("id")): doc for doc in docs})
            return decoded

    async def create(self, delivery: Delivery) -> tuple[Delivery, bool]:
        doc = self._delivery_doc(delivery)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                stored = await self.db.create("deliveries", doc, delivery.id)
            except ConcurrencyConflict:
                existing = await self.db.read_live("deliveries", delivery.id, delivery.id)
                if existing is None:
                    continue  # it expired or vanished in between: try creating again
                return self._delivery(existing), False
            result = delivery.copy()
            result.etag = stored["_etag"]
            return result, True
        raise ConcurrencyConflict(delivery.id)

    async def create_many(self, deliveries: list[Delivery]) -> int:
        # Batches are per partition (and each delivery is its own), so these are single creates,
        # a bounded number in flight at once.
        slots = asyncio.Semaphore(CONCURRENT_WRITES)

        async def create(d: Delivery) -> bool:
            async with slots:
                return (await self.create(d))[1]

        return sum(await asyncio.gather(*(create(d) for d in deliveries)))

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self.db.read_live("deliveries", delivery_id, delivery_id)
        found = await self._readable([doc]) if doc is not None else []
        return found[0] if found else None

    async def write(self, delivery: Delivery, etag: str) -> Delivery:
        stored = await self.db.replace("deliveries", self._delivery_doc(delivery), etag)
        result = delivery.copy()
        result.etag = stored["_etag"]
        return result

    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        docs = await self.db.query(
            "deliveries",
            "SELECT TOP @n * FROM c WHERE (c.due_rank <= @at OR (c.due_rank >= @lane AND c.due_rank <= @lane_at))"
            f" AND {LIVE_FILTER} ORDER BY c.due_rank",
            query_params(n=limit, at=at, lane=BROADCAST_LANE, lane_at=BROADCAST_LANE + at, now=at),
        )

        readable = await self._readable(docs)

        async def claim(d: Delivery) -> Delivery | None:
            etag = d.etag
            assert etag is not None
            d.status = DeliveryStatus.SENDING
            d.lease_owner = owner
            d.lease_until = at + lease_seconds
            d.updated_at = at
            try:
                return await self.write(d, etag)
            except ConcurrencyConflict:
                return None  # another claimer (or a status change) got there first

        claimed = await asyncio.gather(*(claim(d) for d in readable))
        return [d for d in claimed if d is not None]

    async def next_due_at(self) -> float | None:
        rows = await self.db.query(
            "deliveries",
            f"SELECT VALUE MIN(c.due_at) FROM c WHERE IS_DEFINED(c.due_at) AND {LIVE_FILTER}",
            query_params(now=now()),
        )
        values = [r for r in rows if isinstance(r, int | float)]
        return float(values[0]) if values else None

    async def count(self, broadcast_id: str) -> dict[str, int]:
        # One COUNT per status rather than GROUP BY: each is answered from the index, and GROUP BY
        # is not available on the local test server.
        async def count(status: str) -> int:
            rows = await self.db.query(
                "deliveries",
                f"SELECT VALUE COUNT(1) FROM c WHERE c.broadcast_id = @b AND c.status = @s AND {LIVE_FILTER}",
                query_params(b=broadcast_id, s=status, now=now()),
            )
            return int(rows[0]) if rows else 0

        counts = await asyncio.gather(*(count(s) for s in ALL_STATUSES))
        return {s: n for s, n in zip(ALL_STATUSES, counts, strict=True) if n}

    async def page(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]:
        sql = f"SELECT TOP @n * FROM c WHERE {LIVE_FILTER}"
        params: dict[str, Any] = {"n": limit + 1, "now": now()}
        if broadcast_id:
            sql += " AND c.broadcast_id = @b"
            params["b"] = broadcast_id
        if status:
            sql += " AND c.status = @s"
            params["s"] = status
        if person:
            sql += " AND c.tenant_id = @t AND c.user_key = @u"
            params.update(t=person.tenant_id, u=person.user_key)
        if token:
            sql += " AND c.id > @token"
            params["token"] = token
        docs = await self.db.query("deliveries", sql + " ORDER BY c.id", query_params(**params))
        items = await self._readable(docs[:limit])
        return Page(items, docs[limit - 1]["id"] if len(docs) > limit else None)

    async def count_install_outcomes(self, broadcast_id: str) -> dict[str, int]:
        # Only the deliveries that installed (or tried to) come back, one small field each; the local
        # test server has no GROUP BY, so they are counted here.
        outcomes = await self.db.query(
            "deliveries",
            "SELECT VALUE c.install_outcome FROM c WHERE c.broadcast_id = @b AND IS_DEFINED(c.install_outcome)"
            f" AND NOT IS_NULL(c.install_outcome) AND {LIVE_FILTER}",
            query_params(b=broadcast_id, now=now()),
        )
        return dict(collections.Counter(str(o) for o in outcomes if o))

    async def tally_reads(self, broadcast_id: str) -> ReadTally:
        # A COUNT for the delivered ones, and two small fields of only those read or answered, rather
        # than every delivery document: GetBroadcast asks on every call. IS_NUMBER is false for both
        # null and a field missing from a document written before it existed.
        where = f"c.broadcast_id = @b AND IS_NUMBER(c.delivered_at) AND {LIVE_FILTER}"
        params = query_params(b=broadcast_id, now=now())
        counted, rows = await asyncio.gather(
            self.db.query("deliveries", f"SELECT VALUE COUNT(1) FROM c WHERE {where}", params),
            self.db.query(
                "deliveries",
                f"SELECT c.read_at, c.responded_at FROM c WHERE {where}"
                " AND (IS_NUMBER(c.read_at) OR IS_NUMBER(c.responded_at))",
                params,
            ),
        )
        tally = ReadTally(int(counted[0]) if counted else 0, 0, [])
        for row in rows:
            times = [float(t) for t in (row.get("read_at"), row.get("responded_at")) if isinstance(t, int | float)]
            tally.answered += isinstance(row.get("responded_at"), int | float)
            tally.seen.append(min(times))
        return tally
