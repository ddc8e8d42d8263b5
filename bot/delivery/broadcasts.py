"""Broadcasts: one message to many people, expanded into outbox entries by the dispatcher's leader.

``StartBroadcast`` only persists the broadcast (with its recipient list) and answers; the expansion
runs in the background with deterministic delivery ids, so a crash half-way re-runs it without
creating a second message for anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from teams_proactive.bot import errors
from teams_proactive.bot.cardtags import BROADCAST_KEY, tagged
from teams_proactive.bot.delivery import campaigns
from teams_proactive.bot.delivery.dispatcher import Dispatcher
from teams_proactive.bot.delivery.engagement import engagement, operations_progress
from teams_proactive.bot.delivery.messages import DEFAULT_MAX_MESSAGE_KB
from teams_proactive.bot.delivery.service import Caller, replay, request_hash, require_install_allowed, validate_content
from teams_proactive.bot.graph.audiences import AudienceExpander, graph_required
from teams_proactive.bot.graph.client import GraphClient
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.model import Broadcast, Delivery, DeliveryStatus, ReferenceStatus, Surface, now
from teams_proactive.bot.quarantine import FailureCounter, isolate
from teams_proactive.bot.recipients import find_person, index_keys, require_reachable
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.bot.unreadable import reason_of

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100_000
# Lists longer than this are stored in chunks of this many addresses (at most 320 characters each:
# under 400 KB a chunk, far from Cosmos DB's 2 MB item limit); shorter ones stay on the record.
RECIPIENT_CHUNK = 1_000
CHUNK_WRITE_CONCURRENCY = 16
# Per-recipient reasons kept on the broadcast record (GetBroadcast's failures, the CSV report); the
# counts stay exact whatever is kept. Bounded by number and by size: a Cosmos DB item is at most 2 MB
# (413 RequestEntityTooLarge above it), and 10,000 "never talked with '…'" reasons of long addresses
# come to 8 MB; the record also holds the content and up to a chunk of addresses.
MAX_SKIPPED_KEPT = 10_000
MAX_SKIPPED_BYTES = 1_000_000
CHUNK = 500
FIRST_CHUNK = 32
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
        graph: GraphClient | None = None,
        graph_settings: GraphSettings | None = None,
    ) -> None:
        self.max_message_kb = max_message_kb
        self._store = store
        self._graph_settings = graph_settings or GraphSettings()
        self._audiences = AudienceExpander(store, graph)
        self._dispatcher = dispatcher
        self._retention = retention_seconds
        self._check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._swept: dict[str, float] = {}  # broadcast id -> when its update/recall was last swept
        self._failures = FailureCounter()  # a broadcast that keeps raising goes to quarantine

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
        groups: list[str] | None = None,
        teams: list[str] | None = None,
        include_guests: bool = False,
        install_if_missing: bool = False,
    ) -> tuple[Broadcast, bool]:
        validate_content(content, self.max_message_kb)
        tenant = tenant_id or caller.tenant_id
        if caller.tenant_id and tenant_id and tenant_id != caller.tenant_id:
            raise errors.Rejected("Forbidden", "This API key may only message its own tenant.", "tenantId")
        groups = sorted({g.strip().lower() for g in groups or [] if g and g.strip()})
        teams = sorted({t.strip() for t in teams or [] if t and t.strip()})
        if install_if_missing:
            require_install_allowed(self._graph_settings, caller, "Send one message to many people")
        if groups or teams:
            graph_required(self._graph_settings, "groups" if groups else "teams")
            tenant = tenant or self._graph_settings.home_tenant_id or None
            if not tenant:
                raise errors.Rejected(
                    "ValidationError", "Say whose Entra groups or teams these are: pass tenantId.", "tenantId"
                )
            if recipients is None:
                recipients = []  # an audience of groups and teams only
        if recipients is None and not tenant:
            raise errors.Rejected(
                "ValidationError", "Give recipients, or a tenantId to message every active person in it.", "tenantId"
            )
        if recipients is not None:
            recipients = [r.strip() for r in recipients if r and r.strip()]
            if not recipients and not (groups or teams):
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
            earlier = await self._store.broadcasts.get(broadcast_id)
            if earlier is not None:
                return replay(caller, earlier, fingerprint), False
        if isinstance(content.get("card"), dict):
            # Its buttons carry the broadcast id: with the person who answers, that names the message.
            content = {**content, "card": tagged(content["card"], BROADCAST_KEY, broadcast_id)}
            validate_content(content, self.max_message_kb)
        expires_at = now() + self._retention if self._retention else None
        chunks = 0
        total = len(recipients) if recipients is not None else 0
        if recipients is not None and len(recipients) > RECIPIENT_CHUNK:
            # The chunks first: a broadcast record never points at a list that is not there.
            chunks = await self._write_chunks(broadcast_id, recipients, expires_at)
            recipients = []
        broadcast = Broadcast(
            id=broadcast_id,
            owner=caller.key_id,
            request_hash=fingerprint if idempotency_key else None,
            tenant_id=tenant,
            content=content,
            card_type=card_type,
            recipients=recipients,
            total=total,
            recipient_chunks=chunks,
            expires_at=expires_at,
            install_if_missing=install_if_missing,
            groups=groups,
            teams=teams,
            include_guests=include_guests,
        )
        try:
            stored = await self._store.broadcasts.create(broadcast)
        except Exception:
            earlier = await self._store.broadcasts.get(broadcast_id)
            if earlier is None:
                raise
            return replay(caller, earlier, fingerprint), False
        self._wake.set()
        return stored, True

    async def _write_chunks(self, broadcast_id: str, recipients: list[str], expires_at: float | None) -> int:
        starts = range(0, len(recipients), RECIPIENT_CHUNK)
        writes = [
            self._store.broadcasts.write_chunk(broadcast_id, i, recipients[start : start + RECIPIENT_CHUNK], expires_at)
            for i, start in enumerate(starts)
        ]
        for first in range(0, len(writes), CHUNK_WRITE_CONCURRENCY):
            await asyncio.gather(*writes[first : first + CHUNK_WRITE_CONCURRENCY])
        return len(writes)

    async def recipients_of(self, broadcast: Broadcast) -> AsyncIterator[list[str]]:
        """The broadcast's recipient list, a chunk at a time (streamed, never all in memory)."""
        if broadcast.recipient_chunks:
            for index in range(broadcast.recipient_chunks):
                chunk = await self._store.broadcasts.read_chunk(broadcast.id, index)
                if chunk is None:
                    raise RuntimeError(f"broadcast {broadcast.id}: recipient chunk {index} is missing")
                yield chunk
        elif broadcast.recipients:
            yield broadcast.recipients

    def wake(self) -> None:
        """Look at the broadcasts now (an update or recall was just asked for)."""
        self._wake.set()

    async def visible(self, caller: Caller, broadcast_id: str) -> Broadcast:
        broadcast = await self._store.broadcasts.get(broadcast_id)
        if broadcast is None or not caller.can_see(broadcast.tenant_id):
            raise errors.Rejected("NotFound", f"No broadcast with id '{broadcast_id}'.", "id")
        return broadcast

    async def report(self, caller: Caller, broadcast_id: str, *, failures_limit: int = 1000) -> dict[str, Any]:
        broadcast = await self.visible(caller, broadcast_id)
        counts = await self._store.outbox.count(broadcast_id)
        failed_page = await self._store.outbox.page(
            broadcast_id=broadcast_id, status=DeliveryStatus.FAILED, limit=failures_limit
        )
        failures = [
            {"recipient": d.recipient, "code": (d.error or {}).get("code"), "message": (d.error or {}).get("message")}
            for d in failed_page.items
        ]
        skipped = broadcast.skipped
        failures += skipped[: max(0, failures_limit - len(failures))]
        skipped_count = broadcast.total - sum(counts.values()) if broadcast.status != "preparing" else len(skipped)
        # Only a broadcast that installs has install outcomes to count (a count reads its deliveries).
        installs = await self._store.outbox.count_install_outcomes(broadcast_id) if broadcast.install_if_missing else {}
        for entry in skipped if broadcast.install_if_missing else []:
            if entry.get("code") == "UserNotFound":
                installs["UserNotFound"] = installs.get("UserNotFound", 0) + 1
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
            "installs": installs,
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
        """Expand broadcasts still preparing; mark running ones complete when nothing is pending.

        One broadcast that raises does not hold up the others; one that keeps raising is moved to
        quarantine (issue 24)."""
        for broadcast in await self._store.broadcasts.unfinished():
            try:
                await self._step_one(broadcast)
            except Exception as exc:
                if self._failures.failed(broadcast.id, exc):
                    log.error("broadcast %s: failed again (%s); moved to quarantine", broadcast.id, reason_of(exc))
                    if await isolate(self._store, "broadcast", broadcast.id, exc):
                        self._failures.succeeded(broadcast.id)
                else:
                    log.error("broadcast %s: failed (%s); tried again on the next pass", broadcast.id, reason_of(exc))
                    log.debug("broadcast %s: failed", broadcast.id, exc_info=exc)
            else:
                self._failures.succeeded(broadcast.id)

    async def _step_one(self, broadcast: Broadcast) -> None:
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
                    return
                self._swept[broadcast.id] = now()
                if await campaigns.sweep(self._store, broadcast):
                    self._dispatcher.notify()
                return
            self._swept.pop(broadcast.id, None)
            counts = await self._store.outbox.count(broadcast.id)
            pending = sum(
                counts.get(s, 0) for s in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING)
            )
            if pending == 0:
                await self._store.broadcasts.update(broadcast.id, _complete)

    async def _expand(self, broadcast: Broadcast) -> None:
        skipped: list[dict[str, Any]] = []
        skipped_total = 0
        skipped_bytes = 0
        # 16-byte digests instead of PersonKey objects: a third of the memory for 100,000 people.
        seen: set[bytes] = set()
        chunk: list[Delivery] = []
        named: list[str] = []  # recipients since the last flush, for the person index
        total = 0
        flushed = False

        def skip(recipient: str, code: str, message: str) -> None:
            nonlocal skipped_total, skipped_bytes
            skipped_total += 1
            entry = {"recipient": recipient, "code": code, "message": message}
            # Its size as the Cosmos DB SDK sends it (json.dumps: non-ASCII as \uXXXX, the longest form).
            size = len(json.dumps(entry)) + 2
            if len(skipped) < MAX_SKIPPED_KEPT and skipped_bytes + size <= MAX_SKIPPED_BYTES:
                skipped.append(entry)
                skipped_bytes += size

        async def flush() -> None:
            if named:
                # Before the broadcast can name them in a skip report: an erase must find it.
                keys = index_keys(broadcast.tenant_id, named)
                await self._store.broadcasts.index(broadcast.id, keys, broadcast.expires_at)
                named.clear()
            if chunk:
                # An update or recall asked for while expanding applies to the rest at once.
                latest = await self._store.broadcasts.get(broadcast.id)
                if latest is not None and (latest.revision or latest.recall_requested_at is not None):
                    for d in chunk:
                        campaigns.apply_before_sending(d, latest)
                await self._store.outbox.create_many(chunk)
                chunk.clear()
                self._dispatcher.notify()

        async def progress(read: int) -> None:
            def count(current: Broadcast) -> Broadcast | None:
                if current.expanded >= read:
                    return None
                current.expanded = read
                return current

            await self._store.broadcasts.update(broadcast.id, count)

        async for recipient, person_key, rejection in self._people(broadcast):
            total += 1
            named.append(recipient)
            if len(named) >= CHUNK:
                await flush()
            if total % CHUNK == 0:
                await progress(total)  # GetBroadcast shows how far the expansion got
            if rejection is not None:
                skip(recipient, rejection.code, rejection.message)
                continue
            assert person_key is not None
            digest = hashlib.blake2b(f"{person_key.tenant_id}\n{person_key.user_key}".encode(), digest_size=16).digest()
            if digest in seen:
                skip(recipient, "Duplicate", "The same person is already in this broadcast.")
                continue
            seen.add(digest)
            chunk.append(self._delivery(broadcast, recipient, person_key))
            # The first few go out at once, so sending starts while the rest is still being read.
            if len(chunk) >= (CHUNK if flushed else FIRST_CHUNK):
                flushed = True
                await flush()
        await flush()

        def running(current: Broadcast) -> Broadcast:
            current.status = "running"
            current.total = total
            current.expanded = total
            current.skipped = skipped
            return current

        await self._store.broadcasts.update(broadcast.id, running)
        log.info("broadcast %s: %d recipients, %d skipped", broadcast.id, total, skipped_total)

    async def _people(self, broadcast: Broadcast) -> Any:
        """(recipient, person, rejection) for each recipient of the broadcast."""
        if broadcast.recipients is not None:
            async for recipients in self.recipients_of(broadcast):
                for start in range(0, len(recipients), RESOLVE_CONCURRENCY):
                    window = recipients[start : start + RESOLVE_CONCURRENCY]
                    # In list order, so duplicates are reported on their later mention.
                    for answer in await asyncio.gather(*(self._resolve(r, broadcast) for r in window)):
                        yield answer
            if broadcast.groups or broadcast.teams:
                assert broadcast.tenant_id is not None
                async for answer in self._audiences.members(
                    broadcast.tenant_id,
                    groups=broadcast.groups,
                    teams=broadcast.teams,
                    include_guests=broadcast.include_guests,
                    install=broadcast.install_if_missing,
                ):
                    yield answer
            return
        token: str | None = None
        while True:
            page = await self._store.references.page(
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
        self, recipient: str, broadcast: Broadcast
    ) -> tuple[str, PersonKey | None, errors.Rejected | None]:
        tenant_id = broadcast.tenant_id
        try:
            person = await find_person(self._store, recipient, tenant_id)
            if not (broadcast.install_if_missing and person.reachability() == ReferenceStatus.NOT_FOUND):
                require_reachable(person, recipient)  # a lost chat is repaired when installing is allowed
            elif person.opted_out:
                require_reachable(person, recipient)
        except errors.Rejected as rejection:
            if rejection.code == "RecipientNotFound" and broadcast.install_if_missing and tenant_id:
                # Never seen: found in Entra ID now, so that the person key is their object id and two
                # addresses of one person get one message.
                return await self._audiences.look_up(recipient, tenant_id)
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
            install_if_missing=broadcast.install_if_missing,
        )


def _complete(current: Broadcast) -> Broadcast | None:
    if current.status == "completed" or campaigns.change_pending(current):
        return None
    current.status = "completed"
    current.completed_at = now()
    return current
