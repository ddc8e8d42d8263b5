"""UpdateBroadcast and RecallBroadcast: change or withdraw every message of a broadcast, durably, at Teams' pace.

A request only records the change on the broadcast (a new content ``revision``, or
``recall_requested_at``) and answers. The broadcast coordinator (the dispatcher leader's
``BroadcastService.step``) then sweeps the broadcast's deliveries until nothing is left to do:

- a delivery still waiting is changed in the outbox (new content, or status ``recalled``): it never
  leaves with the old text, or at all;
- a delivered one gets a **campaign operation**: an outbox entry of kind ``broadcastUpdate`` or
  ``broadcastRecall`` pointing at it (``target_id``), with an id derived from the target and the
  revision, so a sweep repeated after a crash creates nothing twice. The dispatcher claims
  operations like sends (leases, retries, the same per-tenant budget and per-chat windows) and
  makes the PUT or DELETE (bot/delivery/operations.py);
- a delivery being sent right now is looked at again on the next pass, once it is delivered.

Operations are kept under their own broadcast key (``operations_key``), so the broadcast's own
counts stay "one row per person" and an operation's progress is one ``count_deliveries`` away.
"""

from __future__ import annotations

import logging
from typing import Any

from teams_proactive.bot import errors
from teams_proactive.bot.cardtags import BROADCAST_KEY, tagged
from teams_proactive.bot.delivery.messages import DEFAULT_MAX_MESSAGE_KB
from teams_proactive.bot.delivery.operations import RECALL_KIND, UPDATE_KIND
from teams_proactive.bot.delivery.service import Caller, validate_content
from teams_proactive.bot.model import Broadcast, Delivery, DeliveryStatus, now
from teams_proactive.bot.store.base import Store

log = logging.getLogger(__name__)

PAGE = 500
WAITING = (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED)


def operations_key(broadcast_id: str, kind: str, revision: int = 0) -> str:
    """The broadcast key an operation's outbox entries carry (never a real broadcast's id: ids are hex)."""
    return f"{broadcast_id}~recall" if kind == RECALL_KIND else f"{broadcast_id}~update~{revision}"


def operation_id(target_id: str, kind: str, revision: int = 0) -> str:
    return f"{target_id}~recall" if kind == RECALL_KIND else f"{target_id}~u{revision}"


# ---- API side -----------------------------------------------------------------------------------
async def _visible_broadcast(store: Store, caller: Caller, broadcast_id: str) -> Broadcast:
    broadcast = await store.broadcasts.get(broadcast_id)
    if broadcast is None or not caller.can_see(broadcast.tenant_id):
        raise errors.Rejected("NotFound", f"No broadcast with id '{broadcast_id}'.", "id")
    return broadcast


def _recalled(broadcast_id: str) -> errors.Rejected:
    return errors.Rejected(
        "BroadcastRecalled", f"Broadcast '{broadcast_id}' was recalled; it cannot be changed any more.", "id"
    )


async def update_broadcast(
    store: Store,
    caller: Caller,
    broadcast_id: str,
    content: dict[str, Any],
    *,
    max_message_kb: float = DEFAULT_MAX_MESSAGE_KB,
) -> Broadcast:
    """Record new content for every message of the broadcast; the coordinator applies it."""
    validate_content(content, max_message_kb)
    await _visible_broadcast(store, caller, broadcast_id)
    if isinstance(content.get("card"), dict):
        # As StartBroadcast does: its buttons carry the broadcast id, so a press names the message.
        content = {**content, "card": tagged(content["card"], BROADCAST_KEY, broadcast_id)}
        validate_content(content, max_message_kb)
    refused = False

    def change(current: Broadcast) -> Broadcast | None:
        nonlocal refused
        refused = current.recall_requested_at is not None
        if refused:
            return None
        current.content = content
        current.revision += 1
        current.update_requested_at = now()
        current.update_completed_at = None
        _reopen(current)
        return current

    updated = await store.broadcasts.update(broadcast_id, change)
    if refused or updated is None:
        raise _recalled(broadcast_id)
    log.info("broadcast %s: update to revision %d requested", broadcast_id, updated.revision)
    return updated


async def recall_broadcast(store: Store, caller: Caller, broadcast_id: str) -> Broadcast:
    """Record the recall (asking twice is the same as once); the coordinator carries it out."""
    await _visible_broadcast(store, caller, broadcast_id)

    def change(current: Broadcast) -> Broadcast | None:
        if current.recall_requested_at is not None:
            return None
        current.recall_requested_at = now()
        _reopen(current)
        return current

    recalled = await store.broadcasts.update(broadcast_id, change)
    if recalled is None:
        raise errors.Rejected("NotFound", f"No broadcast with id '{broadcast_id}'.", "id")
    log.info("broadcast %s: recall requested", broadcast_id)
    return recalled


def _reopen(broadcast: Broadcast) -> None:
    # A finished broadcast runs again until the change is done: the coordinator only looks at
    # unfinished broadcasts, and GetBroadcast shows it as running meanwhile.
    if broadcast.status == "completed":
        broadcast.status = "running"
        broadcast.completed_at = None


def change_pending(broadcast: Broadcast) -> bool:
    """An update or a recall is asked for and not finished yet."""
    recall = broadcast.recall_requested_at is not None and broadcast.recall_completed_at is None
    update = broadcast.update_requested_at is not None and broadcast.update_completed_at is None
    return recall or update


# ---- coordinator side ---------------------------------------------------------------------------
async def sweep(store: Store, broadcast: Broadcast) -> bool:
    """One pass over a broadcast with a change pending; returns True when new operations were queued.

    Marks the update or recall complete once a pass finds nothing waiting, nothing being sent, and
    every operation final. A recall supersedes an update still in progress.
    """
    if broadcast.recall_requested_at is not None:
        if broadcast.recall_completed_at is None:
            return await _sweep(store, broadcast, RECALL_KIND)
        return False
    if broadcast.update_requested_at is not None and broadcast.update_completed_at is None:
        return await _sweep(store, broadcast, UPDATE_KIND)
    return False


async def _sweep(store: Store, broadcast: Broadcast, kind: str) -> bool:
    revision = broadcast.revision
    key = operations_key(broadcast.id, kind, revision)
    settled = broadcast.status != "preparing"  # expansion may still add deliveries
    queued = 0
    # Operations already queued by an earlier pass: read once, so a pass over a large broadcast does
    # not try (and skip) one insert per delivered message every time.
    existing = await _ids(store, key)
    token: str | None = None
    while True:
        page = await store.outbox.page(broadcast_id=broadcast.id, limit=PAGE, token=token)
        operations: list[Delivery] = []
        for d in page.items:
            if d.status == DeliveryStatus.DELIVERED and operation_id(d.id, kind, revision) in existing:
                continue
            if kind == UPDATE_KIND and d.revision >= revision:
                continue
            if d.status in WAITING:
                if not await _change_waiting(store, d.id, kind, broadcast):
                    settled = False  # claimed meanwhile: look again once it is delivered
            elif d.status == DeliveryStatus.SENDING:
                settled = False
            elif d.status == DeliveryStatus.DELIVERED and d.message_id and d.deleted_at is None:
                # (A message deleted on its own with DeleteMessage is no longer in the chat.)
                operations.append(_operation(d, kind, revision, key))
        if operations:
            queued += await store.outbox.create_many(operations)
        token = page.next_token
        if not token:
            break
    counts = await store.outbox.count(key)
    if any(counts.get(s, 0) for s in (*WAITING, DeliveryStatus.SENDING)):
        settled = False
    if settled:
        await store.broadcasts.update(broadcast.id, lambda current: _finish(current, kind, revision))
        log.info("broadcast %s: %s finished (%s)", broadcast.id, "recall" if kind == RECALL_KIND else "update", counts)
    return queued > 0


async def _ids(store: Store, key: str) -> set[str]:
    ids: set[str] = set()
    token: str | None = None
    while True:
        page = await store.outbox.page(broadcast_id=key, limit=PAGE, token=token)
        ids.update(d.id for d in page.items)
        token = page.next_token
        if not token:
            return ids


async def _change_waiting(store: Store, delivery_id: str, kind: str, broadcast: Broadcast) -> bool:
    """Cancel (recall) or re-word (update) a delivery that has not left; False if it left meanwhile."""
    changed = False

    def change(current: Delivery) -> Delivery | None:
        nonlocal changed
        changed = current.status in WAITING
        if not changed:
            return None
        if kind == RECALL_KIND:
            current.status = DeliveryStatus.RECALLED
            current.recalled_at = now()
            current.content = {}
            current.lease_owner = current.lease_until = None
            if broadcast.expires_at is not None:
                current.expires_at = broadcast.expires_at
        else:
            current.content = broadcast.content
            current.revision = broadcast.revision
        return current

    current = await store.outbox.update(delivery_id, change)
    return changed or current is None


def apply_before_sending(delivery: Delivery, broadcast: Broadcast) -> None:
    """A delivery created after an update or recall was asked for starts out changed."""
    if broadcast.recall_requested_at is not None:
        delivery.status = DeliveryStatus.RECALLED
        delivery.recalled_at = now()
        delivery.content = {}
    else:
        delivery.content = broadcast.content
        delivery.revision = broadcast.revision


def _operation(target: Delivery, kind: str, revision: int, key: str) -> Delivery:
    at = now()
    return Delivery(
        id=operation_id(target.id, kind, revision),
        owner=target.owner,
        tenant_id=target.tenant_id,
        user_key=target.user_key,
        recipient=target.recipient,
        # Not the message: the dispatcher reads the new content from the broadcast when it runs.
        content={"operation": kind},
        kind=kind,
        surface=target.surface,
        broadcast_id=key,
        target_id=target.id,
        revision=revision,
        not_before=at,
        created_at=at,
        updated_at=at,
        expires_at=target.expires_at,
    )


def _finish(current: Broadcast, kind: str, revision: int) -> Broadcast | None:
    at = now()
    if kind == RECALL_KIND:
        if current.recall_completed_at is not None:
            return None
        current.recall_completed_at = at
        if current.update_requested_at is not None and current.update_completed_at is None:
            current.update_completed_at = at  # nothing left to update
    else:
        if current.revision != revision or current.update_completed_at is not None:
            return None  # a newer update came in: its own sweep finishes it
        current.update_completed_at = at
    return current
