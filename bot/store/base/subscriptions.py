"""The subscriptions repository: webhook subscriptions and the notifications waiting to be posted to them."""

from __future__ import annotations

import abc

from teams_proactive.bot.model import Notification, Subscription


class Subscriptions(abc.ABC):
    """Subscriptions by id, and the webhook callback outbox (notifications)."""

    @abc.abstractmethod
    async def create(self, subscription: Subscription) -> Subscription: ...

    @abc.abstractmethod
    async def get(self, subscription_id: str) -> Subscription | None: ...

    @abc.abstractmethod
    async def delete(self, subscription_id: str) -> bool: ...

    @abc.abstractmethod
    async def list_all(self, event: str | None = None) -> list[Subscription]: ...

    # ---- notifications (the webhook callback outbox) ---------------------------------------
    @abc.abstractmethod
    async def create_notifications(self, notifications: list[Notification]) -> None:
        """Insert new notifications (ids are fresh event ids)."""

    @abc.abstractmethod
    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        """Take up to ``limit`` notifications that are due and not leased (or whose lease ran out),
        under ``owner``'s lease. Two claimers never get the same one."""

    @abc.abstractmethod
    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        """Conditionally replace a notification (reschedule after a failed callback)."""

    @abc.abstractmethod
    async def delete_notification(self, notification_id: str) -> None:
        """Remove a notification that is done with (posted, refused, or given up on)."""

    @abc.abstractmethod
    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        """Remove every pending notification about one person; returns how many."""
