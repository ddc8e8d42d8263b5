"""Webhook triggers: subscriptions kept in the store, events POSTed to each subscriber's callback URL.

``WebhookSink`` is the runtime's ``EventSink``. ``publish`` is called inside a bot turn (or by the
dispatcher) on the bot loop: it writes one ``Notification`` per subscriber to the store (the callback
outbox) and wakes the relay, so a slow flow never slows a turn and a process that stops loses no
event. The relay, in every process, claims due notifications under a lease and POSTs them; a
callback is retried with backoff on network errors, timeouts, 408, 429 and 5xx (honouring
Retry-After), each retry rescheduled in the store; a 410 Gone means the flow was deleted or turned
off, and the subscription is removed. Delivery is at least once: a process killed mid-POST leaves
the event to be posted again when its lease lapses, with the same ``eventId``.

Callback URLs carry a signature (Power Automate's ``sig=`` query), so they are never logged; the
relay reads them from the subscription at send time (an Unsubscribe also stops pending events).
Where a callback may go is ``teams_proactive.bot.callback_guard``'s policy, applied at Subscribe and on every POST.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from teams_proactive.bot import errors
from teams_proactive.bot.callback_guard import CallbackClient, CallbackPolicy, CallbackRefused, check_callback_url
from teams_proactive.bot.delivery.metrics import CALLBACKS
from teams_proactive.bot.delivery.policy import backoff_seconds
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.events import BotEvent
from teams_proactive.bot.model import Notification, Subscription, now
from teams_proactive.bot.outbound import parse_retry_after
from teams_proactive.bot.quarantine import FailureCounter, isolate
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, Store
from teams_proactive.bot.unreadable import reason_of

log = logging.getLogger(__name__)

EVENTS = tuple(str(e) for e in BotEvent)
ANY_EVENT = "any"  # a subscription to every event
# Events only their own trigger hears: a broadcast to 25,000 people raises as many reads, which would
# flood a flow that subscribed to "any" before the event existed.
EXPLICIT_ONLY_EVENTS = frozenset({str(BotEvent.MESSAGE_READ)})
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
GONE = 410

# A subscription kind whose notifications get their body when posted: the body to post, a time
# (epoch seconds) to look again, or None to drop the notification (see ``WebhookSink.prepare``).
# Such a subscription is one-shot: once a prepared body is delivered (or given up on) it is removed.
Preparer = Callable[[Notification], Awaitable[dict[str, Any] | float | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    max_attempts: int = 12  # with the backoff below: retried for 12 to 24 minutes in all
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: float = 30.0
    max_concurrent: int = 64  # callbacks in flight at once (the rest wait their turn)
    shutdown_grace_seconds: float = 5.0
    # A claimed event is ours this long: longer than a call can take, or it would be posted twice.
    lease_seconds: float = 60.0
    poll_seconds: float = 10.0  # how soon a relay notices events left by a process that stopped
    max_age_seconds: float = 86400.0  # an event not posted within a day is dropped


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- subscriptions (what the Subscribe / Unsubscribe operations do) ---------------------------
def check_notification_url(url: str, policy: CallbackPolicy, target: str = "notificationUrl") -> None:
    """The callback policy as a maker-facing 400 (also for webhook actions' callback URLs)."""
    try:
        check_callback_url(url, policy)
    except CallbackRefused as exc:
        raise errors.Rejected("ValidationError", exc.message, target) from exc


async def subscribe(
    store: Store,
    caller: Caller,
    *,
    event: str,
    callback_url: str,
    tenant_id: str | None = None,
    policy: CallbackPolicy | None = None,
    card_type: str | None = None,
) -> Subscription:
    """Register a callback for ``event`` (or ``any``), limited to the caller's tenant when the key is."""
    policy = policy or CallbackPolicy()
    if event not in EVENTS and event != ANY_EVENT:
        raise errors.Rejected("ValidationError", f"Unknown event '{event}'.", "event")
    check_notification_url(callback_url, policy)
    if caller.tenant_id and tenant_id and tenant_id != caller.tenant_id:
        raise errors.Rejected("Forbidden", "This API key is limited to another tenant.", "tenantId")
    subscription = Subscription(
        id=uuid.uuid4().hex,
        owner=caller.key_id,
        event=event,
        callback_url=callback_url,
        tenant_id=tenant_id or caller.tenant_id,
        card_type=card_type or None,
    )
    # A cap per key, so one key cannot make every event fan out to thousands of callbacks. Two
    # Subscribe calls racing may pass it together: it bounds abuse, it is not an exact quota.
    # Only triggers count: a waiting card's one-shot callback (SendCardAndWait) is not a trigger, and a key
    # may have many approvals waiting for weeks.
    triggers = (*EVENTS, ANY_EVENT)
    owned = sum(1 for s in await store.subscriptions.list_all() if s.owner == subscription.owner and s.event in triggers)
    if owned >= policy.max_subscriptions_per_key:
        raise errors.Rejected(
            "SubscriptionLimitReached",
            f"This API key already has {owned} trigger subscriptions, the most allowed"
            f" (MAX_SUBSCRIPTIONS_PER_KEY={policy.max_subscriptions_per_key}). Turn off or delete flows"
            " that no longer need the trigger, or use another key.",
            "notificationUrl",
        )
    stored = await store.subscriptions.create(subscription)
    log.info("subscription %s created for %s (owner %s)", stored.id, event, caller.key_id)
    return stored


async def unsubscribe(store: Store, caller: Caller, subscription_id: str) -> None:
    """Remove a subscription: its owner (by key id), or an admin key of the same tenant (an admin key
    limited to a tenant cannot touch a subscription of another tenant, nor an unrestricted one).
    Anyone else gets NotFound, as for an id that does not exist."""
    subscription = await store.subscriptions.get(subscription_id)
    if subscription is None or not may_manage(caller, subscription):
        raise errors.Rejected("NotFound", f"No subscription with id '{subscription_id}'.", "id")
    await store.subscriptions.delete(subscription_id)
    log.info("subscription %s removed by %s", subscription_id, caller.key_id)


def may_manage(caller: Caller, subscription: Subscription) -> bool:
    if caller.owns(subscription.owner, subscription.tenant_id):
        return True
    return "admin" in caller.scopes and caller.can_see(subscription.tenant_id)


# ---- the event sink and its relay ------------------------------------------------------------
class EventOutbox:
    """Writes bot events to the callback outbox (an ``EventSink``) and posts none of them: the relay
    of any process on the same store does (``WebhookSink``). The middleware inside another bot uses
    this one; the service beside it posts."""

    def __init__(self, store: Store, settings: WebhookSettings | None = None) -> None:
        self._store = store
        self.settings = settings or WebhookSettings()

    def _written(self) -> None:
        """Called after events were written (the relay wakes up)."""

    async def publish(
        self, event: BotEvent, tenant_id: str | None, payload: dict[str, Any], person: PersonKey | None = None
    ) -> int:
        name = str(event)
        subscriptions = await self._store.subscriptions.list_all(name)
        if name not in EXPLICIT_ONLY_EVENTS:
            subscriptions += await self._store.subscriptions.list_all(ANY_EVENT)
        # A subscription limited to a tenant hears only that tenant; an unrestricted one hears all.
        # One limited to a card type (OnCardSubmitted) hears only cards sent with that type.
        targets = [
            s for s in subscriptions
            if (s.tenant_id is None or s.tenant_id == tenant_id)
            and (s.card_type is None or s.card_type == payload.get("cardType"))
        ]  # fmt: skip
        if not targets:
            return 0
        at = now()
        notifications = []
        for subscription in targets:
            event_id = uuid.uuid4().hex
            body = {
                "event": name,
                "eventId": event_id,
                "subscriptionId": subscription.id,
                "occurredAt": iso(at),
                "tenantId": tenant_id,
                **payload,
            }
            notifications.append(
                Notification(
                    id=event_id,
                    subscription_id=subscription.id,
                    body=body,
                    tenant_id=person.tenant_id if person else tenant_id,
                    user_key=person.user_key if person else None,
                    not_before=at,
                    created_at=at,
                    expires_at=at + self.settings.max_age_seconds,
                )
            )
        await self._store.subscriptions.create_notifications(notifications)
        self._written()
        return len(targets)


class WebhookSink(EventOutbox):
    """Writes bot events to the callback outbox and posts them to subscribers (an ``EventSink``)."""

    def __init__(self, store: Store, client: CallbackClient, settings: WebhookSettings | None = None) -> None:
        super().__init__(store, settings)
        self._client = client
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._retries: list[float] = []  # heap: when the retries this relay scheduled fall due
        self._failures = FailureCounter()  # an event that keeps raising goes to quarantine
        self._closing = False
        self._preparers: dict[str, Preparer] = {}

    def prepare(self, event: str, preparer: Preparer) -> None:
        """Notifications of subscriptions to ``event`` get their body from ``preparer`` at send time
        (card-and-wait: the outcome of the card as it stands when its callback is posted)."""
        self._preparers[event] = preparer

    def wake(self) -> None:
        """Look for due notifications now (one was just written or made due)."""
        self._wake.set()

    def _written(self) -> None:
        self._wake.set()

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start posting (on the bot loop): events written by this process and by any other."""
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="webhook-relay")

    async def close(self) -> None:
        """Stop claiming; give callbacks in flight a short grace period, then cancel them (their
        leases lapse and whichever relay runs next posts them again)."""
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._claim_and_post()
            except Exception:
                log.exception("webhook relay error; retrying shortly")
                await self._sleep(1.0)

    async def _claim_and_post(self) -> None:
        free = self.settings.max_concurrent - len(self._tasks)
        if free <= 0:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), timeout=self.settings.poll_seconds)
            return
        self._wake.clear()
        at = now()
        while self._retries and self._retries[0] <= at:
            heapq.heappop(self._retries)  # due now: this claim takes them
        batch = await self._store.subscriptions.claim_notifications(self.owner, at, free, self.settings.lease_seconds)
        for notification in batch:
            task = asyncio.get_running_loop().create_task(self._deliver(notification), name="webhook")
            self._tasks.add(task)
            task.add_done_callback(self._done)
        if len(batch) == free:
            return  # there may be more waiting
        timeout = self.settings.poll_seconds  # events written by other processes show up this late
        if self._retries:
            timeout = min(timeout, max(0.0, self._retries[0] - at))
        await self._sleep(timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # ---- one notification -------------------------------------------------------------------
    async def _deliver(self, notification: Notification) -> None:
        try:
            await self._attempt(notification)
            self._failures.succeeded(notification.id)
        except Exception as exc:
            if self._failures.failed(notification.id, exc):
                log.error(
                    "notification %s: unexpected error again (%s); moved to quarantine", notification.id, reason_of(exc)
                )
                if await isolate(self._store, "notification", notification.id, exc):
                    self._failures.succeeded(notification.id)
                return
            # The lease lapses and the notification is claimed again: nothing is lost.
            log.error("notification %s: unexpected error (%s); it will be retried", notification.id, reason_of(exc))
            log.debug("notification %s: unexpected error", notification.id, exc_info=exc)

    async def _attempt(self, notification: Notification) -> None:
        subscription = await self._store.subscriptions.get(notification.subscription_id)
        if subscription is None:
            await self._store.subscriptions.delete_notification(notification.id)  # unsubscribed meanwhile
            return
        preparer = self._preparers.get(subscription.event)
        if preparer is not None:
            prepared = await preparer(notification)
            if prepared is None:
                await self._store.subscriptions.delete_notification(notification.id)
                return
            if isinstance(prepared, float | int):
                await self._reschedule(notification, float(prepared))
                return
            notification.body = prepared
        data = json.dumps(notification.body, ensure_ascii=False).encode("utf-8")
        status, retry_after = await self._post(subscription.callback_url, data)
        notification.attempts += 1
        if 200 <= status < 300:
            CALLBACKS.labels("delivered").inc()
            await self._store.subscriptions.delete_notification(notification.id)
            if preparer is not None:
                await self._store.subscriptions.delete(subscription.id)  # a final answer is posted once
            return
        if status == GONE:
            # The flow was deleted or turned off: Power Automate's way of unsubscribing.
            CALLBACKS.labels("gone").inc()
            await self._store.subscriptions.delete(subscription.id)
            await self._store.subscriptions.delete_notification(notification.id)
            log.info("subscription %s removed: its callback answered 410 Gone", subscription.id)
            return
        retryable = status == 0 or status in RETRYABLE
        if not retryable or notification.attempts >= self.settings.max_attempts:
            CALLBACKS.labels("failed").inc()
            await self._store.subscriptions.delete_notification(notification.id)
            if preparer is not None:
                await self._store.subscriptions.delete(subscription.id)
            if retryable:
                log.warning(
                    "subscription %s: event %s dropped after %d attempts (last answer %s)",
                    subscription.id, notification.body.get("event"), notification.attempts, status or "none",
                )  # fmt: skip
            else:
                log.warning("subscription %s: callback refused the event (%s); not retried", subscription.id, status)
            return
        CALLBACKS.labels("retried").inc()
        delay = backoff_seconds(
            notification.attempts,
            retry_after,
            base=self.settings.backoff_base_seconds,
            cap=self.settings.backoff_max_seconds,
        )
        log.info(
            "subscription %s: callback answered %s; retry %d in %.1fs",
            subscription.id, status or "nothing", notification.attempts, delay,
        )  # fmt: skip
        await self._reschedule(notification, now() + delay)

    async def _reschedule(self, notification: Notification, at: float) -> None:
        notification.not_before = at
        notification.lease_owner = notification.lease_until = None
        notification.updated_at = now()
        try:
            await self._store.subscriptions.write_notification(notification, notification.etag or "")
        except ConcurrencyConflict:
            # Our lease lapsed mid-call and another relay took it over: it carries on from here.
            log.info("notification %s: taken over by another relay", notification.id)
            return
        heapq.heappush(self._retries, notification.not_before)
        self._wake.set()

    async def _post(self, url: str, data: bytes) -> tuple[int, float | None]:
        """One callback POST: (status, Retry-After seconds); status 0 means no answer."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        # The guarded client: policy on the connected address, no redirects (a 3xx is a refusal), 64 KB read.
        status, headers, _ = await self._client.post(
            url, data, headers={"Content-Type": "application/json"}, limits=timeout
        )
        return status, parse_retry_after(headers.get("Retry-After")) if status else None
