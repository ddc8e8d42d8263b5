"""What the API asks of the delivery engine: accept a send, wait for it, report, update, delete."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from teams_proactive.bot import errors
from teams_proactive.bot.cardtags import MESSAGE_KEY, retagged, tagged
from teams_proactive.bot.delivery.dispatcher import Dispatcher
from teams_proactive.bot.delivery.messages import DEFAULT_MAX_MESSAGE_KB, TEAMS_LIMIT_KB, activity_size, build_activity
from teams_proactive.bot.delivery.policy import judge, mark_reference
from teams_proactive.bot.graph.client import GraphClient
from teams_proactive.bot.graph.install import unresolved_key
from teams_proactive.bot.graph.lookup import find_person_or_ask_graph
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.model import FINAL_STATUSES, Delivery, DeliveryStatus, ReferenceStatus, Surface, now
from teams_proactive.bot.outbound import BotConnectorClient, ConnectorError
from teams_proactive.bot.recipients import Person, find_person, require_reachable
from teams_proactive.bot.store.base import Store

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c9b3e-2f57-4d1e-9d0e-5b0c6c1f7a10")
# How often a waiting request re-reads the store, in case another process delivers the message.
WAIT_POLL_SECONDS = 0.25


@dataclass(slots=True, kw_only=True)
class Caller:
    """Who is asking and the tenant it is limited to (None: any).

    ``key_id`` is the caller's identity: a stored API key's immutable id, or a built-in caller's
    fixed id (``builtin:bootstrap``, ``entra:<tenant>:<client>[:<user oid>]``, ...). Ownership, idempotency and
    rate-limit buckets go by it; ``name`` is for people (logs, the dashboard) and may be reused.
    """

    name: str
    key_id: str = ""
    tenant_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # Records made before identities were key ids name their owner by key name. A stored key whose
    # name is not reserved still owns those (names of stored keys are unique, revoked ones included).
    legacy_owner: str | None = None

    def __post_init__(self) -> None:
        if not self.key_id:
            # Built-in callers (bootstrap, cli, dashboard, Entra ID) have no stored key: their
            # identity is fixed and lives in a namespace no stored key id can take (ids are hex).
            self.key_id = self.name if ":" in self.name else f"builtin:{self.name}"

    def can_see(self, tenant_id: str | None) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id

    def owns(self, owner: str | None, tenant_id: str | None) -> bool:
        """A record made by this very caller (by key id), within the caller's tenant."""
        mine = owner == self.key_id or (self.legacy_owner is not None and owner == self.legacy_owner)
        return mine and self.can_see(tenant_id)


@dataclass(slots=True, kw_only=True)
class MessageRequest:
    recipient: str
    text: str | None = None
    card: dict[str, Any] | None = None
    summary: str | None = None
    idempotency_key: str | None = None
    deliver_at: dt.datetime | None = None
    deliver_at_local_time: str | None = None  # "HH:MM" in the recipient's own time zone
    tenant_id: str | None = None
    kind: str = "message"
    card_type: str | None = None
    wait_until: float | None = None  # card-and-wait only
    install_if_missing: bool = False

    @property
    def content(self) -> dict[str, Any]:
        return {k: v for k, v in (("text", self.text), ("card", self.card), ("summary", self.summary)) if v is not None}

    def fingerprint(self) -> str:
        """A hash of what was asked (not how long to wait): the same idempotencyKey with another
        body is a mistake the caller must hear about, not a silent replay of the first message."""
        return request_hash(
            {
                "kind": self.kind,
                "recipient": self.recipient.strip(),
                **self.content,
                "deliverAt": self.deliver_at.isoformat() if self.deliver_at else None,
                "deliverAtLocalTime": self.deliver_at_local_time,
                "tenantId": self.tenant_id,
            }
        )


def request_hash(body: dict[str, Any]) -> str:
    """SHA-256 of a canonical JSON form (sorted keys, no spaces, None left out)."""
    canonical = json.dumps({k: v for k, v in body.items() if v is not None}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(caller: Caller, earlier: Any, fingerprint: str) -> Any:
    """The earlier record for a repeated idempotencyKey, once it is sure to be the caller's own
    and made from the same body; otherwise 409 IdempotencyKeyReused (nothing about it is shown)."""
    if not caller.owns(earlier.owner, earlier.tenant_id):
        raise errors.Rejected(
            "IdempotencyKeyReused",
            "This idempotencyKey was already used for another request; use a new key for a new request.",
            "idempotencyKey",
        )
    if earlier.request_hash and earlier.request_hash != fingerprint:
        raise errors.Rejected(
            "IdempotencyKeyReused",
            "This idempotencyKey was already used with a different body; use a new key for a new request.",
            "idempotencyKey",
        )
    return earlier


def delivery_id_for(key_id: str, idempotency_key: str | None) -> str:
    """The id a send gets: derived from the idempotency key (per API key id) when there is one.

    Card-and-wait uses it to know the id before the send, to put it in the card's buttons."""
    if idempotency_key:
        # "key:" keeps these apart from ids made before identities were key ids (they used names).
        return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"key:{key_id}\n{idempotency_key}").hex
    return uuid.uuid4().hex


def validate_content(content: dict[str, Any], max_kb: float = DEFAULT_MAX_MESSAGE_KB) -> None:
    """Refuse an empty message, and one larger than ``max_kb`` as Teams counts size (before it is queued)."""
    if not content.get("text") and content.get("card") is None:
        raise errors.Rejected("ValidationError", "Give the message a text, a card, or both.", "text")
    size = activity_size(content)
    if size > max_kb * 1024:
        raise errors.Rejected(
            "MessageTooLarge",
            f"The message is {size / 1024:,.1f} KB as Teams counts it (UTF-16: two bytes per character;"
            f" base64 images not counted); this service sends at most {max_kb:g} KB (MAX_MESSAGE_KB) and"
            f" Teams itself about {TEAMS_LIMIT_KB} KB. Shorten the text or the card.",
            "card" if content.get("card") is not None else "text",
        )


def next_local_time(hhmm: str, timezone: str, after: dt.datetime | None = None) -> dt.datetime:
    """The next moment it is HH:MM in ``timezone`` (today if still ahead, else tomorrow), in UTC.

    ``YYYY-MM-DDTHH:MM`` names the local date too: that wall-clock time on that day in ``timezone``
    (a flow that schedules tomorrow's 09:00 for everyone reaches each person on the same local day,
    wherever they are; "next 09:00" from one run is tomorrow east of UTC+9 and today west of UTC-15)."""
    date_part, _, hhmm = hhmm.rpartition("T")
    hours, minutes = (int(p) for p in hhmm.split(":"))
    zone = ZoneInfo(timezone)
    if date_part:
        day = dt.date.fromisoformat(date_part)
        # A time already past (a late run) is sent at once, as a past deliverAt is.
        return dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone).astimezone(dt.UTC)
    current = (after or dt.datetime.now(dt.UTC)).astimezone(zone)
    candidate = current.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if candidate <= current:
        candidate = (current + dt.timedelta(days=1)).replace(hour=hours, minute=minutes, second=0, microsecond=0)
    # Re-localise so a DST change between today and tomorrow lands on the wall-clock time asked for.
    candidate = dt.datetime(candidate.year, candidate.month, candidate.day, hours, minutes, tzinfo=zone)
    return candidate.astimezone(dt.UTC)


class DeliveryService:
    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        client: BotConnectorClient,
        *,
        retention_seconds: float | None = None,
        max_message_kb: float = DEFAULT_MAX_MESSAGE_KB,
        graph: GraphSettings | None = None,
        graph_client: GraphClient | None = None,
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._client = client
        self._retention = retention_seconds
        self.max_message_kb = max_message_kb
        self._graph = graph or GraphSettings()
        self._graph_client = graph_client  # finds someone known by object id when named by UPN

    async def find(self, recipient: str, tenant: str | None) -> Person:
        """The person a recipient names: the store, then Graph (when configured) for an unknown address."""
        return await find_person_or_ask_graph(
            self._store, recipient, tenant, self._graph_client, self._graph.home_tenant_id
        )

    # ---- send -------------------------------------------------------------------------------
    async def submit(self, caller: Caller, request: MessageRequest) -> tuple[Delivery, bool]:
        """Persist a send in the outbox (or return the earlier one with the same idempotency key)."""
        content = request.content
        delivery_id = delivery_id_for(caller.key_id, request.idempotency_key)
        fingerprint = request.fingerprint()
        if request.kind == "message" and isinstance(content.get("card"), dict):
            # Its buttons carry the message id, so OnCardSubmitted can say which message was answered.
            content["card"] = tagged(content["card"], MESSAGE_KEY, delivery_id)
        validate_content(content, self.max_message_kb)
        if request.idempotency_key:
            earlier = await self._store.outbox.get(delivery_id)
            if earlier is not None:
                return replay(caller, earlier, fingerprint), False
        tenant = request.tenant_id or caller.tenant_id
        if caller.tenant_id and request.tenant_id and request.tenant_id != caller.tenant_id:
            raise errors.not_found(request.recipient)
        if request.install_if_missing:
            operation = "Send a card and wait for a response" if request.kind == "cardWait" else "Send a message"
            require_install_allowed(self._graph, caller, operation)
            person, tenant_id, user_key = await self._person_or_install(request, tenant)
        else:
            person = await self.find(request.recipient, tenant)
            require_reachable(person, request.recipient)
            tenant_id, user_key = person.key.tenant_id, person.key.user_key
        deliver_at = self._deliver_at(request, person)
        at = now()
        delivery = Delivery(
            id=delivery_id,
            owner=caller.key_id,
            tenant_id=tenant_id,
            user_key=user_key,
            recipient=request.recipient.strip(),
            content=content,
            kind=request.kind,
            surface=Surface.TEAMS,
            status=DeliveryStatus.SCHEDULED if deliver_at and deliver_at > at else DeliveryStatus.QUEUED,
            not_before=max(at, deliver_at or at),
            deliver_at=deliver_at,
            idempotency_key=request.idempotency_key,
            request_hash=fingerprint if request.idempotency_key else None,
            card_type=request.card_type,
            wait_until=request.wait_until,
            created_at=at,
            updated_at=at,
            install_if_missing=request.install_if_missing,
        )
        stored, created = await self._store.outbox.create(delivery)
        if created:
            self._dispatcher.notify()
            return stored, created
        return replay(caller, stored, fingerprint), False

    async def send(self, caller: Caller, request: MessageRequest, wait_seconds: float) -> Delivery:
        """Submit, then wait up to ``wait_seconds`` for the outcome (not for a scheduled message).

        One call on the bot loop instead of two: each hop between a request thread and the loop
        costs the caller a few milliseconds when the process is busy.
        """
        delivery, _ = await self.submit(caller, request)
        if delivery.deliver_at:
            return delivery
        return await self.wait(delivery, wait_seconds)

    async def _person_or_install(self, request: MessageRequest, tenant: str | None) -> tuple[Person | None, str, str]:
        """The person to send to when installing is allowed: someone known (a lost chat is repaired by
        the dispatcher), or someone new whom the dispatcher finds in Entra ID and installs the app for."""
        try:
            person = await find_person(self._store, request.recipient, tenant)
        except errors.Rejected as rejection:
            if rejection.code != "RecipientNotFound":
                raise
            tenant = tenant or self._graph.home_tenant_id or None
            if not tenant:
                raise errors.Rejected(
                    "ValidationError",
                    f"The bot has never talked with '{request.recipient}'; to install the app for them, say in"
                    " which organisation: pass tenantId (or use an API key limited to one tenant).",
                    "tenantId",
                ) from None
            return None, tenant, unresolved_key(request.recipient)
        if person.opted_out or person.reachability() not in (ReferenceStatus.ACTIVE, ReferenceStatus.NOT_FOUND):
            # Blocked, uninstalled or opted out: the person said no, and installing again would overrule them.
            require_reachable(person, request.recipient)
        return person, person.key.tenant_id, person.key.user_key

    def _deliver_at(self, request: MessageRequest, person: Person | None) -> float | None:
        if request.deliver_at is not None:
            when = request.deliver_at
            if when.tzinfo is None:
                raise errors.Rejected(
                    "ValidationError", "deliverAt needs a time zone offset, e.g. 2026-12-01T09:00:00Z.", "deliverAt"
                )
            return when.timestamp()
        if request.deliver_at_local_time:
            zone = person.timezone if person is not None else None
            if not zone:
                raise errors.Rejected(
                    "ValidationError",
                    f"The time zone of '{request.recipient}' is not known yet (Teams tells the bot when they next"
                    " write to it). Use deliverAt with an explicit UTC time instead.",
                    "deliverAtLocalTime",
                )
            try:
                return next_local_time(request.deliver_at_local_time, zone).timestamp()
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise errors.Rejected(
                    "ValidationError", f"The recipient's time zone '{zone}' is not recognised.", "deliverAtLocalTime"
                ) from exc
        return None

    async def wait(self, delivery: Delivery, seconds: float) -> Delivery:
        """Wait until the delivery is final or ``seconds`` pass; returns its latest state."""
        if delivery.is_final or seconds <= 0:
            return delivery
        future = self._dispatcher.watch(delivery.id)
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), timeout=min(remaining, WAIT_POLL_SECONDS))
                current = await self._store.outbox.get(delivery.id)
                if current is not None and current.is_final:
                    return current
        finally:
            self._dispatcher.unwatch(delivery.id, future)
        return await self._store.outbox.get(delivery.id) or delivery

    async def get(self, caller: Caller, delivery_id: str) -> Delivery:
        delivery = await self._store.outbox.get(delivery_id)
        if delivery is None or not caller.can_see(delivery.tenant_id):
            raise errors.Rejected("NotFound", f"No message with id '{delivery_id}'.", "id")
        return delivery

    # ---- update / delete --------------------------------------------------------------------
    async def update(self, caller: Caller, delivery_id: str, content: dict[str, Any]) -> Delivery:
        validate_content(content, self.max_message_kb)
        delivery = await self.get(caller, delivery_id)
        # The new card's buttons carry the same ids as the old one's: a press answers the same message.
        content = retagged(content, kind=delivery.kind, delivery_id=delivery.id, broadcast_id=delivery.broadcast_id)
        validate_content(content, self.max_message_kb)
        if delivery.deleted_at:
            raise errors.Rejected("MessageNotDelivered", "The message was deleted; it cannot be changed.", "id")
        if delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED):

            def replace_pending(current: Delivery) -> Delivery | None:
                if current.status not in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED):
                    return None
                current.content = content
                return current

            updated = await self._store.outbox.update(delivery_id, replace_pending)
            if updated is not None and updated.content == content:
                return updated
            delivery = await self.get(caller, delivery_id)
        if delivery.status != DeliveryStatus.DELIVERED or not delivery.message_id:
            raise errors.Rejected(
                "MessageNotDelivered",
                f"The message is {delivery.status}; only a queued or delivered message can be changed.",
                "id",
            )
        activity = build_activity(content, conversation_id=delivery.conversation_id, tenant_id=delivery.tenant_id)
        await self._call_teams(self._client.update, delivery, activity)

        def record(current: Delivery) -> Delivery:
            current.content = content
            return current

        return await self._store.outbox.update(delivery_id, record) or delivery

    async def delete(self, caller: Caller, delivery_id: str) -> Delivery:
        delivery = await self.get(caller, delivery_id)
        if delivery.deleted_at:
            return delivery
        if delivery.status == DeliveryStatus.DELIVERED and delivery.message_id:
            await self._call_teams(self._client.delete, delivery)
        elif delivery.status == DeliveryStatus.SENDING:
            raise errors.Rejected(
                "MessageNotDelivered", "The message is being sent right now; try again in a few seconds.", "id"
            )

        sending = False

        def erase(current: Delivery) -> Delivery | None:
            nonlocal sending
            # The dispatcher claimed it meanwhile: its send is under way, so it cannot be cancelled.
            sending = current.status == DeliveryStatus.SENDING
            if sending:
                return None
            if current.status in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED):
                current.status = DeliveryStatus.FAILED
                current.error = {"code": "Cancelled", "message": "Deleted before it was sent."}
                current.lease_owner = current.lease_until = None
                if self._retention:
                    current.expires_at = now() + self._retention
            current.deleted_at = now()
            current.content = {}
            return current

        erased = await self._store.outbox.update(delivery_id, erase)
        if sending:
            raise errors.Rejected(
                "MessageNotDelivered", "The message is being sent right now; try again in a few seconds.", "id"
            )
        return erased or delivery

    async def _call_teams(self, method: Any, delivery: Delivery, *args: Any) -> None:
        assert delivery.service_url and delivery.conversation_id and delivery.message_id
        budget = self._dispatcher.budget
        for attempt in range(1, 4):
            # The same per-tenant and per-conversation budget as the dispatcher's sends.
            await budget.spend(delivery.tenant_id, delivery.conversation_id)
            try:
                await method(delivery.service_url, delivery.conversation_id, delivery.message_id, *args)
                return
            except ConnectorError as exc:
                if exc.status == 429:
                    budget.throttled(delivery.tenant_id, exc.retry_after)
                if exc.status in (0, 412, 429, 502, 503, 504) and attempt < 3:
                    await asyncio.sleep(min(exc.retry_after or attempt, 5.0))
                    continue
                if exc.status == 429:
                    raise errors.Rejected(
                        "Throttled", "Teams is busy; try again shortly.", None, exc.retry_after
                    ) from exc
                # Teams' documented answers mean what they mean for a send: a blocked or gone chat
                # changes the person's status; a message no longer in the chat is not the person's doing.
                verdict = judge(exc)
                if verdict.reference_status is not None:
                    await mark_reference(self._store, delivery, verdict)
                    raise errors.Rejected("RecipientUnreachable", verdict.message, "id") from exc
                if verdict.error_code == "MessageNotFound":
                    raise errors.Rejected("MessageNotDelivered", verdict.message, "id") from exc
                if verdict.error_code == "MessageTooLarge":
                    raise errors.Rejected("MessageTooLarge", verdict.message, "card") from exc
                raise errors.Rejected(
                    "TeamsError", f"Teams could not change the message ({exc.status} {exc.code}).", "id"
                ) from exc


INSTALL_SCOPE = "install"


def require_install_allowed(graph: GraphSettings, caller: Caller, operation: str) -> None:
    """installIfMissing needs the operator's switch (GRAPH_INSTALL) and Graph credentials (409 without),
    and then credentials with the ``install`` permission (403 without): installing the app puts the bot
    into a person's Teams, which sending to people who already have it does not."""
    refusal = graph.install_refusal()
    if refusal is not None:
        raise errors.Rejected("InstallNotEnabled", refusal, "installIfMissing")
    if INSTALL_SCOPE not in caller.scopes and "admin" not in caller.scopes:
        raise errors.Rejected(
            "Forbidden",
            f"These credentials do not have the 'install' permission, which '{operation}' needs with"
            " installIfMissing (installing the app in Teams for people who do not have it). Ask the"
            " service's admin for a key with the install scope, or send without installIfMissing.",
            "installIfMissing",
        )


def is_final_status(status: str) -> bool:
    return status in FINAL_STATUSES
