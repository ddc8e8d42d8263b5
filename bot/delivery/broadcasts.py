"""Broadcasts: one message to many people, expanded into outbox entries by the dispatcher's leader.

``StartBroadcast`` only persists the broadcast (with its recipient list) and answers; the expansion
runs in the background with deterministic delivery ids, so a crash half-way re-runs it without
creating a second message for anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from bot import errors
from bot.cardtags import BROADCAST_KEY, tagged
from bot.delivery import campaigns
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.engagement import engagement, operations_progress
from bot.delivery.messages import DEFAULT_MAX_MESSAGE_KB
from bot.delivery.service import Caller, replay, request_hash, validate_content
from bot.model import Broadcast, Delivery, DeliveryStatus, ReferenceStatus, Surface, now
from bot.recipients import find_person, index_keys, require_reachable
from bot.store.base import PersonKey, Store

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 25_000
MAX_SKIPPED_KEPT = 10_000  # per-recipient reasons kept on the broadcast record (counts stay exact)
CHUNK = 500
# Recipients resolved at once while expanding a list: on Cosmos DB each is two point reads (~8 ms),
# which one at a time would make a 20,000-person broadcast spend minutes "preparing".
RESOLVE_CONCURRENCY = 32
# How often a broadcast with an update or recall under way is swept again (campaigns.sweep).
SWEEP_SECONDS = 2.0
BROADCAST_NAMESPACE = uuid.UUID("0c5e2f0e-8f55-4b8e-bb6b-7a3c5d0e9f21")


def broadcast_delivery_id(broadcast_id: str, person: PersonKey) -> str:
    return f"{broadcast_id}-{uuid.uuid5(BROADCAST_NAMESPACE, f'{person.tenant_id}|{person.user_key}').hex[:20]}"


class BroadcastService:
    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        *,
        retention_seconds: float | None = None,
        check_seconds: float = 1.0,
        max_message_kb: float = DEFAULT_MAX_MESSAGE_KB,
    ) -> None:
        self.max_message_kb = max_message_kb
        self._store = store
        self._dispatcher = dispatcher
        self._retention = retention_seconds
        self._check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._swept: dict[str, float] = {}  # broadcast id -> when its update/recall was last swept

    # ---- API side ---------------------------------------------------------------------------
    async def start_broadcast(
        self,
        caller: Caller,
        *,
        content: dict[str, Any],
        recipients: list[str] | None,
        tenant_id: str | None,
        idempotency_key: str | None = None,
        card_type: str | None = None,
    ) -> tuple[Broadcast, bool]:
        validate_content(content, self.max_message_kb)
        tenant = tenant_id or caller.tenant_id
        if caller.tenant_id and tenant_id and tenant_id != caller.tenant_id:
            raise errors.Rejected("Forbidden", "This API key may only message its own tenant.", "tenantId")
        if recipients is None and not tenant:
            raise errors.Rejected(
                "ValidationError", "Give recipients, or a tenantId to message every active person in it.", "tenantId"
            )
        if recipients is not None:
            recipients = [r.strip() for r in recipients if r and r.strip()]
            if not recipients:
                raise errors.Rejected("ValidationError", "The recipient list is empty.", "recipients")
            if len(recipients) > MAX_RECIPIENTS:
                raise errors.Rejected(
                    "ValidationError",
                    f"{len(recipients):,} recipients is more than one broadcast takes ({MAX_RECIPIENTS:,});"
                    " split the list.",
                    "recipients",
                )
        broadcast_id = (
            uuid.uuid5(BROADCAST_NAMESPACE, f"key:{caller.key_id}\n{idempotency_key}").hex
            if idempotency_key
            else uuid.uuid4().hex
        )
        fingerprint = request_hash({**content, "recipients": recipients, "tenantId": tenant_id})
        if idempotency_key:
            earlier = await self._store.get_broadcast(broadcast_id)
            if earlier is not None:
                return replay(caller, earlier, fingerprint), False
        if isinstance(content.get("card"), dict):
            # Its buttons carry the broadcast id: with the person who answers, that names the message.
            content = {**content, "card": tagged(content["card"], BROADCAST_KEY, broadcast_id)}
            validate_content(content, self.max_message_kb)
        broadcast = Broadcast(
            id=broadcast_id,
            owner=caller.key_id,
            request_hash=fingerprint if idempotency_key else None,
            tenant_id=tenant,
            content=content,
            card_type=card_type,
            recipients=recipients,
            total=len(recipients) if recipients is not None else 0,
            expires_at=now() + self._retention if self._retention else None,
        )
        try:
            stored = await self._store.create_broadcast(broadcast)
        except Exception:
            earlier = await self._store.get_broadcast(broadcast_id)
            if earlier is None:
                raise
            return replay(caller, earlier, fingerprint), False
        self._wake.set()
        return stored, True

    def wake(self) -> None:
        """Look at the broadcasts now (an update or recall was just asked for)."""
        self._wake.set()

    async def visible(self, caller: Caller, broadcast_id: str) -> Broadcast:
        broadcast = await self._store.get_broadcast(broadcast_id)
        if broadcast is None or not caller.can_see(broadcast.tenant_id):
            raise errors.Rejected("NotFound", f"No broadcast with id '{broadcast_id}'.", "id")
        return broadcast

    async def report(self, caller: Caller, broadcast_id: str, *, failures_limit: int = 1000) -> dict[str, Any]:
        broadcast = await self.visible(caller, broadcast_id)
        counts = await self._store.count_deliveries(broadcast_id)
        failed_page = await self._store.list_deliveries(
            broadcast_id=broadcast_id, status=DeliveryStatus.FAILED, limit=failures_limit
        )
        failures = [
            {"recipient": d.recipient, "code": (d.error or {}).get("code"), "message": (d.error or {}).get("message")}
            for d in failed_page.items
        ]
        skipped = broadcast.skipped
        failures += skipped[: max(0, failures_limit - len(failures))]
        skipped_count = broadcast.total - sum(counts.values()) if broadcast.status != "preparing" else len(skipped)
        by_status = {
            "queued": counts.get(DeliveryStatus.QUEUED, 0) + counts.get(DeliveryStatus.SCHEDULED, 0),
            "sending": counts.get(DeliveryStatus.SENDING, 0),
            "delivered": counts.get(DeliveryStatus.DELIVERED, 0),
            "failed": counts.get(DeliveryStatus.FAILED, 0),
            "skipped": max(0, skipped_count),
            "recalled": counts.get(DeliveryStatus.RECALLED, 0),
        }
        done = by_status["delivered"] + by_status["failed"] + by_status["skipped"] + by_status["recalled"]
        total = broadcast.total
        return {
            "broadcast": broadcast,
            "counts": by_status,
            "progress": round(100.0 * done / total, 1)
            if total
            else (100.0 if broadcast.status == "completed" else 0.0),
            "failures": failures,
            "engagement": await engagement(self._store, broadcast_id),
            **await operations_progress(self._store, broadcast),
        }

    # ---- background side --------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="broadcasts")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self._dispatcher.is_leader:
                    await self.step()
            except Exception:
                log.exception("broadcast coordinator error; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._check_seconds)
            self._wake.clear()

    async def step(self) -> None:
        """Expand broadcasts still preparing; mark running ones complete when nothing is pending."""
        for broadcast in await self._store.unfinished_broadcasts():
            if broadcast.status == "preparing":
                await self._expand(broadcast)
            elif broadcast.status == "running":
                if campaigns.change_pending(broadcast):
                    # UpdateBroadcast/RecallBroadcast: queue what is left to change; done when settled.
                    # A pass reads every delivery of the broadcast, so it runs every few seconds, and
                    # at once when a change was just asked for.
                    asked = max(broadcast.update_requested_at or 0.0, broadcast.recall_requested_at or 0.0)
                    last = self._swept.get(broadcast.id, 0.0)
                    if asked < last and now() - last < SWEEP_SECONDS:
                        continue
                    self._swept[broadcast.id] = now()
                    if await campaigns.sweep(self._store, broadcast):
                        self._dispatcher.notify()
                    continue
                self._swept.pop(broadcast.id, None)
                counts = await self._store.count_deliveries(broadcast.id)
                pending = sum(
                    counts.get(s, 0) for s in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING)
                )
                if pending == 0:
                    await self._store.update_broadcast(broadcast.id, _complete)

    async def _expand(self, broadcast: Broadcast) -> None:
        skipped: list[dict[str, Any]] = []
        skipped_total = 0
        seen: set[PersonKey] = set()
        chunk: list[Delivery] = []
        named: list[str] = []  # recipients since the last flush, for the person index
        total = 0

        def skip(recipient: str, code: str, message: str) -> None:
            nonlocal skipped_total
            skipped_total += 1
            if len(skipped) < MAX_SKIPPED_KEPT:
                skipped.append({"recipient": recipient, "code": code, "message": message})

        async def flush() -> None:
            if named:
                # Before the broadcast can name them in a skip report: an erase must find it.
                keys = index_keys(broadcast.tenant_id, named)
                await self._store.index_broadcast(broadcast.id, keys, broadcast.expires_at)
                named.clear()
            if chunk:
                # An update or recall asked for while expanding applies to the rest at once.
                latest = await self._store.get_broadcast(broadcast.id)
                if latest is not None and (latest.revision or latest.recall_requested_at is not None):
                    for d in chunk:
                        campaigns.apply_before_sending(d, latest)
                await self._store.create_deliveries(chunk)
                chunk.clear()
                self._dispatcher.notify()

        async for recipient, person_key, rejection in self._people(broadcast):
            total += 1
            named.append(recipient)
            if len(named) >= CHUNK:
                await flush()
            if rejection is not None:
                skip(recipient, rejection.code, rejection.message)
                continue
            assert person_key is not None
            if person_key in seen:
                skip(recipient, "Duplicate", "The same person is already in this broadcast.")
                continue
            seen.add(person_key)
            chunk.append(self._delivery(broadcast, recipient, person_key))
            if len(chunk) >= CHUNK:
                await flush()
        await flush()

        def running(current: Broadcast) -> Broadcast:
            current.status = "running"
            current.total = total
            current.skipped = skipped
            return current

        await self._store.update_broadcast(broadcast.id, running)
        log.info("broadcast %s: %d recipients, %d skipped", broadcast.id, total, skipped_total)

    async def _people(self, broadcast: Broadcast) -> Any:
        """(recipient, person, rejection) for each recipient of the broadcast."""
        if broadcast.recipients is not None:
            recipients = broadcast.recipients
            for start in range(0, len(recipients), RESOLVE_CONCURRENCY):
                window = recipients[start : start + RESOLVE_CONCURRENCY]
                # In list order, so duplicates are reported on their later mention.
                for answer in await asyncio.gather(*(self._resolve(r, broadcast.tenant_id) for r in window)):
                    yield answer
            return
        token: str | None = None
        while True:
            page = await self._store.list_references(
                tenant_id=broadcast.tenant_id, status=None, surface=Surface.TEAMS, limit=500, token=token
            )
            for ref in page.items:
                recipient = ref.upn or ref.email or ref.aad_object_id or ref.user_id
                if ref.opted_out:
                    yield recipient, None, errors.opted_out(recipient)
                elif ref.status != ReferenceStatus.ACTIVE:
                    yield recipient, None, errors.unreachable(recipient, ref.status)
                else:
                    yield recipient, PersonKey(ref.tenant_id, ref.user_key), None
            token = page.next_token
            if not token:
                return

    async def _resolve(
        self, recipient: str, tenant_id: str | None
    ) -> tuple[str, PersonKey | None, errors.Rejected | None]:
        try:
            person = await find_person(self._store, recipient, tenant_id)
            require_reachable(person, recipient)
        except errors.Rejected as rejection:
            return recipient, None, rejection
        return recipient, person.key, None

    def _delivery(self, broadcast: Broadcast, recipient: str, person: PersonKey) -> Delivery:
        at = now()
        return Delivery(
            id=broadcast_delivery_id(broadcast.id, person),
            owner=broadcast.owner,
            tenant_id=person.tenant_id,
            user_key=person.user_key,
            recipient=recipient,
            content=broadcast.content,
            surface=Surface.TEAMS,
            broadcast_id=broadcast.id,
            card_type=broadcast.card_type,
            not_before=at,
            created_at=at,
            updated_at=at,
        )


def _complete(current: Broadcast) -> Broadcast | None:
    if current.status == "completed" or campaigns.change_pending(current):
        return None
    current.status = "completed"
    current.completed_at = now()
    return current
