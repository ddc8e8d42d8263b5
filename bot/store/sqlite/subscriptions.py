"""SQLite subscriptions and webhook notifications (claimed like deliveries)."""

from __future__ import annotations

import sqlite3
from typing import Any

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import Notification, Subscription
from teams_proactive.bot.store.base import ConcurrencyConflict
from teams_proactive.bot.store.base.subscriptions import Subscriptions
from teams_proactive.bot.store.sqlite.database import SqliteDatabase, make_etag
from teams_proactive.bot.unreadable import reason_of


class SqliteSubscriptions(Subscriptions):
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def create(self, subscription: Subscription) -> Subscription:
        return await self.db.create_doc("subscriptions", subscription, subscription.id, {"event": subscription.event})

    async def get(self, subscription_id: str) -> Subscription | None:
        return await self.db.get_doc("subscriptions", Subscription, subscription_id)

    async def delete(self, subscription_id: str) -> bool:
        def delete(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM subscriptions WHERE id=?", (subscription_id,)).rowcount == 1

        return await self.db.run(delete)

    async def list_all(self, event: str | None = None) -> list[Subscription]:
        sql, params = "SELECT etag, body FROM subscriptions", ()
        if event:
            sql, params = sql + " WHERE event=?", (event,)
        rows = await self.db.run(lambda c: c.execute(sql, params).fetchall())
        return [Subscription.from_doc(jsoncodec.loads(body), etag=etag) for etag, body in rows]

    # ---- notifications ----------------------------------------------------------------------
    @staticmethod
    def _notification_values(n: Notification, etag: str) -> tuple[Any, ...]:
        # ``due``: when it may be claimed, whether it waits for its next attempt or for a lease to lapse.
        due = max(n.not_before, n.lease_until or 0.0)
        return (due, n.tenant_id, n.user_key, n.expires_at, etag, jsoncodec.dumps(n.to_doc()), n.id)

    _UPDATE_NOTIFICATION = (
        "UPDATE notifications SET due=?, tenant_id=?, user_key=?, expires_at=?, etag=?, body=? WHERE id=?"
    )

    @staticmethod
    def _notification(row: Any) -> Notification:
        return Notification.from_doc(jsoncodec.loads(row[1]), etag=row[0])

    async def create_notifications(self, notifications: list[Notification]) -> None:
        values = [self._notification_values(n, make_etag()) for n in notifications]

        def insert(c: sqlite3.Connection) -> None:
            self.db.tx(
                c,
                lambda: c.executemany(
                    "INSERT INTO notifications (due, tenant_id, user_key, expires_at, etag, body, id)"
                    " VALUES (?,?,?,?,?,?,?)",
                    values,
                ),
            )

        await self.db.run(insert, inline=True, write=True)

    async def claim_notifications(self, owner: str, at: float, limit: int, lease_seconds: float) -> list[Notification]:
        def claim(c: sqlite3.Connection) -> list[Notification]:
            def take() -> list[Notification]:
                # Events past their last chance are dropped here: nothing else sweeps this table.
                c.execute("DELETE FROM notifications WHERE expires_at <= ?", (at,))
                rows = c.execute(
                    "SELECT etag, body, id FROM notifications WHERE due <= ? ORDER BY due LIMIT ?", (at, limit)
                ).fetchall()
                claimed = []
                for row in rows:
                    try:
                        n = self._notification(row)
                    except Exception as exc:  # unreadable: moved aside, the others are claimed
                        self.db.move_aside(c, "notification", row[2], reason_of(exc))
                        continue
                    n.lease_owner, n.lease_until, n.updated_at = owner, at + lease_seconds, at
                    n.etag = make_etag()
                    c.execute(self._UPDATE_NOTIFICATION, self._notification_values(n, n.etag))
                    claimed.append(n)
                return claimed

            return self.db.tx(c, take)

        return await self.db.run(claim, inline=True, write=True)

    async def write_notification(self, notification: Notification, etag: str) -> Notification:
        stored = notification.copy()
        stored.etag = make_etag()

        def write(c: sqlite3.Connection) -> None:
            cur = c.execute(
                self._UPDATE_NOTIFICATION + " AND etag=?", (*self._notification_values(stored, stored.etag), etag)
            )
            if cur.rowcount != 1:
                raise ConcurrencyConflict(notification.id)

        await self.db.run(write, inline=True, write=True)
        return stored

    async def delete_notification(self, notification_id: str) -> None:
        await self.db.run(
            lambda c: c.execute("DELETE FROM notifications WHERE id=?", (notification_id,)), inline=True, write=True
        )

    async def forget_notifications(self, tenant_id: str, user_key: str) -> int:
        def delete(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM notifications WHERE tenant_id=? AND user_key=?", (tenant_id, user_key)
            ).rowcount

        return await self.db.run(delete)
