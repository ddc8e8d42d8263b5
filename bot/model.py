"""The records the store keeps: conversation references, deliveries, broadcasts, API keys, leases."""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Self


def now() -> float:
    """Wall-clock time in epoch seconds; every stored timestamp uses it."""
    return time.time()


class Surface(StrEnum):
    """Where a user talked to the bot; each has its own conversation (DESIGN.md section 7)."""

    TEAMS = "teams"
    TEAMS_COPILOT = "teams-copilot"
    M365_COPILOT = "m365-copilot"
    GROUP = "group"
    CHANNEL = "channel"


class ReferenceStatus(StrEnum):
    ACTIVE = "active"
    UNINSTALLED = "uninstalled"
    BLOCKED = "blocked"
    NOT_FOUND = "notFound"
    EXPIRED = "expired"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"
    RECALLED = "recalled"  # withdrawn by RecallBroadcast: deleted from the chat, or never sent


PENDING_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING)
FINAL_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.RECALLED)


class Record:
    """Shared (de)serialisation: a record is a flat document plus the store's concurrency token."""

    etag: str | None

    def to_doc(self) -> dict[str, Any]:
        """The record as a document, for serialising at once: nested values are shared, not copied
        (``asdict``'s deep copy was a large part of the outbox's CPU per message)."""
        return {name: getattr(self, name) for name in _field_names(type(self)) if name != "etag"}

    @classmethod
    def from_doc(cls, doc: dict[str, Any], etag: str | None = None) -> Self:
        try:
            # A document this version wrote holds exactly the fields (every claim and reference
            # read comes through here); anything else is filtered below.
            record = cls(**doc)
        except TypeError:
            names = _field_set(cls)
            record = cls(**{k: v for k, v in doc.items() if k in names and k != "etag"})
        record.etag = etag
        return record

    def copy(self) -> Self:
        """An independent copy (nested dicts and lists too)."""
        values = {}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            values[name] = copy.deepcopy(value) if isinstance(value, dict | list) else value
        return type(self)(**values)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@functools.cache
def _field_set(cls: type) -> frozenset[str]:
    return frozenset(_field_names(cls))


@dataclass(slots=True)
class Reference(Record):
    """One conversation reference of one person on one surface."""

    tenant_id: str
    user_key: str  # the Entra object ID when known, else the channel's user id
    surface: str
    conversation_id: str
    service_url: str
    channel_id: str
    user_id: str  # the channel's id for the user ("29:…" in Teams)
    bot_id: str
    aad_object_id: str | None = None
    bot_name: str | None = None
    name: str | None = None
    upn: str | None = None
    email: str | None = None
    locale: str | None = None
    timezone: str | None = None
    conversation_type: str | None = None
    member_looked_up: bool = False  # Teams was asked once for UPN and email (whatever it answered)
    status: str = ReferenceStatus.ACTIVE
    opted_out: bool = False
    failures: int = 0
    last_error: str | None = None
    last_seen: float = field(default_factory=now)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    expires_at: float | None = None
    conversation_reference: dict[str, Any] = field(default_factory=dict)
    # Other ids of this same chat: Graph names a personal chat "19:…@unq.gbl.spaces" (installedApps/{id}/chat)
    # while Teams' activities in it carry Bot Framework's "a:…"; messages sent under one are read, answered
    # and recalled under the other.
    conversation_aliases: list[str] = field(default_factory=list)
    etag: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.tenant_id, self.user_key, self.surface)

    @property
    def chat_ids(self) -> set[str]:
        """Every id this reference's chat is known by (the current one first among equals)."""
        return {self.conversation_id, *self.conversation_aliases}

    def remember_chat_id(self, previous: str | None) -> None:
        """Keep ``previous`` as another id of this chat when it and the current id are the same personal
        chat seen through Graph and through Teams' activities (one of them is Graph's ``@unq.gbl.spaces``)."""
        if not previous or previous == self.conversation_id:
            return
        if GRAPH_PERSONAL_CHAT_SUFFIX in previous or GRAPH_PERSONAL_CHAT_SUFFIX in self.conversation_id:
            kept = [a for a in self.conversation_aliases if a not in (previous, self.conversation_id)]
            self.conversation_aliases = [*kept, previous][-MAX_CHAT_ALIASES:]

    @property
    def doc_id(self) -> str:
        return reference_id(self.tenant_id, self.user_key, self.surface)

    def is_expired(self, at: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or now())


GRAPH_PERSONAL_CHAT_SUFFIX = "@unq.gbl.spaces"
MAX_CHAT_ALIASES = 4


def reference_id(tenant_id: str, user_key: str, surface: str) -> str:
    return f"{tenant_id}|{user_key}|{surface}"


def person_id(tenant_id: str, user_key: str) -> str:
    return f"{tenant_id}|{user_key}"


@dataclass(slots=True)
class Delivery(Record):
    """One message to one person: the outbox entry and, later, its delivery report."""

    id: str
    owner: str  # the id of the API key (or built-in caller) that asked for it: idempotency is per key
    tenant_id: str
    user_key: str
    recipient: str  # as the caller wrote it
    content: dict[str, Any]  # text, card, summary: erased by ForgetRecipient once final
    status: str = DeliveryStatus.QUEUED
    kind: str = "message"  # or "cardWait"
    surface: str = Surface.TEAMS
    conversation_id: str | None = None
    service_url: str | None = None
    message_id: str | None = None
    attempts: int = 0
    not_before: float = field(default_factory=now)
    lease_owner: str | None = None
    lease_until: float | None = None
    error: dict[str, Any] | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None  # of the body sent with idempotency_key: a reuse with another body is refused
    broadcast_id: str | None = None
    deliver_at: float | None = None
    response: dict[str, Any] | None = None
    responded_by: dict[str, Any] | None = None
    responded_at: float | None = None
    card_type: str | None = None  # the maker's label for the card, matched by OnCardSubmitted
    wait_until: float | None = None  # card-and-wait: when the wait ends without an answer (None: never)
    wait_outcome: str | None = None  # card-and-wait ended without an answer: "expired" or "cancelled"
    callback_id: str | None = None  # card-and-wait: the one notification that posts the final answer
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    delivered_at: float | None = None
    deleted_at: float | None = None
    expires_at: float | None = None
    # Engagement (bot/engagement): first read receipt covering it, when a recall withdrew it, which
    # version of its broadcast's content it carries, and for a campaign operation (kind
    # "broadcastUpdate"/"broadcastRecall") the delivery it changes.
    read_at: float | None = None
    recalled_at: float | None = None
    revision: int = 0
    target_id: str | None = None
    # Proactive installation through Graph (docs/graph.md): asked for, how the person was reached
    # (reference | installed | repaired), what the install did, and whether the one repair was spent.
    install_if_missing: bool = False
    reached_by: str | None = None
    install_outcome: str | None = None
    repair_tried: bool = False
    etag: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(slots=True)
class Broadcast(Record):
    """One message to many people; its deliveries carry its id."""

    id: str
    owner: str
    tenant_id: str | None
    content: dict[str, Any]
    recipients: list[str] | None  # None = every active person of the tenant
    status: str = "preparing"  # preparing -> running -> completed
    total: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    card_type: str | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    completed_at: float | None = None
    expires_at: float | None = None
    request_hash: str | None = None  # of the StartBroadcast body, when it came with an idempotencyKey
    # UpdateBroadcast / RecallBroadcast (bot/engagement/campaigns.py): the content's version and when
    # each change was asked for and finished.
    revision: int = 0
    update_requested_at: float | None = None
    update_completed_at: float | None = None
    recall_requested_at: float | None = None
    recall_completed_at: float | None = None
    # Audiences and installation (docs/graph.md): Entra groups and teams expanded in the background.
    install_if_missing: bool = False
    groups: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    include_guests: bool = False
    expanded: int = 0  # audience members read so far while preparing (shown by GetBroadcast)
    # A long recipient list lives in this many chunk records (Store.broadcasts.read_chunk), and
    # ``recipients`` is then empty: one record of 100,000 addresses would pass Cosmos DB's 2 MB.
    recipient_chunks: int = 0
    etag: str | None = None


@dataclass(slots=True)
class ApiKey(Record):
    """A connector API key; only a hash of its secret is kept."""

    id: str  # the public key id embedded in the key
    name: str
    secret_hash: str
    scopes: list[str]
    tenant_id: str | None = None
    created_at: float = field(default_factory=now)
    revoked_at: float | None = None
    etag: str | None = None


@dataclass(slots=True)
class Subscription(Record):
    """A Power Automate webhook trigger registration."""

    id: str
    owner: str  # the id of the API key (or built-in caller) that subscribed
    event: str
    callback_url: str
    tenant_id: str | None = None
    card_type: str | None = None  # OnCardSubmitted: only cards sent with this cardType
    created_at: float = field(default_factory=now)
    failures: int = 0
    etag: str | None = None


@dataclass(slots=True)
class Notification(Record):
    """One event on its way to one webhook subscriber: the callback outbox.

    Written in the same turn that raised the event, so a callback still being retried when the
    process stops is picked up again by the next relay that runs (at least once; ``eventId`` in the
    body lets a flow tell a repeat). ``expires_at`` bounds how long an event may wait at all.
    """

    id: str  # the event id sent in the body
    subscription_id: str
    body: dict[str, Any]  # the JSON posted to the callback (it may quote the person's message)
    tenant_id: str | None = None
    user_key: str | None = None  # whom it is about, so ForgetRecipient can erase it
    attempts: int = 0
    not_before: float = field(default_factory=now)
    lease_owner: str | None = None
    lease_until: float | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    expires_at: float | None = None
    etag: str | None = None

    def is_due(self, at: float) -> bool:
        """Waiting for its next attempt and not held by a live lease."""
        return self.not_before <= at and (self.lease_until is None or self.lease_until <= at)
