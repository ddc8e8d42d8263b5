"""The inbound half of the bot, used by our own bot and by the middleware inside another bot.

For every activity: the sender's reference (``references``), then what the activity means to us —
a read receipt marks deliveries read, a card answer reaches its waiting flow and its delivery
report, an install or a message raises the trigger events, and ``stop``/``start`` opt a person out
and back in when the commands are on. It never sends a message: talking is the bot's own business
(our ``ProactiveBot`` welcomes and answers commands; a host bot answers with its own logic).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot.cardtags import PRESS_REFUSED, TAG_KEYS
from teams_proactive.bot.delivery.metrics import CAPTURE_FAILURES
from teams_proactive.bot.events import BotEvent, EventSink, NoEvents
from teams_proactive.bot.inbound.activity import (
    CARD_ACTION_INVOKE,
    EVENT,
    INSTALL_ACTIONS,
    INSTALLATION_UPDATE,
    INVOKE,
    MESSAGE,
    UNINSTALL_ACTIONS,
    tenant_of,
    text_without_mentions,
)
from teams_proactive.bot.inbound.host import HostTurn
from teams_proactive.bot.inbound.references import ReferenceRecorder
from teams_proactive.bot.model import Reference
from teams_proactive.bot.receipts import READ_RECEIPT_EVENT, apply_read_receipt, record_card_answer
from teams_proactive.bot.store.base import PersonKey, Store

log = logging.getLogger(__name__)

# Where turn logic finds what inbound did: ``turn_state[CAPTURED_REFERENCE]`` (the sender's
# reference) and ``turn_state[INBOUND_OUTCOME]`` (an ``InboundOutcome``).
CAPTURED_REFERENCE = "teams_proactive.reference"
INBOUND_OUTCOME = "teams_proactive.inbound"

STOP_WORDS = {"stop", "unsubscribe", "opt out", "opt-out"}
START_WORDS = {"start", "subscribe", "opt in", "opt-in"}
HELP_WORDS = {"help", "?"}

# The answer to an Action.Execute on one of our cards (Universal Actions' message response).
CARD_ACTION_ANSWER = {
    "statusCode": 200,
    "type": "application/vnd.microsoft.activity.message",
    "value": "Thanks, your response was recorded.",
}
# The answer to someone who pressed a card that was not sent to them (a forwarded or copied one).
CARD_NOT_YOURS_ANSWER = {**CARD_ACTION_ANSWER, "value": "This card was not sent to you."}


class CardSubmissionHandler:
    """Hook for card submissions: records an answer to a waiting card and returns the fields the
    OnCardSubmitted event carries about the card (message id, card type, button, values)."""

    async def submitted(self, turn: HostTurn, data: dict[str, Any]) -> dict[str, Any]:
        return {"handledByCardWait": False}


@dataclass
class InboundOutcome:
    """What inbound did with one activity, for the bot's own logic to talk about."""

    reference: Reference | None = None
    recorded: bool = False  # the reference was written (False: not tracked, or the store failed)
    invoke_answer: dict[str, Any] | None = None  # our answer to an adaptiveCard/action invoke
    command: str | None = None  # "stop", "start" or "help" (only with the commands on)
    told: int = 0  # subscribers told about a user message
    card_answered: bool = False


def is_card_action(activity: Any) -> bool:
    return activity.type == INVOKE and activity.name == CARD_ACTION_INVOKE


def card_action_data(activity: Any) -> dict[str, Any]:
    value = activity.value if isinstance(activity.value, dict) else {}
    action = value.get("action") if isinstance(value.get("action"), dict) else {}
    data = action.get("data") if isinstance(action.get("data"), dict) else {}
    return data


def is_ours(data: dict[str, Any]) -> bool:
    """A card we sent: its buttons carry one of our ids (bot/cardtags.py)."""
    return any(isinstance(data.get(key), str) and data.get(key) for key in TAG_KEYS)


def command_of(activity: Any) -> str:
    return text_without_mentions(activity).strip().lower().rstrip(".!")


class InboundHandler:
    """Runs the inbound half for one turn; ``handle`` returns (and leaves in the turn state) the outcome."""

    def __init__(
        self,
        store: Store,
        recorder: ReferenceRecorder,
        *,
        events: EventSink | None = None,
        cards: CardSubmissionHandler | None = None,
        commands: bool = False,
        claim_all_card_actions: bool = False,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._events = events or NoEvents()
        self._cards = cards or CardSubmissionHandler()
        self._commands = commands
        # Our own bot answers every Action.Execute; inside another bot only those of our cards.
        self._claim_all = claim_all_card_actions

    async def record(self, turn: HostTurn) -> InboundOutcome:
        """The reference only. A failure is logged and the turn goes on without it."""
        outcome = InboundOutcome()
        turn.turn_state[INBOUND_OUTCOME] = outcome
        try:
            outcome.reference = await self._recorder.record(turn)
            outcome.recorded = outcome.reference is not None
        except Exception as exc:  # capture must never stop the bot from answering the user
            CAPTURE_FAILURES.labels("reference").inc()
            log.warning("reference capture failed for a %s activity (%s)", turn.activity.type, type(exc).__name__)
        turn.turn_state[CAPTURED_REFERENCE] = outcome.reference
        return outcome

    async def handle(self, turn: HostTurn) -> InboundOutcome:
        """Record, then act on what the activity means. Errors after the recording propagate."""
        outcome = await self.record(turn)
        await self.act(turn, outcome)
        return outcome

    async def act(self, turn: HostTurn, outcome: InboundOutcome) -> None:
        activity = turn.activity
        kind = activity.type
        if kind == MESSAGE:
            if isinstance(activity.value, dict):
                # Action.Submit on a card posts a message whose value holds the inputs; a messageBack
                # button adds its text too, which is the button's, not something the person typed.
                await self._card_submitted(turn, activity.value)
                outcome.card_answered = True
                return
            command = command_of(activity)
            if self._commands and command in STOP_WORDS | START_WORDS:
                await self._set_opt_out(outcome.reference, command in STOP_WORDS)
                outcome.command = "stop" if command in STOP_WORDS else "start"
                return
            if self._commands and command in HELP_WORDS:
                outcome.command = "help"
                return
            outcome.told = await self._publish(turn, BotEvent.USER_MESSAGE, {"text": text_without_mentions(activity)})
        elif kind == INVOKE and activity.name == CARD_ACTION_INVOKE:
            data = card_action_data(activity)
            if self._claim_all or is_ours(data):
                await self._card_submitted(turn, data)
                outcome.card_answered = True
                refused = turn.turn_state.get(PRESS_REFUSED)
                outcome.invoke_answer = CARD_NOT_YOURS_ANSWER if refused else CARD_ACTION_ANSWER
        elif kind == EVENT and activity.name == READ_RECEIPT_EVENT:
            await self._read_receipt(turn, outcome.reference)
        elif kind == INSTALLATION_UPDATE:
            action = activity.action or ""
            if action in INSTALL_ACTIONS:
                await self._publish(turn, BotEvent.INSTALLATION, {"action": "installed"})
            elif action in UNINSTALL_ACTIONS:
                await self._publish(turn, BotEvent.INSTALLATION, {"action": "uninstalled"})

    async def _set_opt_out(self, ref: Reference | None, opted_out: bool) -> None:
        if ref is None:
            return

        def change(current: Reference) -> Reference | None:
            if current.opted_out == opted_out:
                return None
            current.opted_out = opted_out
            return current

        await self._store.references.update_person(ref.tenant_id, ref.user_key, change)

    async def _read_receipt(self, turn: HostTurn, ref: Reference | None) -> None:
        """Teams says the person read their chat up to a message: mark our deliveries read."""
        conversation = turn.activity.conversation
        if ref is None or conversation is None:
            return  # a chat we never captured: nothing of ours is in it
        value = turn.activity.value
        last_read = (
            value.get("lastReadMessageId") if isinstance(value, dict) else getattr(value, "last_read_message_id", None)
        )
        await apply_read_receipt(
            self._store,
            PersonKey(ref.tenant_id, ref.user_key),
            chat_ids(ref, conversation.id),
            last_read,
            events=self._events,
        )

    async def _card_submitted(self, turn: HostTurn, data: dict[str, Any]) -> None:
        described = await self._cards.submitted(turn, data)
        ref: Reference | None = turn.turn_state.get(CAPTURED_REFERENCE)
        activity = turn.activity
        if not described["handledByCardWait"] and ref is not None and activity.conversation is not None:
            # An answer to a plain or broadcast card counts as "answered" in its delivery report.
            await record_card_answer(
                self._store,
                PersonKey(ref.tenant_id, ref.user_key),
                chat_ids(ref, activity.conversation.id),
                activity.reply_to_id,
            )
        await self._publish(turn, BotEvent.CARD_SUBMITTED, {"data": data, **described})

    async def _publish(self, turn: HostTurn, event: BotEvent, extra: dict[str, Any]) -> int:
        ref: Reference | None = turn.turn_state.get(CAPTURED_REFERENCE)
        return await self._events.publish(
            event,
            tenant_of(turn.activity),
            event_payload(turn.activity, ref, extra),
            PersonKey(ref.tenant_id, ref.user_key) if ref else None,
        )


def chat_ids(ref: Reference, conversation_id: str) -> set[str]:
    """The chat an activity came from, by every id it is known by: a message sent under Graph's
    ``19:…@unq.gbl.spaces`` is read and answered in the same chat Teams' activities call ``a:…``."""
    if ref.conversation_id == conversation_id:
        return ref.chat_ids
    return {conversation_id}


def event_payload(activity: Any, ref: Reference | None, extra: dict[str, Any]) -> dict[str, Any]:
    user = activity.from_property
    timestamp = activity.timestamp
    return {
        "tenantId": tenant_of(activity),
        "user": {
            "id": user.id if user else None,
            "name": user.name if user else None,
            "aadObjectId": user.aad_object_id if user else None,
            "upn": ref.upn if ref else None,
            "email": ref.email if ref else None,
        },
        "surface": ref.surface if ref else None,
        "conversationId": activity.conversation.id if activity.conversation else None,
        "timestamp": timestamp.isoformat() if hasattr(timestamp, "isoformat") else timestamp,
        **extra,
    }
