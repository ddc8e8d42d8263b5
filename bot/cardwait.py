"""Card-and-wait: send an Adaptive Card, record the first answer to it, and show that answer on the card.

The card's id (its delivery id) is put into the data of every Action.Submit and Action.Execute
button, so the answer finds its way back whether Teams posts it as a message with a value
(Action.Submit) or as an ``adaptiveCard/action`` invoke (Action.Execute). The answer is kept on the
delivery (``response``, ``responded_by``, ``responded_at``); the first one wins. The card in the chat
is then replaced by a read-only copy that shows what was answered, by whom and when, like the
built-in "Post adaptive card and wait for a response" does.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext

from bot import errors
from bot.activity_handler import CardSubmissionHandler
from bot.capture import CAPTURED_REFERENCE, tenant_of
from bot.delivery.messages import build_activity
from bot.delivery.service import Caller, DeliveryService, MessageRequest, delivery_id_for
from bot.model import Delivery, DeliveryStatus, Reference, now
from bot.outbound import BotConnectorClient, ConnectorError
from bot.store.base import Store

log = logging.getLogger(__name__)

KIND = "cardWait"
CORRELATION_KEY = "cardWaitId"
SUBMIT_ACTIONS = ("Action.Submit", "Action.Execute")
# How long an answer waits for the dispatcher to finish writing the send it answers (a click can
# race the write of "delivered"; writing the answer meanwhile would cost the dispatcher its lease).
SETTLE_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.2


@dataclass(slots=True, kw_only=True)
class CardWaitRequest:
    recipient: str
    card: dict[str, Any]
    text: str | None = None
    summary: str | None = None
    tenant_id: str | None = None
    idempotency_key: str | None = None
    install_if_missing: bool = False


# ---- the card -------------------------------------------------------------------------------
def with_correlation(card: dict[str, Any], card_id: str) -> dict[str, Any]:
    """A copy of ``card`` whose submit buttons all carry ``cardWaitId``."""
    tagged = copy.deepcopy(card)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in SUBMIT_ACTIONS:
                data = node.get("data")
                if data is None:
                    data = {}
                elif not isinstance(data, dict):
                    # A string payload stays available to the flow under "value".
                    data = {"value": data}
                data[CORRELATION_KEY] = card_id
                msteams = data.get("msteams")
                if isinstance(msteams, dict) and isinstance(msteams.get("value"), dict):
                    msteams["value"][CORRELATION_KEY] = card_id  # messageBack posts msteams.value
                node["data"] = data
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(tagged)
    return tagged


def submitted_values(data: dict[str, Any]) -> dict[str, Any]:
    """The answer as the flow sees it: inputs and button data, without our bookkeeping."""
    return {k: v for k, v in data.items() if k not in (CORRELATION_KEY, "msteams")}


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
        own = {k: v for k, v in own.items() if k not in (CORRELATION_KEY, "msteams")}
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


# ---- sending and reading --------------------------------------------------------------------
class CardWaitService:
    """What SendCardAndWait and its status link ask of the bot."""

    def __init__(self, store: Store, deliveries: DeliveryService) -> None:
        self._store = store
        self._deliveries = deliveries

    async def start(self, caller: Caller, request: CardWaitRequest) -> Delivery:
        # The id must be known before the send, to be put into the card's buttons: the idempotency
        # key fixes it (a caller's own key, namespaced, or a fresh one).
        key = f"cardWait\n{request.idempotency_key}" if request.idempotency_key else uuid.uuid4().hex
        card_id = delivery_id_for(caller.name, key)
        message = MessageRequest(
            recipient=request.recipient,
            text=request.text,
            card=with_correlation(request.card, card_id),
            summary=request.summary,
            idempotency_key=key,
            tenant_id=request.tenant_id,
            kind=KIND,
            install_if_missing=request.install_if_missing,
        )
        delivery, _ = await self._deliveries.submit(caller, message)
        return delivery

    async def get(self, caller: Caller, card_id: str) -> Delivery:
        delivery = await self._deliveries.get(caller, card_id)
        if delivery.kind != KIND:
            raise errors.Rejected("NotFound", f"No card waiting for a response with id '{card_id}'.", "id")
        return delivery


# ---- answers --------------------------------------------------------------------------------
class CardWaitHandler(CardSubmissionHandler):
    """Records the answer to a waiting card and updates the card in Teams (the bot's card hook)."""

    def __init__(self, store: Store, client: BotConnectorClient) -> None:
        self._store = store
        self._client = client

    async def submitted(self, context: TurnContext, data: dict[str, Any]) -> bool:
        card_id = data.get(CORRELATION_KEY)
        if not isinstance(card_id, str) or not card_id:
            return False
        delivery = await self._settled(card_id)
        if delivery is None or delivery.kind != KIND:
            return False
        activity = context.activity
        ref: Reference | None = context.turn_state.get(CAPTURED_REFERENCE)
        user = activity.from_property
        # Only the person the card was sent to may answer it: a card id can be predictable (it is
        # derived from an idempotency key), so an answer from anyone else is not taken.
        tenant = ref.tenant_id if ref else tenant_of(activity)
        person = ref.user_key if ref else (user.aad_object_id if user else None)
        if (tenant, person) != (delivery.tenant_id, delivery.user_key):
            log.warning("card %s: an answer from someone else than its recipient was ignored", card_id)
            return False
        responder = {
            "name": (user.name if user else None) or (ref.name if ref else None),
            "upn": ref.upn if ref else None,
            "email": ref.email if ref else None,
            "aadObjectId": (user.aad_object_id if user else None) or (ref.aad_object_id if ref else None),
        }
        verb = _verb_of(activity)
        values = submitted_values(data)
        card = delivery.content.get("card") or {}
        button = pressed_action(card, data, verb)
        answer = {"values": values, "verb": verb, "action": (button or {}).get("title")}
        at = now()
        first = False

        def record(current: Delivery) -> Delivery | None:
            nonlocal first
            first = False  # a conflict re-runs this on the newer record
            if current.responded_at is not None or current.deleted_at is not None:
                return None  # the first answer wins; a deleted card takes none
            first = True
            current.response = answer
            current.responded_by = responder
            current.responded_at = at
            return current

        stored = await self._store.update_delivery(card_id, record)
        if not first or stored is None:
            log.info("card %s: later answer ignored (the first one was kept)", card_id)
            return True
        log.info("card %s answered", card_id)
        await self._show_answer(stored, card, values, answer["action"], responder["name"], at)
        return True

    async def _settled(self, card_id: str) -> Delivery | None:
        """The delivery once the dispatcher has finished writing it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            delivery = await self._store.get_delivery(card_id)
            if delivery is None or delivery.status != DeliveryStatus.SENDING or loop.time() >= deadline:
                return delivery
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    async def _show_answer(
        self,
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
        try:
            await self._client.update(delivery.service_url, delivery.conversation_id, delivery.message_id, activity)
        except ConnectorError as exc:
            # The answer is recorded either way; only the card's look is stale.
            log.warning("card %s: could not update the card in Teams (%s %s)", delivery.id, exc.status, exc.code)


def _verb_of(activity: Any) -> str | None:
    if activity.type == "invoke" and isinstance(activity.value, dict):
        action = activity.value.get("action")
        if isinstance(action, dict) and isinstance(action.get("verb"), str):
            return action["verb"]
    return None
