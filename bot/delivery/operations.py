"""How the dispatcher carries out a campaign operation: the PUT or DELETE of one delivered broadcast message.

Operations are outbox entries (bot/delivery/campaigns.py) claimed with the sends, so they share
everything a send has: the lease (a crash resumes them), retries with backoff, the per-chat windows
and the per-tenant budget of every call to Teams (DESIGN.md section 8).

The message changed is the operation's ``target_id``. Before calling Teams the operation checks the
target again: a message already recalled, already at the newest revision, or no longer delivered is
left alone, so an operation repeated after a crash does not call Teams a second time unless the
crash came between the call and its record. A recall that finds the message already gone (404
``ActivityNotFoundInConversation``, Microsoft Learn "Messages in bot conversations", status codes)
counts as done.

The dispatcher hands each operation an ``OperationContext``: the few things of its own an operation
uses (the store, the client, the pacing, the lease and the outcome writer), so this module never
needs the dispatcher itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from teams_proactive.bot.delivery.messages import build_activity
from teams_proactive.bot.delivery.metrics import THROTTLED
from teams_proactive.bot.delivery.pacing import ConversationPacer, TenantRateLimiter
from teams_proactive.bot.delivery.policy import backoff_seconds, judge, mark_reference
from teams_proactive.bot.model import Delivery, DeliveryStatus, now
from teams_proactive.bot.outbound import BotConnectorClient, ConnectorError
from teams_proactive.bot.store.base import Store

log = logging.getLogger(__name__)

UPDATE_KIND = "broadcastUpdate"
RECALL_KIND = "broadcastRecall"
OPERATION_KINDS = frozenset({UPDATE_KIND, RECALL_KIND})
GONE_CODES = frozenset({"ActivityNotFoundInConversation", "MessageNotFound", "NotFound"})


class Finish(Protocol):
    """Writes a claimed entry's outcome back under the lease (``retry_in``: put it back for later)."""

    def __call__(self, delivery: Delivery, *, retry_in: float | None = None) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationContext:
    """What an operation uses of the dispatcher that claimed it; built once by the dispatcher."""

    store: Store
    client: BotConnectorClient
    pacer: ConversationPacer
    limiter: TenantRateLimiter
    stats: dict[str, int]  # the dispatcher's counters (paced, throttled, retried)
    finish: Finish
    keep_lease: Callable[[Delivery], Awaitable[None]]  # renews the lease before a call to Teams
    max_attempts: int
    backoff_base_seconds: float
    backoff_cap_seconds: float


async def run_operation(context: OperationContext, operation: Delivery) -> None:
    """Apply one claimed operation and write its outcome back under the dispatcher's lease."""
    store = context.store
    target = await store.outbox.get(operation.target_id or "")
    content: dict[str, object] | None = None
    revision = 0
    if target is not None and operation.kind != RECALL_KIND and target.broadcast_id:
        broadcast = await store.broadcasts.get(target.broadcast_id)
        if broadcast is not None and broadcast.recall_requested_at is None:
            content, revision = broadcast.content, broadcast.revision
    if not _needed(operation, target, revision):
        await _done(context, operation, "Nothing to change: the message was already changed or is gone.")
        return
    assert target is not None and target.conversation_id and target.service_url and target.message_id
    cid = target.conversation_id
    pacer, limiter = context.pacer, context.limiter
    delay = pacer.delay(cid)
    if delay > 0:
        context.stats["paced"] += 1
        await context.finish(operation, retry_in=delay)
        return
    pacer.reserve(cid)
    called = False
    try:
        await limiter.acquire(operation.tenant_id)
        await context.keep_lease(operation)
        operation.attempts += 1
        pacer.sent(cid)
        called = True
        if operation.kind == RECALL_KIND:
            await context.client.delete(target.service_url, cid, target.message_id)
        else:
            assert content is not None
            activity = build_activity(content, conversation_id=cid, tenant_id=target.tenant_id)
            await context.client.update(target.service_url, cid, target.message_id, activity)
    except ConnectorError as exc:
        gone = operation.kind == RECALL_KIND and exc.status == 404 and (exc.code in GONE_CODES or not exc.code)
        if not gone:
            await _failed(context, operation, exc)
            return
    finally:
        if not called:
            pacer.release(cid)
    await _record_on_target(context, operation, target.id, content, revision)
    await _done(context, operation, None)


def _needed(operation: Delivery, target: Delivery | None, revision: int) -> bool:
    if target is None or target.status != DeliveryStatus.DELIVERED or not target.message_id:
        return False
    if target.deleted_at is not None:
        return False  # deleted on its own (DeleteMessage): nothing of it is left in the chat
    if not (target.conversation_id and target.service_url):
        return False  # erased by ForgetRecipient: nothing points at the chat any more
    if operation.kind == RECALL_KIND:
        return True
    return revision > target.revision


async def _record_on_target(
    context: OperationContext, operation: Delivery, target_id: str, content: dict[str, object] | None, revision: int
) -> None:
    at = now()

    def change(current: Delivery) -> Delivery | None:
        if operation.kind == RECALL_KIND:
            if current.status == DeliveryStatus.RECALLED:
                return None
            current.status = DeliveryStatus.RECALLED
            current.recalled_at = at
            current.content = {}  # gone from the chat: the text is not kept either
            return current
        if current.revision >= revision or content is None:
            return None
        current.content = dict(content)
        current.revision = revision
        return current

    await context.store.outbox.update(target_id, change)


async def _done(context: OperationContext, operation: Delivery, note: str | None) -> None:
    operation.status = DeliveryStatus.DELIVERED
    operation.delivered_at = now()
    operation.error = {"code": "NothingToChange", "message": note} if note else None
    await context.finish(operation)


async def _failed(context: OperationContext, operation: Delivery, exc: ConnectorError) -> None:
    verdict = judge(exc)
    if exc.status == 429:
        context.stats["throttled"] += 1
        THROTTLED.inc()
        context.limiter.pause(operation.tenant_id, exc.retry_after or 1.0)
    if verdict.retry and operation.attempts < context.max_attempts:
        context.stats["retried"] += 1
        delay = backoff_seconds(
            operation.attempts,
            exc.retry_after,
            base=context.backoff_base_seconds,
            cap=context.backoff_cap_seconds,
        )
        await context.finish(operation, retry_in=delay)
        return
    what = "recall" if operation.kind == RECALL_KIND else "update"
    operation.status = DeliveryStatus.FAILED
    operation.error = {"code": verdict.error_code, "message": f"The {what} failed: {verdict.message}"}
    log.warning("campaign %s of %s failed: %s %s", what, operation.target_id, exc.status, exc.code)
    await context.finish(operation)
    # A blocked or gone chat is the person's status, whichever call to Teams found out.
    await mark_reference(context.store, operation, verdict)
