"""Card-and-wait: send an Adaptive Card, record the first answer, POST it to the flow's callback, show it on the card.

SendCardAndWait is a Power Automate *webhook action*: its body carries the run's callback URL
(``x-ms-notification-url``), the engine waits without polling, and the first answer is POSTed to
that URL. The callback goes through the webhook relay the triggers use (``teams_proactive.bot.webhooks``): each
waiting card is a subscription (event ``cardResponse``, id ``cardwait.<card id>``) with one
notification in the callback outbox, so it is retried, survives a restart, and a ``DELETE`` of the
subscription (the engine does it when the run is cancelled) stops it. The notification's body is
made when it is posted (``callback_body``), from the card's record, which decides the outcome:
the first of "answered", "expired" (``timeoutMinutes``), "cancelled" wins by a conditional write.
At most one notification per card is posted (``callback_id`` on the record is claimed first).

The card's id (its delivery id) is put into the data of every Action.Submit and Action.Execute
button, so the answer finds its way back whether Teams posts it as a message with a value
(Action.Submit) or as an ``adaptiveCard/action`` invoke (Action.Execute). The card in the chat is
then replaced by a read-only copy that shows what was answered, by whom and when, like the built-in
"Post adaptive card and wait for a response" does.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot import errors
from teams_proactive.bot.callback_guard import CallbackPolicy
from teams_proactive.bot.cardtags import (
    BROADCAST_KEY,
    CARD_WAIT_KEY,
    MESSAGE_KEY,
    PRESS_REFUSED,
    SUBMIT_ACTIONS,
    submitted_values,
    tagged,
)
from teams_proactive.bot.delivery.broadcasts import broadcast_delivery_id
from teams_proactive.bot.delivery.budget import TeamsBudget
from teams_proactive.bot.delivery.messages import build_activity
from teams_proactive.bot.delivery.service import Caller, DeliveryService, MessageRequest, delivery_id_for
from teams_proactive.bot.inbound.handler import CAPTURED_REFERENCE, CardSubmissionHandler
from teams_proactive.bot.inbound.host import HostTurn
from teams_proactive.bot.model import Delivery, DeliveryStatus, Notification, Reference, Subscription, now
from teams_proactive.bot.outbound import BotConnectorClient, ConnectorError
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.bot.webhooks import check_notification_url

log = logging.getLogger(__name__)

KIND = "cardWait"
CORRELATION_KEY = CARD_WAIT_KEY
CALLBACK_EVENT = "cardResponse"  # the relay's name for a waiting card's callback (never a trigger event)
ID_PREFIX = "cardwait."
# How long an answer waits for the dispatcher to finish writing the send it answers (a click can
# race the write of "delivered"; writing the answer meanwhile would cost the dispatcher its lease).
SETTLE_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.2
# How often a waiting card's callback looks at the card by itself: soon while it is being sent (a
# card Teams refuses ends the wait with "failed"), then daily (an answer recorded just before a
# crash, whose prompt callback was not written yet, still reaches the flow). Store reads, no calls.
SENDING_RECHECK_SECONDS = 15.0
WAITING_RECHECK_SECONDS = 86400.0
MAX_TIMEOUT_MINUTES = 43200  # 30 days: Power Automate's longest run
SECONDS_PER_MINUTE = 60.0  # a seam for tests (a one-minute timeout is too long to wait for in a test)
NOT_FOR_THEM: Any = object()
WAIT_SUFFIX = "wait"  # the notification a card gets when sent; "answer" the one an answer adds
ANSWER_SUFFIX = "answer"


@dataclass(slots=True, kw_only=True)
class CardWaitRequest:
    recipient: str
    card: dict[str, Any]
    # The flow engine's callback (a webhook action); None for a card that is only read later
    # (GetCardResponse; the MCP tool send_card).
    callback_url: str | None = None
    text: str | None = None
    summary: str | None = None
    tenant_id: str | None = None
    idempotency_key: str | None = None
    timeout_minutes: float | None = None
    card_type: str | None = None
    install_if_missing: bool = False


# ---- the card -------------------------------------------------------------------------------
def with_correlation(card: dict[str, Any], card_id: str) -> dict[str, Any]:
    """A copy of ``card`` whose submit buttons all carry ``cardWaitId``."""
    return tagged(card, CARD_WAIT_KEY, card_id)


def pressed_action(card: dict[str, Any], data: dict[str, Any], verb: str | None) -> dict[str, Any] | None:
    """The button the person pressed: its verb (Action.Execute) or its data matching the answer."""
    candidates: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in SUBMIT_ACTIONS:
                candidates.append(node)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(card)
    for action in candidates:
        if verb and action.get("verb") == verb:
            return action
    for action in candidates:
        own = action.get("data") if isinstance(action.get("data"), dict) else {}
        own = submitted_values(own)
        if all(data.get(k) == v for k, v in own.items()):
            if own or len(candidates) == 1:
                return action
    return None


def _display_value(element: dict[str, Any], value: Any) -> str:
    if value is None or value == "":
        return "—"
    kind = element.get("type")
    if kind == "Input.ChoiceSet":
        titles = {str(c.get("value")): str(c.get("title", c.get("value"))) for c in element.get("choices") or []}
        return ", ".join(titles.get(v, v) for v in str(value).split(","))
    if kind == "Input.Toggle":
        return "Yes" if str(value) == str(element.get("valueOn", "true")) else "No"
    return str(value)


def answered_card(
    card: dict[str, Any], values: dict[str, Any], *, button: str | None, responder: str | None, at: float
) -> dict[str, Any]:
    """A read-only copy of the card: inputs show the answer, buttons are gone, a footer says who and when."""
    shown = copy.deepcopy(card)
    for key in ("actions", "refresh", "selectAction"):
        shown.pop(key, None)

    def rewrite(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if not isinstance(item, dict):
                out.append(item)
                continue
            kind = str(item.get("type", ""))
            if kind == "ActionSet":
                continue
            if kind.startswith("Input."):
                label = item.get("label") or item.get("title") or item.get("placeholder") or item.get("id", "")
                out.append(
                    {
                        "type": "FactSet",
                        "facts": [{"title": str(label), "value": _display_value(item, values.get(item.get("id")))}],
                    }
                )
                continue
            item = dict(item)
            item.pop("selectAction", None)
            for container in ("items", "body"):
                if isinstance(item.get(container), list):
                    item[container] = rewrite(item[container])
            if isinstance(item.get("columns"), list):
                item["columns"] = [
                    dict(c, items=rewrite(c.get("items") or [])) if isinstance(c, dict) else c for c in item["columns"]
                ]
            out.append(item)
        return out

    shown["body"] = rewrite(list(shown.get("body") or []))
    when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    who = responder or "someone"
    line = f"**{button}** — answered by {who}, {when}" if button else f"Answered by {who}, {when}"
    shown["body"].append({"type": "TextBlock", "text": line, "wrap": True, "isSubtle": True, "separator": True})
    return shown


# ---- sending, reading, cancelling --------------------------------------------------------------
def subscription_id(card_id: str) -> str:
    return f"{ID_PREFIX}{card_id}"


def card_id_of(notification_or_subscription_id: str) -> str:
    return notification_or_subscription_id.removeprefix(ID_PREFIX).split(".", 1)[0]


def wait_status(d: Delivery) -> str:
    """Where a waiting card stands, as GetCardResponse and the callback say it."""
    if d.responded_at is not None:
        return "responded"
    if d.wait_outcome:
        return d.wait_outcome
    if d.deleted_at is not None:
        return "cancelled"
    if d.status == DeliveryStatus.FAILED:
        return "failed"
    if d.status == DeliveryStatus.DELIVERED:
        return "waiting"
    return "sending"


class CardWaitService:
    """What SendCardAndWait, GetCardResponse and cancelling a wait ask of the bot; also makes the
    callback's body when the relay posts it (``callback_body``)."""

    def __init__(
        self,
        store: Store,
        deliveries: DeliveryService | None,
        wake: Callable[[], None] | None = None,
        *,
        callback_policy: CallbackPolicy | None = None,
    ) -> None:
        self._store = store
        # None inside another bot: there it only records answers (``finished``); the service sends.
        self._deliveries = deliveries
        self._wake = wake or (lambda: None)
        # The same rules as trigger callbacks (bot/callback_guard.py): checked here as a 400, and
        # again on every connection the relay opens.
        self._callback_policy = callback_policy or CallbackPolicy()

    @property
    def _sender(self) -> DeliveryService:
        if self._deliveries is None:
            raise RuntimeError("this card-wait service only records answers (no delivery service)")
        return self._deliveries

    async def start(self, caller: Caller, request: CardWaitRequest) -> Delivery:
        if request.callback_url is not None:
            check_notification_url(request.callback_url, self._callback_policy, "notificationUrl")
        if request.timeout_minutes is not None and not 0 < request.timeout_minutes <= MAX_TIMEOUT_MINUTES:
            raise errors.Rejected(
                "ValidationError", f"timeoutMinutes must be between 1 and {MAX_TIMEOUT_MINUTES}.", "timeoutMinutes"
            )
        # The id must be known before the send, to be put into the card's buttons: the idempotency
        # key fixes it (a caller's own key, namespaced, or a fresh one).
        key = f"cardWait\n{request.idempotency_key}" if request.idempotency_key else uuid.uuid4().hex
        card_id = delivery_id_for(caller.key_id, key)
        at = now()
        message = MessageRequest(
            recipient=request.recipient,
            text=request.text,
            card=with_correlation(request.card, card_id),
            summary=request.summary,
            idempotency_key=key,
            tenant_id=request.tenant_id,
            kind=KIND,
            card_type=request.card_type,
            wait_until=at + request.timeout_minutes * SECONDS_PER_MINUTE if request.timeout_minutes else None,
            install_if_missing=request.install_if_missing,
        )
        delivery, created = await self._sender.submit(caller, message)
        if delivery.kind != KIND:
            raise errors.Rejected(
                "IdempotencyKeyReused", "This idempotency key was used for another message.", "idempotencyKey"
            )
        if request.callback_url is not None:
            await self._listen(caller, delivery, request.callback_url, fresh=created)
        return delivery

    async def _listen(self, caller: Caller, delivery: Delivery, callback_url: str, *, fresh: bool) -> None:
        """Register the run's callback (again, when the engine repeats the call: the newest URL wins)."""
        sid = subscription_id(delivery.id)
        if not fresh:
            await self._store.subscriptions.delete(sid)
            if delivery.callback_id:
                # The final answer went to an earlier callback: this run hears it too.
                await self._store.outbox.update(delivery.id, _reopen_callback)
        await self._store.subscriptions.create(
            Subscription(id=sid, owner=caller.key_id, event=CALLBACK_EVENT, callback_url=callback_url,
                         tenant_id=delivery.tenant_id)
        )  # fmt: skip
        due = now() + (0.0 if not fresh and wait_status(delivery) != "sending" else SENDING_RECHECK_SECONDS)
        if delivery.wait_until is not None:
            due = min(due, delivery.wait_until)
        suffix = WAIT_SUFFIX if fresh else uuid.uuid4().hex[:12]
        await self._store.subscriptions.create_notifications([self._notification(delivery, suffix, due)])
        self._wake()

    @staticmethod
    def _notification(delivery: Delivery, suffix: str, due: float) -> Notification:
        at = now()
        return Notification(
            id=f"{subscription_id(delivery.id)}.{suffix}",
            subscription_id=subscription_id(delivery.id),
            body={},  # made when posted, from the card's record
            tenant_id=delivery.tenant_id,
            user_key=delivery.user_key,
            not_before=due,
            created_at=at,
            updated_at=at,
        )

    async def get(self, caller: Caller, card_id: str) -> Delivery:
        delivery = await self._sender.get(caller, card_id)
        if delivery.kind != KIND:
            raise errors.Rejected("NotFound", f"No card waiting for a response with id '{card_id}'.", "id")
        return delivery

    async def cancel(self, caller: Caller, card_id: str) -> Delivery:
        """Stop waiting (the engine deletes the Location when the run is cancelled): no callback is
        posted any more, and a later press of the card is not taken as its answer."""
        await self.get(caller, card_id)

        def cancel(current: Delivery) -> Delivery | None:
            if current.responded_at is not None or current.wait_outcome:
                return None
            current.wait_outcome = "cancelled"
            return current

        stored = await self._store.outbox.update(card_id, cancel)
        # Without its subscription, the relay drops the card's pending notifications when they fall
        # due; the card's own ones go now.
        await self._store.subscriptions.delete(subscription_id(card_id))
        for suffix in (WAIT_SUFFIX, ANSWER_SUFFIX):
            await self._store.subscriptions.delete_notification(f"{subscription_id(card_id)}.{suffix}")
        log.info("card %s: wait cancelled", card_id)
        if stored is None:  # removed by the retention purge a moment ago: nothing is waiting any more
            raise errors.Rejected("NotFound", f"No card waiting for a response with id '{card_id}'.", "id")
        return stored

    async def finished(self, delivery: Delivery) -> None:
        """The card was answered (or deleted): post that now rather than at the next recheck.

        The card has one callback, taken by the first of its notifications to claim it. The new one
        claims it here, and the card's waiting notification goes only then: a crash before leaves the
        waiting one to post the answer at its recheck. If the waiting one, looking at the card at
        this moment, claimed it first, it stays: it carries the answer, and retries its POST if that
        fails (deleted, the flow would have waited for its timeout)."""
        sid = subscription_id(delivery.id)
        answer_id, wait_id = f"{sid}.{ANSWER_SUFFIX}", f"{sid}.{WAIT_SUFFIX}"
        await self._store.subscriptions.delete_notification(answer_id)  # made once
        await self._store.subscriptions.create_notifications([self._notification(delivery, ANSWER_SUFFIX, now())])
        self._wake()

        def claim(current: Delivery) -> Delivery | None:
            if current.callback_id is not None:
                return None
            current.callback_id = answer_id
            return current

        current = await self._store.outbox.update(delivery.id, claim)  # as it stands, claimed or not
        if current is None or current.callback_id != wait_id:
            await self._store.subscriptions.delete_notification(wait_id)

    async def callback_body(self, notification: Notification) -> dict[str, Any] | float | None:
        """The relay's hook: the body to post, a time to look again, or None to drop the notification."""
        card_id = card_id_of(notification.id)
        delivery = await self._store.outbox.get(card_id)
        if delivery is None:
            # The card is gone (retention, or never written): nothing will ever be posted, so its
            # registration, whose URL carries the run's signature, goes too.
            await self._store.subscriptions.delete(subscription_id(card_id))
            return None
        if delivery.wait_outcome == "cancelled":
            return None
        status = wait_status(delivery)
        if status in ("sending", "waiting"):
            at = now()
            if delivery.wait_until is not None and delivery.wait_until <= at:
                delivery = await self._store.outbox.update(card_id, _expire) or delivery
            else:
                recheck = SENDING_RECHECK_SECONDS if status == "sending" else WAITING_RECHECK_SECONDS
                return min(at + recheck, delivery.wait_until or float("inf"))
        claimed = False

        def claim(current: Delivery) -> Delivery | None:
            nonlocal claimed
            claimed = current.callback_id in (None, notification.id)
            if not claimed or current.callback_id == notification.id:
                return None
            current.callback_id = notification.id
            return current

        delivery = await self._store.outbox.update(card_id, claim) or delivery
        if not claimed:
            return None  # another notification of this card carries (or carried) the final answer
        return present(delivery)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def present(d: Delivery) -> dict[str, Any]:
    """A waiting card as GetCardResponse answers it and as its callback posts it (the same object)."""
    response = d.response or {}
    answered = d.responded_at is not None
    status = wait_status(d)
    error = None
    if status == "failed":
        error = d.error or {"code": "MessageNotDelivered", "message": "Teams did not accept the card."}
    return {
        "id": d.id,
        "status": status,
        "recipient": d.recipient,
        "response": response.get("values") if answered else None,
        "action": response.get("action") if answered else None,
        "verb": response.get("verb") if answered else None,
        "respondedBy": d.responded_by,
        "respondedAt": _iso(d.responded_at),
        "cardType": d.card_type,
        "error": error,
        "conversationId": d.conversation_id,
        "teamsMessageId": d.message_id,
        "createdAt": _iso(d.created_at),
        "waitUntil": _iso(d.wait_until),
    }


def _expire(current: Delivery) -> Delivery | None:
    if current.responded_at is not None or current.wait_outcome or current.deleted_at is not None:
        return None
    if current.status == DeliveryStatus.FAILED:
        return None
    current.wait_outcome = "expired"
    return current


def _reopen_callback(current: Delivery) -> Delivery | None:
    current.callback_id = None
    return current


# ---- answers --------------------------------------------------------------------------------
class CardWaitHandler(CardSubmissionHandler):
    """Describes every card submission for OnCardSubmitted; records the answer to a waiting card,
    wakes its callback and updates the card in Teams (the bot's card hook)."""

    def __init__(
        self,
        store: Store,
        client: BotConnectorClient | None = None,
        budget: TeamsBudget | None = None,
        *,
        cards: CardWaitService | None = None,
    ) -> None:
        self._store = store
        # Without a client (inside another bot) the card is replaced through the host's own connector.
        self._client = client
        self._budget = budget  # the dispatcher's: a card update spends from the same Teams budget
        self._cards = cards

    async def submitted(self, context: HostTurn, data: dict[str, Any]) -> dict[str, Any]:
        activity = context.activity
        ref: Reference | None = context.turn_state.get(CAPTURED_REFERENCE)
        verb = _verb_of(activity)
        values = submitted_values(data)
        described: dict[str, Any] = {
            "values": values,
            "verb": verb,
            "actionTitle": None,
            "messageId": None,
            "cardId": None,
            "cardType": None,
            "broadcastId": None,
            "teamsMessageId": activity.reply_to_id,
            "handledByCardWait": False,
        }
        delivery = await self._message_of(data, ref, activity.reply_to_id)
        if delivery is None:
            return described
        if delivery is NOT_FOR_THEM:
            context.turn_state[PRESS_REFUSED] = True
            return described
        card = delivery.content.get("card") or {}
        button = pressed_action(card, data, verb)
        described.update(
            messageId=delivery.id,
            cardType=delivery.card_type,
            broadcastId=delivery.broadcast_id,
            actionTitle=(button or {}).get("title"),
            teamsMessageId=delivery.message_id or activity.reply_to_id,
        )
        if delivery.kind == KIND:
            described["cardId"] = delivery.id
            described["handledByCardWait"] = await self._answer(context, ref, delivery, data, values, button, verb)
        return described

    async def _message_of(self, data: dict[str, Any], ref: Reference | None, reply_to_id: str | None) -> Any:
        """The message whose card was pressed, from the id its buttons carry (None: not one of ours;
        NOT_FOR_THEM: one of ours, but not pressed by its recipient on the message that carries it)."""
        card_id = data.get(CARD_WAIT_KEY) or data.get(MESSAGE_KEY)
        broadcast_id = data.get(BROADCAST_KEY)
        if isinstance(card_id, str) and card_id:
            delivery = await self._settled(card_id)
        elif isinstance(broadcast_id, str) and broadcast_id and ref is not None:
            # Settled too: a broadcast writes its send outcomes in groups, and the press is checked
            # against the Teams message id that outcome records.
            delivery = await self._settled(broadcast_delivery_id(broadcast_id, PersonKey(ref.tenant_id, ref.user_key)))
        else:
            return None
        # Only the person the card was sent to presses it: a card id can be predictable (it is
        # derived from an idempotency key), so a press from anyone else names no message.
        if delivery is None:
            return None
        if ref is None or (ref.tenant_id, ref.user_key) != (delivery.tenant_id, delivery.user_key):
            log.warning("card %s: a press from someone else than its recipient was ignored", delivery.id)
            return NOT_FOR_THEM
        # Teams points a press at the message that carries the card (replyToId). An id that arrives from
        # another message was smuggled in (an input named like our tag on some other card): ignored.
        if not reply_to_id or reply_to_id != delivery.message_id:
            log.warning("card %s: a press that did not come from the card's own message was ignored", delivery.id)
            return NOT_FOR_THEM
        return delivery

    async def _answer(
        self,
        context: HostTurn,
        ref: Reference | None,
        delivery: Delivery,
        data: dict[str, Any],
        values: dict[str, Any],
        button: dict[str, Any] | None,
        verb: str | None,
    ) -> bool:
        user = context.activity.from_property
        responder = {
            "name": (user.name if user else None) or (ref.name if ref else None),
            "upn": ref.upn if ref else None,
            "email": ref.email if ref else None,
            "aadObjectId": (user.aad_object_id if user else None) or (ref.aad_object_id if ref else None),
        }
        answer = {"values": values, "verb": verb, "action": (button or {}).get("title")}
        at = now()
        first = False

        def record(current: Delivery) -> Delivery | None:
            nonlocal first
            first = False  # a conflict re-runs this on the newer record
            if current.responded_at is not None or current.deleted_at is not None or current.wait_outcome:
                return None  # the first answer wins; a deleted, expired or cancelled card takes none
            first = True
            current.response = answer
            current.responded_by = responder
            current.responded_at = at
            return current

        stored = await self._store.outbox.update(delivery.id, record)
        if not first or stored is None:
            log.info("card %s: later answer ignored (the first one was kept, or the wait ended)", delivery.id)
            return True
        log.info("card %s answered", delivery.id)
        if self._cards is not None:
            await self._cards.finished(stored)
        card = delivery.content.get("card") or {}
        await self._show_answer(context, stored, card, values, answer["action"], responder["name"], at)
        return True

    async def _settled(self, card_id: str) -> Delivery | None:
        """The delivery once the dispatcher has finished writing it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            delivery = await self._store.outbox.get(card_id)
            if delivery is None or delivery.status != DeliveryStatus.SENDING or loop.time() >= deadline:
                return delivery
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    async def _show_answer(
        self,
        turn: HostTurn,
        delivery: Delivery,
        card: dict[str, Any],
        values: dict[str, Any],
        button: str | None,
        responder: str | None,
        at: float,
    ) -> None:
        if not (delivery.service_url and delivery.conversation_id and delivery.message_id):
            return
        shown = answered_card(card, values, button=button, responder=responder, at=at)
        activity = build_activity(
            {"card": shown, **({"text": delivery.content["text"]} if delivery.content.get("text") else {})},
            conversation_id=delivery.conversation_id,
            tenant_id=delivery.tenant_id,
        )
        # An update is not a new message: no notification for it.
        activity["channelData"].pop("notification", None)
        if self._client is None:
            try:
                await turn.update_message({**activity, "id": delivery.message_id})
            except Exception as exc:  # the answer is recorded either way; only the card's look is stale
                log.warning("card %s: could not update the card in Teams (%s)", delivery.id, type(exc).__name__)
            return
        for attempt in range(1, 4):
            try:
                if self._budget is not None:
                    await self._budget.spend(delivery.tenant_id, delivery.conversation_id)
                await self._client.update(delivery.service_url, delivery.conversation_id, delivery.message_id, activity)
                return
            except ConnectorError as exc:
                if exc.status == 429 and self._budget is not None:
                    self._budget.throttled(delivery.tenant_id, exc.retry_after)
                if exc.status in (0, 412, 429, 502, 503, 504) and attempt < 3:
                    await asyncio.sleep(min(exc.retry_after or attempt, 5.0))
                    continue
                # The answer is recorded either way; only the card's look is stale.
                log.warning("card %s: could not update the card in Teams (%s %s)", delivery.id, exc.status, exc.code)
                return


def _verb_of(activity: Any) -> str | None:
    if activity.type == "invoke" and isinstance(activity.value, dict):
        action = activity.value.get("action")
        if isinstance(action, dict) and isinstance(action.get("verb"), str):
            return action["verb"]
    return None
