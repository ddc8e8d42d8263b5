"""The dispatcher: takes due deliveries from the outbox under a lease and sends them at Teams' pace.

Rate budget across processes: one dispatcher at a time holds the ``dispatcher`` lease in the store
and sends; the others stand by and take over when it stops renewing. The per-tenant rate is then
exact, which dividing the budget between a changing number of instances would not be. Each claimed
delivery also carries its own lease, so a message is sent twice only if its sender died mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot.delivery.budget import TeamsBudget
from teams_proactive.bot.delivery.messages import build_activity
from teams_proactive.bot.delivery.metrics import DELIVERED, FAILED, FAILURES, RETRIES, SEND_LATENCY, THROTTLED
from teams_proactive.bot.delivery.operations import OPERATION_KINDS, OperationContext, run_operation
from teams_proactive.bot.delivery.outcomes import OutcomeWriter
from teams_proactive.bot.delivery.pacing import ConversationPacer, TenantRateLimiter
from teams_proactive.bot.delivery.policy import Verdict, backoff_seconds, judge, mark_reference
from teams_proactive.bot.events import BotEvent, EventSink, NoEvents
from teams_proactive.bot.graph.install import UNRESOLVED, Installer, InstallFailed
from teams_proactive.bot.model import Delivery, DeliveryStatus, Reference, ReferenceStatus, Surface, now
from teams_proactive.bot.outbound import BotConnectorClient, ConnectorError
from teams_proactive.bot.quarantine import FailureCounter, isolate
from teams_proactive.bot.store.base import ConcurrencyConflict, PersonKey, Store
from teams_proactive.bot.surfaces import TEAMS_CHANNEL
from teams_proactive.bot.unreadable import reason_of

log = logging.getLogger(__name__)

LEADER_LEASE = "dispatcher"
# Where the leader keeps its pacing (tenant schedules, pauses, recent sends per chat) for the next one.
PACING_STATE = "dispatcher-pacing"
CARD_WAIT_KIND = "cardWait"  # bot.cardwait.KIND (that module depends on this one)
LONGEST_RUN_SECONDS = 30 * 86400.0  # Power Automate's longest flow run: a card waits at most this long


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherSettings:
    rate_per_tenant: float = 50.0  # Teams' per-app-per-tenant limit; the schedule keeps a little below it
    concurrency: int = 32
    max_attempts: int = 8
    lease_seconds: float = 30.0  # how long a claimed delivery is ours before another may take it
    leader_lease_seconds: float = 10.0
    send_timeout_seconds: float = 15.0  # must match the client's timeout: a lease has to outlast a call
    poll_seconds: float = 0.5  # how often a dispatcher looks for work written by other processes
    cloud_service_url: str = "https://smba.trafficmanager.net/teams/"
    bot_id: str = ""  # "28:<app id>": used to open a chat when the person has none yet
    retention_seconds: float | None = None
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    housekeeping_seconds: float = 5.0  # how often the leader looks for erasures (and a due purge)
    # One send per slot from the first send (see TenantRateLimiter): no 429 from a group arriving late.
    smooth_pacing: bool = True


class _Failure(Exception):
    def __init__(self, verdict: Verdict, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict
        self.retry_after = retry_after
        self.status = status


class _LeaseLost(Exception):
    """Another dispatcher took the delivery over (or it was cancelled) before we sent it."""


# What a send attempt writes back; merged onto the stored record when something else changed it.
_OUTCOME_FIELDS = (
    "status", "attempts", "not_before", "conversation_id", "service_url", "message_id", "error",
    "delivered_at", "expires_at", "lease_owner", "lease_until",
)  # fmt: skip
_CHAT_FIELDS = frozenset({"conversation_id", "service_url", "message_id"})  # they point at the person


class Dispatcher:
    """Owns the send loop; ``notify()`` wakes it, ``watch(id)`` waits for a delivery to finish."""

    def __init__(
        self,
        store: Store,
        client: BotConnectorClient,
        settings: DispatcherSettings,
        *,
        events: EventSink | None = None,
        housekeeping: Callable[[], Awaitable[None]] | None = None,
        installer: Installer | None = None,
    ) -> None:
        self._store = store
        # Run by the leader only, as a task of its own, so a long purge never holds up sending.
        self._housekeeping = housekeeping
        self._housekeeping_task: asyncio.Task[None] | None = None
        self._housekeeping_asked = False
        self._last_housekeeping = 0.0
        # Present only when the operator allows proactive installation (GRAPH_INSTALL, docs/graph.md).
        self._installer = installer
        self._client = client
        self.settings = settings
        self._events = events or NoEvents()
        self.owner = uuid.uuid4().hex
        self._limiter = TenantRateLimiter(settings.rate_per_tenant, smooth=settings.smooth_pacing)
        self._pacer = ConversationPacer()
        # Shared with every other caller of Teams in this process (updates, deletes, cards, lookups).
        self.budget = TeamsBudget(self._limiter, self._pacer)
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._claimed: dict[str, Delivery] = {}  # deliveries being sent by this dispatcher, by id
        # Unexpected errors per delivery: one that keeps raising is moved to quarantine (issue 24).
        self._failures = FailureCounter()
        self._watchers: dict[str, list[asyncio.Future[Delivery]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.is_leader = False
        # Claim in batches once busy: one claim transaction per message would cost more than the send.
        self._claim_batch = max(1, settings.concurrency // 4)
        # A group of outcomes is also a claim batch's worth: its write frees the slots the next claim
        # fills, and a send never holds its slot long waiting for a group (at 500/s: every 50 ms).
        self._outcomes = OutcomeWriter(store, max_group=self._claim_batch)
        # Read by metrics: sends that reached Teams, retries scheduled, final failures, 429s seen,
        # sends put back to respect a conversation's window, and lost leases.
        self.stats = {
            "sent": 0, "retried": 0, "failed": 0, "throttled": 0, "paced": 0, "lease_lost": 0, "quarantined": 0,
        }  # fmt: skip
        # What a campaign operation (bot/delivery/operations.py) may use of this dispatcher.
        self._operations = OperationContext(
            store=store,
            client=client,
            pacer=self._pacer,
            limiter=self._limiter,
            stats=self.stats,
            finish=self._finish,
            keep_lease=self._keep_lease,
            max_attempts=settings.max_attempts,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_cap_seconds=settings.backoff_cap_seconds,
        )

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
        if self._housekeeping_task is not None:
            # An erase or purge cut short is done again by the next leader: each step is idempotent.
            _, pending = await asyncio.wait({self._housekeeping_task}, timeout=grace_seconds)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self._outcomes.drain()
        if self.is_leader:
            with contextlib.suppress(Exception):
                await self.save_pacing()
                await self._store.leases.release(LEADER_LEASE, self.owner)
            self.is_leader = False

    async def save_pacing(self) -> None:
        """Record the pace in the store (wall-clock times), so that the next leader starts from it."""
        mono, offset = time.monotonic(), time.time() - time.monotonic()
        tenants = {t: _shifted(state, offset) for t, state in self._limiter.snapshot(mono).items()}
        chats = {c: [t + offset for t in times] for c, times in self._pacer.snapshot(mono).items()}
        await self._store.leases.write_state(PACING_STATE, {"savedAt": time.time(), "tenants": tenants, "chats": chats})

    async def load_pacing(self) -> None:
        state = await self._store.leases.read_state(PACING_STATE)
        if not state:
            return
        offset = time.monotonic() - time.time()
        self._limiter.restore({t: _shifted(s, offset) for t, s in (state.get("tenants") or {}).items()})
        self._pacer.restore({c: [float(t) + offset for t in times] for c, times in (state.get("chats") or {}).items()})
        log.info("dispatcher %s: took over the pacing of %d tenants", self.owner[:8], len(state.get("tenants") or {}))

    def notify(self) -> None:
        self._wake.set()

    def request_housekeeping(self) -> None:
        """Run housekeeping soon (an erasure was queued), not only on its schedule."""
        self._housekeeping_asked = True
        self._wake.set()

    def _housekeep(self) -> None:
        if self._housekeeping is None or not self.is_leader:
            return
        if self._housekeeping_task is not None and not self._housekeeping_task.done():
            return
        due = time.monotonic() - self._last_housekeeping >= self.settings.housekeeping_seconds
        if not (due or self._housekeeping_asked):
            return
        self._housekeeping_asked = False
        self._last_housekeeping = time.monotonic()

        async def run(step: Callable[[], Awaitable[None]]) -> None:
            try:
                await step()
            except Exception:
                log.exception("housekeeping failed; it runs again on its schedule")

        self._housekeeping_task = asyncio.get_running_loop().create_task(run(self._housekeeping), name="housekeeping")

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

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
        renew_every = self.settings.leader_lease_seconds / 3
        while not self._stopping:
            try:
                if time.monotonic() - last_renewal > renew_every:
                    was_leader = self.is_leader
                    self.is_leader = await self._store.leases.acquire(
                        LEADER_LEASE, self.owner, self.settings.leader_lease_seconds
                    )
                    last_renewal = time.monotonic()
                    if self.is_leader and not was_leader:
                        await self.load_pacing()  # continue the last leader's pace, not an empty limiter
                    elif self.is_leader:
                        await self.save_pacing()
                if not self.is_leader:
                    await self._sleep(renew_every)
                    continue
                self._housekeep()
                await self._claim_and_send(renew_every)
            except Exception:
                log.exception("dispatcher loop error; retrying shortly")
                await self._sleep(1.0)

    async def _claim_and_send(self, max_wait: float) -> None:
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0 or (self._inflight and free < self._claim_batch):
            # Busy: wait for sends to finish, but come back in time to renew the leader lease.
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), timeout=max_wait)
            return
        self._wake.clear()
        batch = await self._store.outbox.claim_due(self.owner, now(), min(free, 100), self.settings.lease_seconds)
        for delivery in batch:
            running = self._claimed.get(delivery.id)
            if running is not None:
                # Our own claim lapsed while its send waited (a long Retry-After pause) and we took it
                # again: the waiting task carries on under the new lease instead of a second task.
                running.etag, running.lease_until = delivery.etag, delivery.lease_until
                continue
            self._claimed[delivery.id] = delivery
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._inflight.add(task)
            task.add_done_callback(self._done)
        if batch:
            return
        next_due = await self._store.outbox.next_due_at()
        timeout = min(self.settings.poll_seconds, max_wait)
        if next_due is not None:
            timeout = min(timeout, max(0.0, next_due - now()))
        await self._sleep(timeout)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        # Wake the claim loop only when it will claim: once a batch's worth of slots is free.
        if not self._inflight or self.settings.concurrency - len(self._inflight) >= self._claim_batch:
            self._slot_freed.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # ---- one delivery -----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._attempt(delivery)
            self._failures.succeeded(delivery.id)
        except _LeaseLost:
            self.stats["lease_lost"] += 1
            log.warning("delivery %s: lease lost before sending; another dispatcher has it", delivery.id)
        except Exception as exc:
            if self._failures.failed(delivery.id, exc):
                # It failed the same way again and again: a record we cannot process. Moved aside,
                # it stops taking a slot every few seconds; the others go on.
                log.error("delivery %s: unexpected error again (%s); moved to quarantine", delivery.id, reason_of(exc))
                if await isolate(self._store, "delivery", delivery.id, exc):
                    self._failures.succeeded(delivery.id)
                    self.stats["quarantined"] += 1
                    return
            # The reason only: a traceback's message can quote a record's values (DEBUG has it all).
            log.error("delivery %s: unexpected error (%s); it will be retried", delivery.id, reason_of(exc))
            log.debug("delivery %s: unexpected error", delivery.id, exc_info=exc)
            try:
                await self._finish(
                    delivery,
                    retry_in=backoff_seconds(delivery.attempts + 1, None, base=self.settings.backoff_base_seconds),
                )
            except Exception:
                # The lease runs out and the delivery is claimed again: nothing is lost.
                log.exception("delivery %s: could not record the error", delivery.id)
        finally:
            self._claimed.pop(delivery.id, None)

    async def _attempt(self, delivery: Delivery) -> None:
        if delivery.kind in OPERATION_KINDS:
            # UpdateBroadcast/RecallBroadcast: a PUT or DELETE of a delivered message, same budget.
            await run_operation(self._operations, delivery)
            return
        if not delivery.content:
            # Deleted or forgotten after it was claimed: nothing left to send.
            delivery.status = DeliveryStatus.FAILED
            delivery.error = {"code": "Cancelled", "message": "Deleted before it was sent."}
            await self._finish(delivery)
            return
        try:
            ref = await self._target(delivery)
            cid = ref.conversation_id
            delay = self._pacer.delay(cid)
            if delay > 0:
                # Over the conversation's budget: give the slot back and come back when it fits.
                self.stats["paced"] += 1
                await self._finish(delivery, retry_in=delay)
                return
            self._pacer.reserve(cid)
            sent = False
            try:
                await self._limiter.acquire(ref.tenant_id)
                await self._keep_lease(delivery)
                delivery.attempts += 1
                delivery.conversation_id = cid
                delivery.service_url = ref.service_url
                activity = build_activity(
                    delivery.content,
                    bot_id=ref.bot_id,
                    user_id=ref.user_id,
                    conversation_id=cid,
                    tenant_id=ref.tenant_id,
                )
                self._pacer.sent(cid)
                sent = True
                try:
                    with SEND_LATENCY.time():
                        delivery.message_id = await self._client.send(ref.service_url, cid, activity)
                except ConnectorError as exc:
                    raise _Failure(judge(exc), exc.retry_after, exc.status) from exc
            finally:
                if not sent:
                    self._pacer.release(cid)
        except _Failure as failure:
            await self._failed(delivery, failure)
            return
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now()
        delivery.error = None
        self.stats["sent"] += 1
        DELIVERED.inc()
        await self._finish(delivery)
        if ref.failures:
            await self._store.references.update(ref.tenant_id, ref.user_key, ref.surface, _clear_failures)

    async def _keep_lease(self, delivery: Delivery) -> None:
        """Make sure the lease outlasts the call about to be made (renew it if needed).

        A send may only start while the delivery is ours for longer than a call can take: otherwise
        another dispatcher could claim it mid-call and send it a second time.
        """
        margin = self.settings.send_timeout_seconds + 1.0
        if delivery.lease_until is not None and delivery.lease_until - now() > margin:
            return
        renewed = dataclasses.replace(delivery, lease_until=now() + self.settings.lease_seconds, updated_at=now())
        try:
            stored = await self._store.outbox.write(renewed, delivery.etag or "")
        except ConcurrencyConflict:
            current = await self._store.outbox.get(delivery.id)
            if current is None or not self._still_ours(current, delivery.lease_until) or not current.content:
                raise _LeaseLost(delivery.id) from None
            current.lease_until = now() + self.settings.lease_seconds
            try:
                stored = await self._store.outbox.write(current, current.etag or "")
            except ConcurrencyConflict:
                raise _LeaseLost(delivery.id) from None
            delivery.content = stored.content
        delivery.lease_until = stored.lease_until
        delivery.etag = stored.etag

    def _still_ours(self, current: Delivery, lease_until: float | None) -> bool:
        """The stored record still carries our lease: nobody (not even we) claimed it since."""
        return (
            current.status == DeliveryStatus.SENDING
            and current.lease_owner == self.owner
            and lease_until is not None
            and current.lease_until == lease_until
        )

    async def _failed(self, delivery: Delivery, failure: _Failure) -> None:
        verdict = failure.verdict
        if verdict.reference_status == ReferenceStatus.NOT_FOUND and self._may_repair(delivery):
            # The chat is gone (404 ConversationNotFound): mark it, and come straight back to repair it
            # through Graph once (see _target).
            await mark_reference(self._store, delivery, verdict)
            await self._finish(delivery, retry_in=0.0)
            return
        if failure.status == 429:
            # Pacing should prevent this; when Teams still says 429, every send to the tenant waits.
            self.stats["throttled"] += 1
            THROTTLED.inc()
            self._limiter.pause(delivery.tenant_id, failure.retry_after or 1.0)
        if verdict.retry and delivery.attempts < self.settings.max_attempts:
            self.stats["retried"] += 1
            RETRIES.inc()
            delay = backoff_seconds(
                delivery.attempts,
                failure.retry_after,
                base=self.settings.backoff_base_seconds,
                cap=self.settings.backoff_cap_seconds,
            )
            await self._finish(delivery, retry_in=delay)
            return
        message = verdict.message
        if verdict.retry:
            message = f"{verdict.message.removesuffix('; the message will be retried.')}; gave up after {delivery.attempts} attempts."
        delivery.status = DeliveryStatus.FAILED
        delivery.error = {**verdict.error(), "message": message}
        self.stats["failed"] += 1
        FAILED.inc()
        FAILURES.labels(verdict.error_code).inc()
        await self._finish(delivery)
        await mark_reference(self._store, delivery, verdict)  # when Teams' refusal concerns the person
        await self._events.publish(
            BotEvent.DELIVERY_FAILED,
            delivery.tenant_id,
            {
                "id": delivery.id,
                "recipient": delivery.recipient,
                "broadcastId": delivery.broadcast_id,
                "error": delivery.error,
            },
            PersonKey(delivery.tenant_id, delivery.user_key),
        )

    async def _finish(self, delivery: Delivery, *, retry_in: float | None = None) -> None:
        """Write the outcome back under our lease; a lost lease means another dispatcher took over."""
        if retry_in is not None:
            delivery.status = DeliveryStatus.SCHEDULED if delivery.deliver_at else DeliveryStatus.QUEUED
            delivery.not_before = now() + retry_in
        if delivery.is_final and self.settings.retention_seconds:
            delivery.expires_at = now() + self.settings.retention_seconds
            if delivery.kind == CARD_WAIT_KIND:
                # A delivered card may wait for its answer as long as a flow run lives: keep it that
                # long on top of the retention, or the answer would find no card to answer.
                delivery.expires_at += LONGEST_RUN_SECONDS
        delivery.updated_at = now()
        # The lease fields stay on ``delivery`` until the write is done: a re-claim of our own may
        # update them meanwhile (see _claim_and_send), and the merge below must see that.
        outcome = dataclasses.replace(delivery, lease_owner=None, lease_until=None)
        # A broadcast's outcomes are written in groups; a single message's at once (a flow may be
        # waiting for it).
        write = self._outcomes.write if delivery.broadcast_id else self._store.outbox.write
        try:
            stored = await write(outcome, delivery.etag or "")
        except ConcurrencyConflict:
            stored = await self._merge_outcome(outcome, delivery.lease_until)
            if stored is None:
                self.stats["lease_lost"] += 1
                log.warning("delivery %s: lease lost before the outcome was written", delivery.id)
                return
        if stored.is_final:
            for future in self._watchers.pop(stored.id, []):
                if not future.done():
                    future.set_result(stored)
        elif retry_in is not None:
            self._wake.set()

    async def _merge_outcome(self, outcome: Delivery, lease_until: float | None) -> Delivery | None:
        """Something else changed the record mid-send (e.g. ForgetRecipient scrubbed its content):
        keep their change and add our outcome, unless another dispatcher has claimed it since."""
        merged = False

        def merge(current: Delivery) -> Delivery | None:
            nonlocal merged
            merged = self._still_ours(current, lease_until)
            if not merged:
                return None
            for name in _OUTCOME_FIELDS:
                if name in _CHAT_FIELDS and not current.content:
                    continue  # ForgetRecipient scrubbed it meanwhile: do not write the chat back
                setattr(current, name, getattr(outcome, name))
            return current

        try:
            stored = await self._store.outbox.update(outcome.id, merge)
        except ConcurrencyConflict:
            return None
        return stored if merged else None

    # ---- target conversation ----------------------------------------------------------------
    async def _target(self, delivery: Delivery) -> Reference:
        """The person's Teams chat as stored now (a newer service URL wins); opened if missing, or
        installed through Graph when the send asked for it and the operator allows it."""
        if delivery.user_key.startswith(UNRESOLVED):
            await self._resolve_person(delivery)
        ref = await self._store.references.get(delivery.tenant_id, delivery.user_key, delivery.surface)
        if ref is None and self._may_install(delivery):
            if not await self._store.references.of_person(delivery.tenant_id, delivery.user_key):
                return await self._install(delivery, repair=False)
        if ref is None:
            ref = await self._open_chat(delivery)
        if ref.opted_out:
            raise _Failure(Verdict(False, "RecipientOptedOut", "The person turned notifications off (typed 'stop')."))
        if ref.status == ReferenceStatus.NOT_FOUND and self._may_repair(delivery):
            return await self._install(delivery, repair=True)
        if ref.status != ReferenceStatus.ACTIVE:
            raise _Failure(Verdict(False, "RecipientUnreachable", f"The person's chat with the bot is {ref.status}."))
        if delivery.reached_by is None:
            delivery.reached_by = "reference"
        return ref

    # ---- proactive installation through Graph ------------------------------------------------
    def _may_install(self, delivery: Delivery) -> bool:
        return self._installer is not None and delivery.install_if_missing and delivery.surface == Surface.TEAMS

    def _may_repair(self, delivery: Delivery) -> bool:
        """Repair once per delivery; never for a blocked, opted-out or uninstalled person (the callers
        check the reference's status: only a notFound chat is repaired)."""
        return self._may_install(delivery) and not delivery.repair_tried

    async def _resolve_person(self, delivery: Delivery) -> None:
        """A send to someone the bot has never seen: find them in Entra ID to get their object id."""
        if self._installer is None or not delivery.install_if_missing:
            raise _Failure(Verdict(False, "RecipientNotFound", "The bot has no conversation with this person."))
        await self._keep_lease(delivery)
        try:
            user = await self._installer.find_user(delivery.tenant_id, delivery.user_key[len(UNRESOLVED) :])
        except InstallFailed as exc:
            raise self._install_failure(delivery, exc) from exc
        delivery.user_key = str(user["id"]).lower()

    async def _install(self, delivery: Delivery, *, repair: bool) -> Reference:
        assert self._installer is not None
        await self._keep_lease(delivery)
        if repair:
            delivery.repair_tried = True
        try:
            installed = await self._installer.install(delivery.tenant_id, delivery.user_key, repair=repair)
        except InstallFailed as exc:
            raise self._install_failure(delivery, exc, repair=repair) from exc
        delivery.install_outcome = installed.outcome
        delivery.reached_by = "repaired" if repair else "installed"
        return installed.reference

    def _install_failure(self, delivery: Delivery, exc: InstallFailed, *, repair: bool = False) -> _Failure:
        delivery.attempts += 1  # a Graph call counts as an attempt, so retries of it run out too
        if exc.retryable:
            if repair:
                delivery.repair_tried = False  # Graph was down: the one repair is not spent yet
            return _Failure(Verdict(True, "GraphUnavailable", f"{exc.message}; the message will be retried."),
                            exc.retry_after)  # fmt: skip
        delivery.install_outcome = exc.code
        return _Failure(Verdict(False, exc.code, exc.message))

    async def _open_chat(self, delivery: Delivery) -> Reference:
        """Create the 1:1 Teams chat from what other surfaces told us about the person."""
        siblings = await self._store.references.of_person(delivery.tenant_id, delivery.user_key)
        if not siblings or delivery.surface != Surface.TEAMS:
            raise _Failure(Verdict(False, "RecipientNotFound", "The bot has no conversation with this person."))
        if any(s.opted_out for s in siblings):
            raise _Failure(Verdict(False, "RecipientOptedOut", "The person turned notifications off (typed 'stop')."))
        source = max(siblings, key=lambda r: (r.channel_id == TEAMS_CHANNEL, r.last_seen))
        service_url = (
            source.service_url
            if source.channel_id == TEAMS_CHANNEL
            else await self._store.references.tenant_service_url(delivery.tenant_id, TEAMS_CHANNEL)
        ) or self.settings.cloud_service_url
        bot_id = source.bot_id if source.channel_id == TEAMS_CHANNEL else (self.settings.bot_id or source.bot_id)
        member_id = source.user_id if source.user_id.startswith("29:") else (source.aad_object_id or source.user_id)
        # Opening a chat is a call to the same per-tenant budget as a send.
        await self.budget.spend(delivery.tenant_id)
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

        stored = await self._store.references.update(delivery.tenant_id, delivery.user_key, Surface.TEAMS, create)
        return stored or chat


def _shifted(state: dict[str, Any], offset: float) -> dict[str, Any]:
    """A tenant's pacing state with every time moved by ``offset`` (monotonic <-> wall clock)."""
    moved: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list):
            moved[key] = [float(t) + offset for t in value]
        elif isinstance(value, int | float) and math.isfinite(value):
            moved[key] = float(value) + offset
    return moved


def _clear_failures(current: Reference | None) -> Reference | None:
    if current is None or not current.failures:
        return None
    current.failures = 0
    current.last_error = None
    return current
