"""Webhook triggers: subscriptions kept in the store, events POSTed to each subscriber's callback URL.

``WebhookSink`` is the runtime's ``EventSink``. ``publish`` is called inside a bot turn (or by the
dispatcher) on the bot loop; it only looks up the subscriptions and starts one background task per
callback, so a slow flow never slows a turn. Each callback is retried with backoff on network
errors, timeouts, 408, 429 and 5xx (honouring Retry-After); a 410 Gone means the flow was deleted
or turned off, and the subscription is removed. Callbacks in flight live in memory: a process that
stops abandons them (after a short grace period), which a trigger tolerates better than a duplicate.

Callback URLs carry a signature (Power Automate's ``sig=`` query), so they are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot import errors
from bot.delivery.policy import backoff_seconds
from bot.delivery.service import Caller
from bot.events import BotEvent
from bot.model import Subscription, now
from bot.outbound import parse_retry_after
from bot.store.base import Store

log = logging.getLogger(__name__)

EVENTS = tuple(str(e) for e in BotEvent)
ANY_EVENT = "any"  # a subscription to every event
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
GONE = 410


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    max_attempts: int = 6
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: float = 30.0
    max_concurrent: int = 64  # callbacks in flight at once (the rest wait their turn)
    shutdown_grace_seconds: float = 5.0


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- subscriptions (what the Subscribe / Unsubscribe operations do) ---------------------------
def check_callback_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.Rejected(
            "ValidationError", "The notification URL must be an absolute http(s) URL.", "notificationUrl"
        )


async def subscribe(
    store: Store, caller: Caller, *, event: str, callback_url: str, tenant_id: str | None = None
) -> Subscription:
    """Register a callback for ``event`` (or ``any``), limited to the caller's tenant when the key is."""
    if event not in EVENTS and event != ANY_EVENT:
        raise errors.Rejected("ValidationError", f"Unknown event '{event}'.", "event")
    check_callback_url(callback_url)
    if caller.tenant_id and tenant_id and tenant_id != caller.tenant_id:
        raise errors.Rejected("Forbidden", "This API key is limited to another tenant.", "tenantId")
    subscription = Subscription(
        id=uuid.uuid4().hex,
        owner=caller.name,
        event=event,
        callback_url=callback_url,
        tenant_id=tenant_id or caller.tenant_id,
    )
    stored = await store.create_subscription(subscription)
    log.info("subscription %s created for %s (owner %s)", stored.id, event, caller.name)
    return stored


async def unsubscribe(store: Store, caller: Caller, subscription_id: str) -> None:
    """Remove a subscription; only its owner (or an admin key) may, anyone else gets NotFound."""
    subscription = await store.get_subscription(subscription_id)
    if subscription is None or (subscription.owner != caller.name and "admin" not in caller.scopes):
        raise errors.Rejected("NotFound", f"No subscription with id '{subscription_id}'.", "id")
    await store.delete_subscription(subscription_id)
    log.info("subscription %s removed by %s", subscription_id, caller.name)


# ---- the event sink ---------------------------------------------------------------------------
class WebhookSink:
    """Posts bot events to subscribed callbacks (an ``EventSink``)."""

    def __init__(self, store: Store, session: aiohttp.ClientSession, settings: WebhookSettings | None = None) -> None:
        self._store = store
        self._session = session
        self.settings = settings or WebhookSettings()
        self._slots = asyncio.Semaphore(self.settings.max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = {"delivered": 0, "retried": 0, "failed": 0, "gone": 0}

    async def publish(self, event: BotEvent, tenant_id: str | None, payload: dict[str, Any]) -> int:
        if self._closing:
            return 0
        name = str(event)
        subscriptions = [*await self._store.list_subscriptions(name), *await self._store.list_subscriptions(ANY_EVENT)]
        # A subscription limited to a tenant hears only that tenant; an unrestricted one hears all.
        targets = [s for s in subscriptions if s.tenant_id is None or s.tenant_id == tenant_id]
        occurred = iso(now())
        for subscription in targets:
            body = {
                "event": name,
                "eventId": uuid.uuid4().hex,
                "subscriptionId": subscription.id,
                "occurredAt": occurred,
                "tenantId": tenant_id,
                **payload,
            }
            task = asyncio.get_running_loop().create_task(self._deliver(subscription, body), name="webhook")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(targets)

    async def close(self) -> None:
        """Stop taking events; give callbacks in flight a short grace period, then cancel them."""
        self._closing = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

    async def _deliver(self, subscription: Subscription, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        for attempt in range(1, self.settings.max_attempts + 1):
            status, retry_after = await self._post(subscription.callback_url, data)
            if 200 <= status < 300:
                self.stats["delivered"] += 1
                return
            if status == GONE:
                # The flow was deleted or turned off: Power Automate's way of unsubscribing.
                self.stats["gone"] += 1
                await self._store.delete_subscription(subscription.id)
                log.info("subscription %s removed: its callback answered 410 Gone", subscription.id)
                return
            if status != 0 and status not in RETRYABLE:
                self.stats["failed"] += 1
                log.warning("subscription %s: callback refused the event (%s); not retried", subscription.id, status)
                return
            if attempt == self.settings.max_attempts or self._closing:
                break
            self.stats["retried"] += 1
            delay = backoff_seconds(
                attempt, retry_after, base=self.settings.backoff_base_seconds, cap=self.settings.backoff_max_seconds
            )
            log.info(
                "subscription %s: callback answered %s; retry %d in %.1fs", subscription.id, status, attempt, delay
            )
            await asyncio.sleep(delay)
        self.stats["failed"] += 1
        log.warning("subscription %s: event %s dropped after %d attempts", subscription.id, body["event"], attempt)

    async def _post(self, url: str, data: bytes) -> tuple[int, float | None]:
        """One callback POST: (status, Retry-After seconds); status 0 means no answer."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        async with self._slots:
            try:
                async with self._session.post(
                    url, data=data, headers={"Content-Type": "application/json"}, timeout=timeout
                ) as response:
                    await response.read()
                    return response.status, parse_retry_after(response.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.info("callback not reached (%s)", type(exc).__name__)
                return 0, None
