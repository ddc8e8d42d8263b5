"""The dispatcher: takes due deliveries from the outbox under a lease and sends them at Teams' pace.

Rate budget across processes: one dispatcher at a time holds the ``dispatcher`` lease in the store
and sends; the others stand by and take over when it stops renewing. The per-tenant rate is then
exact, which dividing the budget between a changing number of instances would not be. Each claimed
delivery also carries its own lease, so a message is sent twice only if its sender died mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from bot.delivery.messages import build_activity
from bot.delivery.pacing import ConversationPacer, TenantRateLimiter
from bot.delivery.policy import Verdict, backoff_seconds, judge
from bot.events import BotEvent, EventSink, NoEvents
from bot.model import Delivery, DeliveryStatus, Reference, ReferenceStatus, Surface, now
from bot.outbound import BotConnectorClient, ConnectorError
from bot.store.base import ConcurrencyConflict, Store
from bot.surfaces import TEAMS_CHANNEL

log = logging.getLogger(__name__)

LEADER_LEASE = "dispatcher"


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherSettings:
    rate_per_tenant: float = 50.0
    concurrency: int = 32
    max_attempts: int = 8
    lease_seconds: float = 30.0  # how long a claimed delivery is ours before another may take it
    leader_lease_seconds: float = 10.0
    poll_seconds: float = 0.5  # how often a dispatcher looks for work written by other processes
    cloud_service_url: str = "https://smba.trafficmanager.net/teams/"
    bot_id: str = ""  # "28:<app id>": used to open a chat when the person has none yet
    retention_seconds: float | None = None
    backoff_base_seconds: float = 1.0


class _Failure(Exception):
    def __init__(self, verdict: Verdict, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict
        self.retry_after = retry_after
        self.status = status


class Dispatcher:
    """Owns the send loop; ``notify()`` wakes it, ``watch(id)`` waits for a delivery to finish."""

    def __init__(
        self,
        store: Store,
        client: BotConnectorClient,
        settings: DispatcherSettings,
        *,
        events: EventSink | None = None,
    ) -> None:
        self._store = store
        self._client = client
        self.settings = settings
        self._events = events or NoEvents()
        self.owner = uuid.uuid4().hex
        self._limiter = TenantRateLimiter(settings.rate_per_tenant)
        self._pacer = ConversationPacer()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self._watchers: dict[str, list[asyncio.Future[Delivery]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.is_leader = False
        self.stats = {"sent": 0, "retried": 0, "failed": 0, "throttled": 0}

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dispatcher")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work, let sends in flight finish (up to the grace period), then cancel."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace_seconds)
            for task in pending:
                task.cancel()
        if self.is_leader:
            await self._store.release_lease(LEADER_LEASE, self.owner)

    def notify(self) -> None:
        self._wake.set()

    def watch(self, delivery_id: str) -> asyncio.Future[Delivery]:
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(delivery_id, []).append(future)
        return future

    def unwatch(self, delivery_id: str, future: asyncio.Future[Delivery]) -> None:
        futures = self._watchers.get(delivery_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._watchers.pop(delivery_id, None)

    # ---- main loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        last_renewal = 0.0
        while not self._stopping:
            try:
                if time.monotonic() - last_renewal > self.settings.leader_lease_seconds / 3:
                    self.is_leader = await self._store.acquire_lease(
                        LEADER_LEASE, self.owner, self.settings.leader_lease_seconds
                    )
                    last_renewal = time.monotonic()
                if not self.is_leader:
                    await self._sleep(self.settings.leader_lease_seconds / 3)
                    continue
                await self._claim_and_send()
            except Exception:
                log.exception("dispatcher loop error; retrying shortly")
                await self._sleep(1.0)

    async def _claim_and_send(self) -> None:
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return
        self._wake.clear()
        batch = await self._store.claim_due(self.owner, now(), min(free, 100), self.settings.lease_seconds)
        for delivery in batch:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if batch:
            return
        next_due = await self._store.next_due_at()
        timeout = self.settings.poll_seconds
        if next_due is not None:
            timeout = min(timeout, max(0.0, next_due - now()))
        await self._sleep(timeout)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # ---- one delivery -----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._attempt(delivery)
        except Exception:
            log.exception("delivery %s: unexpected error; it will be retried", delivery.id)
            await self._finish(delivery, retry_in=backoff_seconds(delivery.attempts + 1, None))

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            ref = await self._target(delivery)
            delay = self._pacer.delay(ref.conversation_id)
            if delay > 0:
                # Over the conversation's budget: give the slot back and come back when it fits.
                await self._finish(delivery, retry_in=delay, counts_as_attempt=False)
                return
            await self._limiter.acquire(ref.tenant_id)
            self._pacer.record(ref.conversation_id)
            delivery.attempts += 1
            delivery.conversation_id = ref.conversation_id
            delivery.service_url = ref.service_url
            activity = build_activity(
                delivery.content,
                bot_id=ref.bot_id,
                user_id=ref.user_id,
                conversation_id=ref.conversation_id,
                tenant_id=ref.tenant_id,
            )
            try:
                delivery.message_id = await self._client.send(ref.service_url, ref.conversation_id, activity)
            except ConnectorError as exc:
                raise _Failure(judge(exc), exc.retry_after, exc.status) from exc
        except _Failure as failure:
            await self._failed(delivery, failure)
            return
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now()
        delivery.error = None
        self.stats["sent"] += 1
        await self._finish(delivery)
        if ref.failures:
            await self._store.update_reference(ref.tenant_id, ref.user_key, ref.surface, _clear_failures)

    async def _failed(self, delivery: Delivery, failure: _Failure) -> None:
        verdict = failure.verdict
        if failure.status == 429:
            # Pacing should prevent this; when Teams still says 429, every send to the tenant waits.
            self.stats["throttled"] += 1
            self._limiter.pause(delivery.tenant_id, failure.retry_after or 1.0)
        if verdict.retry and delivery.attempts < self.settings.max_attempts:
            self.stats["retried"] += 1
            delay = backoff_seconds(delivery.attempts, failure.retry_after, base=self.settings.backoff_base_seconds)
            await self._finish(delivery, retry_in=delay)
            return
        message = verdict.message
        if verdict.retry:
            message = f"{verdict.message.removesuffix('; the message will be retried.')}; gave up after {delivery.attempts} attempts."
        delivery.status = DeliveryStatus.FAILED
        delivery.error = {"code": verdict.error_code, "message": message}
        self.stats["failed"] += 1
        await self._finish(delivery)
        if verdict.reference_status is not None:
            await self._mark_reference(delivery, verdict)
        await self._events.publish(
            BotEvent.DELIVERY_FAILED,
            delivery.tenant_id,
            {
                "id": delivery.id,
                "recipient": delivery.recipient,
                "broadcastId": delivery.broadcast_id,
                "error": delivery.error,
            },
        )

    async def _finish(
        self, delivery: Delivery, *, retry_in: float | None = None, counts_as_attempt: bool = True
    ) -> None:
        """Write the outcome back under our lease; a lost lease means another dispatcher took over."""
        if retry_in is not None:
            delivery.status = DeliveryStatus.SCHEDULED if delivery.deliver_at else DeliveryStatus.QUEUED
            delivery.not_before = now() + retry_in
        if delivery.is_final and self.settings.retention_seconds:
            delivery.expires_at = now() + self.settings.retention_seconds
        delivery.lease_owner = None
        delivery.lease_until = None
        delivery.updated_at = now()
        try:
            stored = await self._store.write_delivery(delivery, delivery.etag or "")
        except ConcurrencyConflict:
            log.warning("delivery %s: lease lost before the outcome was written", delivery.id)
            return
        if stored.is_final:
            for future in self._watchers.pop(stored.id, []):
                if not future.done():
                    future.set_result(stored)
        elif retry_in is not None:
            self._wake.set()

    # ---- target conversation ----------------------------------------------------------------
    async def _target(self, delivery: Delivery) -> Reference:
        """The person's Teams chat as stored now (a newer service URL wins); opened if missing."""
        ref = await self._store.get_reference(delivery.tenant_id, delivery.user_key, delivery.surface)
        if ref is None:
            ref = await self._open_chat(delivery)
        if ref.opted_out:
            raise _Failure(Verdict(False, "RecipientOptedOut", "The person turned notifications off (typed 'stop')."))
        if ref.status != ReferenceStatus.ACTIVE:
            raise _Failure(Verdict(False, "RecipientUnreachable", f"The person's chat with the bot is {ref.status}."))
        return ref

    async def _open_chat(self, delivery: Delivery) -> Reference:
        """Create the 1:1 Teams chat from what other surfaces told us about the person."""
        siblings = await self._store.person_references(delivery.tenant_id, delivery.user_key)
        if not siblings or delivery.surface != Surface.TEAMS:
            raise _Failure(Verdict(False, "RecipientNotFound", "The bot has no conversation with this person."))
        if any(s.opted_out for s in siblings):
            raise _Failure(Verdict(False, "RecipientOptedOut", "The person turned notifications off (typed 'stop')."))
        source = max(siblings, key=lambda r: (r.channel_id == TEAMS_CHANNEL, r.last_seen))
        service_url = (
            source.service_url
            if source.channel_id == TEAMS_CHANNEL
            else await self._store.tenant_service_url(delivery.tenant_id, TEAMS_CHANNEL)
        ) or self.settings.cloud_service_url
        bot_id = source.bot_id if source.channel_id == TEAMS_CHANNEL else (self.settings.bot_id or source.bot_id)
        member_id = source.user_id if source.user_id.startswith("29:") else (source.aad_object_id or source.user_id)
        try:
            conversation_id = await self._client.create_conversation(
                service_url, bot_id=bot_id, user_id=member_id, tenant_id=delivery.tenant_id
            )
        except ConnectorError as exc:
            raise _Failure(judge(exc), exc.retry_after, exc.status) from exc
        at = now()
        chat = Reference(
            tenant_id=delivery.tenant_id,
            user_key=delivery.user_key,
            surface=Surface.TEAMS,
            conversation_id=conversation_id,
            service_url=service_url,
            channel_id=TEAMS_CHANNEL,
            user_id=member_id,
            bot_id=bot_id,
            aad_object_id=source.aad_object_id,
            bot_name=source.bot_name,
            name=source.name,
            upn=source.upn,
            email=source.email,
            locale=source.locale,
            timezone=source.timezone,
            conversation_type="personal",
            last_seen=source.last_seen,
            created_at=at,
            expires_at=source.expires_at,
        )

        def create(current: Reference | None) -> Reference | None:
            return chat if current is None else None

        stored = await self._store.update_reference(delivery.tenant_id, delivery.user_key, Surface.TEAMS, create)
        return stored or chat

    async def _mark_reference(self, delivery: Delivery, verdict: Verdict) -> None:
        def mark(current: Reference | None) -> Reference | None:
            if current is None:
                return None
            current.status = verdict.reference_status or current.status
            current.failures += 1
            current.last_error = verdict.message
            return current

        await self._store.update_reference(delivery.tenant_id, delivery.user_key, delivery.surface, mark)


def _clear_failures(current: Reference | None) -> Reference | None:
    if current is None or not current.failures:
        return None
    current.failures = 0
    current.last_error = None
    return current
