"""Read receipts: Teams tells the bot the last message a person read in their chat; we mark deliveries read.

Teams sends an ``event`` activity named ``application/vnd.microsoft.readReceipt`` to a bot whose app
holds the resource-specific permission ``ChatMessageReadReceipt.Read.Chat``, in personal chats, with
``value.lastReadMessageId`` (Microsoft Learn, Teams platform, "Messages in bot conversations",
"Receive a read receipt"). Teams message ids in a chat are numbers that grow with time: every message
whose id is at most ``lastReadMessageId`` has been read (the SDK's ``ReadReceiptInfo.is_message_read``
compares them the same way).

People can turn read receipts off in Teams, and then nothing arrives: a delivery without ``read_at``
means "no receipt", never "not seen".
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Collection
from typing import Any

from teams_proactive.bot.events import BotEvent, EventSink, NoEvents
from teams_proactive.bot.model import Delivery, DeliveryStatus, now
from teams_proactive.bot.store.base import PersonKey, Store

log = logging.getLogger(__name__)

READ_RECEIPT_EVENT = "application/vnd.microsoft.readReceipt"
# The kinds of delivery that put a message in the person's chat (campaign operations do not).
MESSAGE_KINDS = frozenset({"message", "cardWait"})
PAGE = 500
MESSAGE_NUMBER = re.compile(r"[0-9]{1,20}")


def message_number(message_id: str | None) -> int | None:
    """A Teams message id as the number it is, or None when it is not one (then it is never compared)."""
    if not message_id:
        return None
    # ASCII digits only, at most 20 (a 64-bit number): str.isdigit() also takes "²" and Arabic-Indic
    # digits, and int() raises on the first and on thousands of digits.
    text = str(message_id).strip()
    if not MESSAGE_NUMBER.fullmatch(text):
        return None
    return int(text)


async def apply_read_receipt(
    store: Store,
    person: PersonKey,
    conversation_id: str | Collection[str],
    last_read_message_id: Any,
    *,
    events: EventSink | None = None,
    at: float | None = None,
) -> list[Delivery]:
    """Mark read every delivery to ``person`` in ``conversation_id`` up to ``last_read_message_id``.

    Only the first receipt sets ``read_at``. A receipt whose id is not a Teams message number, or for
    a chat none of this person's deliveries went to, changes nothing. Returns the deliveries marked now.
    """
    last = message_number(last_read_message_id if isinstance(last_read_message_id, str) else None)
    chats = _ids(conversation_id)
    if last is None or not chats:
        log.info("read receipt without a usable lastReadMessageId; ignored")
        return []
    moment = at if at is not None else now()
    marked: list[Delivery] = []
    token: str | None = None
    while True:
        page = await store.outbox.page(person=person, status=DeliveryStatus.DELIVERED, limit=PAGE, token=token)
        for item in page.items:
            if not _covered(item, chats, last):
                continue

            def mark(current: Delivery) -> Delivery | None:
                # Re-checked on the stored record: another receipt may have marked it meanwhile.
                if current.read_at is not None or not _covered(current, chats, last):
                    return None
                current.read_at = moment
                return current

            updated = await store.outbox.update(item.id, mark)
            if updated is not None and updated.read_at == moment:
                marked.append(updated)
        token = page.next_token
        if not token:
            break
    if marked:
        log.info("read receipt marked %d deliveries read", len(marked))
        sink = events or NoEvents()
        for delivery in marked:
            await sink.publish(BotEvent.MESSAGE_READ, delivery.tenant_id, read_event(delivery), person)
    return marked


async def record_card_answer(
    store: Store, person: PersonKey, conversation_id: str | Collection[str], reply_to_id: str | None
) -> bool:
    """A card the bot sent was answered: note when (first answer only), for GetBroadcast's "answered".

    Teams sets ``replyToId`` of a card's submit activity to the card message's id. Only the time is
    kept: the answer itself goes to the flows subscribed to OnCardSubmitted (and, for a card sent with
    SendCardAndWait, to its own record). Returns whether a delivery was marked.
    """
    chats = _ids(conversation_id)
    if not reply_to_id or not chats:
        return False
    marked = False
    at = now()
    token: str | None = None
    while not marked:
        page = await store.outbox.page(person=person, limit=PAGE, token=token)
        for item in page.items:
            if item.message_id != reply_to_id or item.conversation_id not in chats or item.kind != "message":
                continue

            def answered(current: Delivery) -> Delivery | None:
                if current.responded_at is not None or current.message_id != reply_to_id:
                    return None
                current.responded_at = at
                return current

            updated = await store.outbox.update(item.id, answered)
            marked = updated is not None and updated.responded_at == at
            break
        token = page.next_token
        if not token:
            break
    return marked


def _ids(conversation_id: str | Collection[str]) -> frozenset[str]:
    """One chat id, or every id of one chat (Graph's and Teams' ids of a personal chat: Reference.chat_ids)."""
    ids = [conversation_id] if isinstance(conversation_id, str) else list(conversation_id)
    return frozenset(i for i in ids if i)


def _covered(d: Delivery, chats: frozenset[str], last: int) -> bool:
    number = message_number(d.message_id)
    return (
        d.read_at is None
        and d.kind in MESSAGE_KINDS
        and d.status == DeliveryStatus.DELIVERED
        and d.conversation_id in chats
        and number is not None
        and number <= last
    )


def read_event(d: Delivery) -> dict[str, Any]:
    """What the OnMessageRead trigger posts (no message text: a flow asks GetMessage if it needs more)."""
    return {
        "id": d.id,
        "recipient": d.recipient,
        "broadcastId": d.broadcast_id,
        "teamsMessageId": d.message_id,
        "conversationId": d.conversation_id,
        "deliveredAt": _iso(d.delivered_at),
        "readAt": _iso(d.read_at),
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
