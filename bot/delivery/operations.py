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
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from teams_proactive.bot.delivery.messages import build_activity
from teams_proactive.bot.delivery.metrics import THROTTLED
from teams_proactive.bot.delivery.policy import backoff_seconds, judge, mark_reference
from teams_proactive.bot.model import Delivery, DeliveryStatus, now
from teams_proactive.bot.outbound import ConnectorError

if TYPE_CHECKING:
    from teams_proactive.bot.delivery.dispatcher import Dispatcher

log = logging.getLogger(__name__)

UPDATE_KIND = "broadcastUpdate"
RECALL_KIND = "broadcastRecall"
OPERATION_KINDS = frozenset({UPDATE_KIND, RECALL_KIND})
GONE_CODES = frozenset({"ActivityNotFoundInConversation", "MessageNotFound", "NotFound"})


async def run_operation(dispatcher: Dispatcher, operation: Delivery) -> None:
    """Apply one claimed operation and write its outcome back under the dispatcher's lease."""
    store = dispatcher._store
    target = await store.outbox.get(operation.target_id or "")
    content: dict[str, object] | None = None
    revision = 0
    if target is not None and operation.kind != RECALL_KIND and target.broadcast_id:
        broadcast = await store.broadcasts.get(target.broadcast_id)
        if broadcast is not None and broadcast.recall_requested_at is None:
            content, revision = broadcast.content, broadcast.revision
    if not _needed(operation, target, revision):
        await _done(dispatcher, operation, "Nothing to change: the message was already changed or is gone.")
        return
    assert target is not None and target.conversation_id and target.service_url and target.message_id
    cid = target.conversation_id
    pacer, limiter = dispatcher._pacer, dispatcher._limiter
    delay = pacer.delay(cid)
    if delay > 0:
        dispatcher.stats["paced"] += 1
        await dispatcher._finish(operation, retry_in=delay)
        return
    pacer.reserve(cid)
    called = False
    try:
        await limiter.acquire(operation.tenant_id)
        await dispatcher._keep_lease(operation)
        operation.attempts += 1
        pacer.sent(cid)
        called = True
        if operation.kind == RECALL_KIND:
            await dispatcher._client.delete(target.service_url, cid, target.message_id)
        else:
            assert content is not None
            activity = build_activity(content, conversation_id=cid, tenant_id=target.tenant_id)
            await dispatcher._client.update(target.service_url, cid, target.message_id, activity)
    except ConnectorError as exc:
        gone = operation.kind == RECALL_KIND and exc.status == 404 and (exc.code in GONE_CODES or not exc.code)
        if not gone:
            await _failed(dispatcher, operation, exc)
            return
    finally:
        if not called:
            pacer.release(cid)
    await _record_on_target(dispatcher, operation, target.id, content, revision)
    await _done(dispatcher, operation, None)


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
    dispatcher: Dispatcher, operation: Delivery, target_id: str, content: dict[str, object] | None, revision: int
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

    await dispatcher._store.outbox.update(target_id, change)


async def _done(dispatcher: Dispatcher, operation: Delivery, note: str | None) -> None:
    operation.status = DeliveryStatus.DELIVERED
    operation.delivered_at = now()
    operation.error = {"code": "NothingToChange", "message": note} if note else None
    await dispatcher._finish(operation)


async def _failed(dispatcher: Dispatcher, operation: Delivery, exc: ConnectorError) -> None:
    verdict = judge(exc)
    if exc.status == 429:
        dispatcher.stats["throttled"] += 1
        THROTTLED.inc()
        dispatcher._limiter.pause(operation.tenant_id, exc.retry_after or 1.0)
    settings = dispatcher.settings
    if verdict.retry and operation.attempts < settings.max_attempts:
        dispatcher.stats["retried"] += 1
        delay = backoff_seconds(
            operation.attempts, exc.retry_after, base=settings.backoff_base_seconds, cap=settings.backoff_cap_seconds
        )
        await dispatcher._finish(operation, retry_in=delay)
        return
    what = "recall" if operation.kind == RECALL_KIND else "update"
    operation.status = DeliveryStatus.FAILED
    operation.error = {"code": verdict.error_code, "message": f"The {what} failed: {verdict.message}"}
    log.warning("campaign %s of %s failed: %s %s", what, operation.target_id, exc.status, exc.code)
    await dispatcher._finish(operation)
    # A blocked or gone chat is the person's status, whichever call to Teams found out.
    await mark_reference(dispatcher._store, operation, verdict)
