"""Records for the conformance suite: small valid references, deliveries, broadcasts and notifications."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from teams_proactive.bot.model import (
    Broadcast,
    Delivery,
    Notification,
    Reference,
    Surface,
)
from teams_proactive.bot.store.base import Store

_seq = itertools.count(1)


def make_ref(tenant: str = "t1", user: str = "u1", surface: str = Surface.TEAMS, **fields: Any) -> Reference:
    n = next(_seq)
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "user_key": user,
        "surface": surface,
        "conversation_id": f"a:conv-{user}-{surface}-{n}",
        "service_url": "https://smba.example/teams/",
        "channel_id": "m365extensions" if surface == Surface.M365_COPILOT else "msteams",
        "user_id": f"29:{user}",
        "bot_id": "28:bot",
        "conversation_reference": {"conversation": {"id": f"a:conv-{user}"}, "serviceUrl": "https://smba.example/"},
    }
    values.update(fields)
    return Reference(**values)


def make_delivery(delivery_id: str | None = None, **fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "id": delivery_id or uuid.uuid4().hex,
        "owner": "key-a",
        "tenant_id": "t1",
        "user_key": "u1",
        "recipient": "adele@contoso.example",
        "content": {"text": "hello"},
    }
    values.update(fields)
    return Delivery(**values)


def make_broadcast(broadcast_id: str | None = None, **fields: Any) -> Broadcast:
    values: dict[str, Any] = {
        "id": broadcast_id or uuid.uuid4().hex,
        "owner": "key-a",
        "tenant_id": "t1",
        "content": {"text": "to everyone"},
        "recipients": ["a@contoso.example", "b@contoso.example"],
    }
    values.update(fields)
    return Broadcast(**values)


async def write_new(store: Store, ref: Reference) -> Reference:
    return await store.references.write(ref, None)


def race_first_write(store: Store, method: str, interfere: Any) -> list[int]:
    """Make the first call of ``store.<method>`` lose a race: another writer changes the record
    between the caller's read and its write. Returns a list whose length counts the calls."""
    original = getattr(store, method)
    calls: list[int] = []

    async def racing(record: Any, etag: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            await interfere(original)
        return await original(record, etag)

    setattr(store, method, racing)
    return calls


def make_notification(notification_id: str | None = None, **fields: Any) -> Notification:
    values: dict[str, Any] = {
        "id": notification_id or uuid.uuid4().hex,
        "subscription_id": "s1",
        "body": {"event": "userMessage", "text": "where is my laptop?"},
        "tenant_id": "t1",
        "user_key": "u1",
    }
    values.update(fields)
    return Notification(**values)
