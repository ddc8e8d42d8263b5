"""In-memory subscriptions and webhook notifications."""

from __future__ import annotations

from teams_proactive.bot.model import Notification, Subscription
from teams_proactive.bot.store.base.subscriptions import Subscriptions
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemorySubscriptions(Subscriptions):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db

    async def create(self, subscription: Subscription) -> Subscription:
        return self.db.create(self.db.subscriptions, subscription.id, subscription)

    async def get(self, subscription_id: str) -> Subscription | None:
        return self.db.visible(self.db.subscriptions.get(subscription_id))

    async def delete(self, subscription_id: str) -> bool:
        return self.db.subscriptions.pop(subscription_id, None) is not None

    async def list_all(self, event: str | None = None) -> list[Subscription]:
        return [s.copy() for s in self.db.subscriptions.values() if not event or s.event == event]

    # ---- notifications ----------------------------------------------------------------------
    async def create_notifications(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self.db.create(self.db.notifications, notification.id, notification)

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        claimed = []
        for stored in list(self.db.notifications.values()):
            n = self.db.visible(stored)
            if n is None or not n.is_due(at):
                continue
            n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
            claimed.append(self.db.stored(self.db.notifications, n.id, n))
            if len(claimed) == limit:
                break
        return claimed

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        return self.db.replace(self.db.notifications, notification.id, notification, etag)

    async def delete_notification(self, notification_id: str) -> None:
        self.db.notifications.pop(notification_id, None)

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        doomed = [n.id for n in self.db.notifications.values() if (n.tenant_id, n.user_key) == (tenant_id, user_key)]
        for notification_id in doomed:
            del self.db.notifications[notification_id]
        return len(doomed)
