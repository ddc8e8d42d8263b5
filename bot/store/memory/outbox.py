"""In-memory outbox: deliveries, their claims and due times."""

from __future__ import annotations

import uuid

from teams_proactive.bot.model import Delivery, DeliveryStatus
from teams_proactive.bot.store.base import Page, PersonKey
from teams_proactive.bot.store.base.outbox import Outbox
from teams_proactive.bot.store.memory.database import PENDING, MemoryDatabase


class MemoryOutbox(Outbox):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def create(self, delivery: Delivery) -> tuple[Delivery, bool]:
        existing = self.db.visible(self.db.deliveries.get(delivery.id))  # an expired one counts as absent
        if existing is not None:
            return existing.copy(), False
        return self.db.stored(self.db.deliveries, delivery.id, delivery), True

    async def create_many(self, deliveries: list[Delivery]) -> int:
        created = 0
        for delivery in deliveries:
            if self.db.visible(self.db.deliveries.get(delivery.id)) is None:
                self.db.stored(self.db.deliveries, delivery.id, delivery)
                created += 1
        return created

    async def get(self, delivery_id: str) -> Delivery | None:
        return self.db.visible(self.db.deliveries.get(delivery_id))

    async def write(self, delivery: Delivery, etag: str) -> Delivery:
        return self.db.replace(self.db.deliveries, delivery.id, delivery, etag)

    async def claim_due(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Delivery]:
        claimed = []
        # Single messages first, as in the SQLite store, so broadcasts do not hold them up.
        ordered = sorted(self.db.deliveries.values(), key=lambda d: d.broadcast_id is not None)
        for d in ordered:
            if len(claimed) >= limit:
                break
            if d.expires_at is not None and d.expires_at <= at:
                continue
            due = d.status in PENDING and d.not_before <= at
            lapsed = d.status == DeliveryStatus.SENDING and (d.lease_until or 0) <= at
            if due or lapsed:
                d.status = DeliveryStatus.SENDING
                d.lease_owner = owner
                d.lease_until = at + lease_seconds
                d.updated_at = at
                d.etag = uuid.uuid4().hex
                claimed.append(d.copy())
        return claimed

    async def next_due_at(self) -> float | None:
        live = [d for d in self.db.deliveries.values() if self.db.visible(d) is not None]
        times = [d.not_before for d in live if d.status in PENDING]
        times += [d.lease_until or 0 for d in live if d.status == DeliveryStatus.SENDING]
        return min(times) if times else None

    async def count(self, broadcast_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.db.deliveries.values():
            if d.broadcast_id == broadcast_id and self.db.visible(d) is not None:
                counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    async def page(
        self,
        *,
        broadcast_id: str | None = None,
        status: str | None = None,
        person: PersonKey | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Delivery]:
        matching = sorted(
            (
                d
                for d in self.db.deliveries.values()
                if self.db.visible(d) is not None
                and (not broadcast_id or d.broadcast_id == broadcast_id)
                and (not status or d.status == status)
                and (not person or (d.tenant_id, d.user_key) == (person.tenant_id, person.user_key))
                and (not token or d.id > token)
            ),
            key=lambda d: d.id,
        )
        page = matching[:limit]
        return Page([d.copy() for d in page], page[-1].id if len(matching) > limit else None)
