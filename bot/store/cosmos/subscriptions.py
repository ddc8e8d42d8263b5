"""Cosmos DB subscriptions and webhook notifications."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from azure.cosmos.exceptions import CosmosResourceNotFoundError
from teams_proactive.bot.model import Notification, Subscription
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.subscriptions import Subscriptions
from teams_proactive.bot.store.cosmos.database import FORBIDDEN_ID_CHARS, LIVE_FILTER, CosmosDatabase, query_params
from teams_proactive.bot.unreadable import reason_of


class CosmosSubscriptions(Subscriptions):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db

    async def create(self, subscription: Subscription) -> Subscription:
        stored = await self.db.create("subscriptions", subscription.to_doc(), subscription.id)
        return Subscription.from_doc(stored, etag=stored["_etag"])

    async def get(self, subscription_id: str) -> Subscription | None:
        doc = await self.db.read_live("subscriptions", subscription_id, subscription_id)
        return Subscription.from_doc(doc, etag=doc["_etag"]) if doc is not None else None

    async def delete(self, subscription_id: str) -> bool:
        if FORBIDDEN_ID_CHARS.search(subscription_id):
            return False
        try:
            await self.db.containers["subscriptions"].delete_item(subscription_id, partition_key=subscription_id)
        except CosmosResourceNotFoundError:
            return False
        return True

    async def list_all(self, event: str | None = None) -> list[Subscription]:
        if event:
            docs = await self.db.query("subscriptions", "SELECT * FROM c WHERE c.event = @e", query_params(e=event))
        else:
            docs = await self.db.query("subscriptions", "SELECT * FROM c")
        return [Subscription.from_doc(d, etag=d["_etag"]) for d in docs]

    # ---- notifications ----------------------------------------------------------------------
    def _notification_doc(self, n: Notification) -> dict[str, Any]:
        doc = n.to_doc()
        # When it may be claimed, whether it waits for its next attempt or for a lease to lapse.
        doc["due"] = max(n.not_before, n.lease_until or 0.0)
        return self.db.with_ttl(doc, n.expires_at)

    async def create_notifications(self, notifications: list[Notification]) -> None:
        await asyncio.gather(*(self.db.create("notifications", self._notification_doc(n), n.id) for n in notifications))

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        docs = await self.db.query(
            "notifications",
            f"SELECT TOP @n * FROM c WHERE c.due <= @at AND {LIVE_FILTER} ORDER BY c.due",
            query_params(n=limit, at=at, now=at),
        )

        async def claim(doc: dict[str, Any]) -> Notification | None:
            try:
                n = Notification.from_doc(doc)
            except Exception as exc:  # unreadable: moved aside, the others are claimed
                await self.db.move_aside("notification", str(doc.get("id")), reason_of(exc), doc)
                return None
            n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
            try:
                return await self.write_notification(n, doc["_etag"])
            except ConcurrencyConflict:
                return None  # another relay claimed it first

        claimed = await asyncio.gather(*(claim(doc) for doc in docs))
        return [n for n in claimed if n is not None]

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        stored = await self.db.replace("notifications", self._notification_doc(notification), etag)
        result = notification.copy()
        result.etag = stored["_etag"]
        return result

    async def delete_notification(self, notification_id: str) -> None:
        with contextlib.suppress(CosmosResourceNotFoundError):
            await self.db.containers["notifications"].delete_item(notification_id, partition_key=notification_id)

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        docs = await self.db.query(
            "notifications",
            "SELECT c.id FROM c WHERE c.tenant_id = @t AND c.user_key = @u",
            query_params(t=tenant_id, u=user_key),
        )
        await asyncio.gather(*(self.delete_notification(doc["id"]) for doc in docs))
        return len(docs)
