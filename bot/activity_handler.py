"""The turn logic: welcome on install, the stop/start/help commands, card submissions, trigger events."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import ChannelAccount, InvokeResponse
from teams_proactive.bot.capture import CAPTURED_REFERENCE, tenant_of
from teams_proactive.bot.events import BotEvent, EventSink, NoEvents
from teams_proactive.bot.model import Reference
from teams_proactive.bot.receipts import apply_read_receipt, record_card_answer
from teams_proactive.bot.store.base import PersonKey, Store

log = logging.getLogger(__name__)

STOP_WORDS = {"stop", "unsubscribe", "opt out", "opt-out"}
START_WORDS = {"start", "subscribe", "opt in", "opt-in"}
HELP_WORDS = {"help", "?"}


def help_text(bot_name: str) -> str:
    return (
        f"I'm **{bot_name}**. Your organisation's flows and agents use me to send you notifications here."
        "\n\n- Type **stop** to stop getting notifications.\n- Type **start** to get them again."
        "\n- Type **help** to see this message."
    )


def welcome_text(bot_name: str, user_name: str | None) -> str:
    hello = f"Hi {user_name.split()[0]}!" if user_name else "Hi!"
    return (
        f"{hello} I'm **{bot_name}**. Your organisation's flows and agents will send you notifications"
        " in this chat. You can type **stop** at any time to turn them off (and **start** to turn them back on)."
    )


class CardSubmissionHandler:
    """Hook for card submissions: records an answer to a waiting card and returns the fields the
    OnCardSubmitted event carries about the card (message id, card type, button, values)."""

    async def submitted(self, context: TurnContext, data: dict[str, Any]) -> dict[str, Any]:
        return {"handledByCardWait": False}


class ProactiveBot(TeamsActivityHandler):
    def __init__(
        self,
        store: Store,
        *,
        bot_name: str = "Notifications",
        events: EventSink | None = None,
        cards: CardSubmissionHandler | None = None,
    ) -> None:
        self._store = store
        self._bot_name = bot_name
        self._events = events or NoEvents()
        self._cards = cards or CardSubmissionHandler()

    # ---- messages ---------------------------------------------------------------------------
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict):
            # Action.Submit on a card posts a message whose value holds the inputs; a messageBack
            # button adds its text too, which is the button's, not something the person typed.
            await self._card_submitted(turn_context, activity.value)
            return
        text = TurnContext.remove_recipient_mention(activity) if activity.entities else activity.text
        command = (text or "").strip().lower().rstrip(".!")
        if command in STOP_WORDS:
            await self._set_opt_out(turn_context, True)
            await turn_context.send_activity(
                "Done: I won't send you notifications any more. Type **start** if you change your mind."
            )
            return
        if command in START_WORDS:
            await self._set_opt_out(turn_context, False)
            await turn_context.send_activity("Welcome back: you'll get notifications here again.")
            return
        if command in HELP_WORDS:
            await turn_context.send_activity(MessageFactory.text(help_text(self._bot_name)))
            return
        told = await self._publish(turn_context, BotEvent.USER_MESSAGE, {"text": text or ""})
        if not told:
            await turn_context.send_activity(MessageFactory.text(help_text(self._bot_name)))

    async def _set_opt_out(self, turn_context: TurnContext, opted_out: bool) -> None:
        ref: Reference | None = turn_context.turn_state.get(CAPTURED_REFERENCE)
        if ref is None:
            return

        def change(current: Reference) -> Reference | None:
            if current.opted_out == opted_out:
                return None
            current.opted_out = opted_out
            return current

        await self._store.references.update_person(ref.tenant_id, ref.user_key, change)

    # ---- install / uninstall ----------------------------------------------------------------
    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        conversation = turn_context.activity.conversation
        if conversation is not None and (conversation.conversation_type or "personal") == "personal":
            user = turn_context.activity.from_property
            await turn_context.send_activity(
                MessageFactory.text(welcome_text(self._bot_name, user.name if user else None))
            )
        await self._publish_installation(turn_context, "installed")

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._publish_installation(turn_context, "uninstalled")

    async def on_teams_members_added(  # type: ignore[override]
        self, teams_members_added: list[ChannelAccount], team_info: Any, turn_context: TurnContext
    ) -> None:
        # Teams also sends installationUpdate on install; the welcome goes out from there only.
        return

    async def _publish_installation(self, turn_context: TurnContext, action: str) -> None:
        await self._publish(turn_context, BotEvent.INSTALLATION, {"action": action})

    # ---- read receipts --------------------------------------------------------------------
    async def on_teams_read_receipt_event(self, read_receipt_info: Any, turn_context: TurnContext) -> None:
        """Teams says the person read their chat up to a message: mark our deliveries read.

        botbuilder 4.17 passes ``activity.value`` as it came (a dict), although the hint says
        ``ReadReceiptInfo``: both are read."""
        ref: Reference | None = turn_context.turn_state.get(CAPTURED_REFERENCE)
        conversation = turn_context.activity.conversation
        if ref is None or conversation is None:
            return  # a chat we never captured: nothing of ours is in it
        await apply_read_receipt(
            self._store,
            PersonKey(ref.tenant_id, ref.user_key),
            conversation.id,
            read_receipt_info.get("lastReadMessageId")
            if isinstance(read_receipt_info, dict)
            else getattr(read_receipt_info, "last_read_message_id", None),
            events=self._events,
        )

    # ---- cards and invokes ------------------------------------------------------------------
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name == "adaptiveCard/action":
            value = activity.value if isinstance(activity.value, dict) else {}
            action = value.get("action") if isinstance(value.get("action"), dict) else {}
            data = action.get("data") if isinstance(action.get("data"), dict) else {}
            await self._card_submitted(turn_context, data)
            return InvokeResponse(
                status=200,
                body={
                    "statusCode": 200,
                    "type": "application/vnd.microsoft.activity.message",
                    "value": "Thanks, your response was recorded.",
                },
            )
        try:
            response = await super().on_invoke_activity(turn_context)
        except Exception:  # an invoke we do not implement is answered, never an error
            log.info("invoke %s not handled", activity.name)
            return InvokeResponse(status=200)
        if response is None or response.status == 501:
            return InvokeResponse(status=200)
        return response

    async def _card_submitted(self, turn_context: TurnContext, data: dict[str, Any]) -> None:
        described = await self._cards.submitted(turn_context, data)
        ref: Reference | None = turn_context.turn_state.get(CAPTURED_REFERENCE)
        activity = turn_context.activity
        if not described["handledByCardWait"] and ref is not None and activity.conversation is not None:
            # An answer to a plain or broadcast card counts as "answered" in its delivery report.
            await record_card_answer(
                self._store, PersonKey(ref.tenant_id, ref.user_key), activity.conversation.id, activity.reply_to_id
            )
        await self._publish(turn_context, BotEvent.CARD_SUBMITTED, {"data": data, **described})

    async def _publish(self, turn_context: TurnContext, event: BotEvent, extra: dict[str, Any]) -> int:
        ref: Reference | None = turn_context.turn_state.get(CAPTURED_REFERENCE)
        return await self._events.publish(
            event,
            tenant_of(turn_context.activity),
            self._event_payload(turn_context, ref, extra),
            PersonKey(ref.tenant_id, ref.user_key) if ref else None,
        )

    @staticmethod
    def _event_payload(turn_context: TurnContext, ref: Reference | None, extra: dict[str, Any]) -> dict[str, Any]:
        activity = turn_context.activity
        user = activity.from_property
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
            "timestamp": activity.timestamp.isoformat() if activity.timestamp else None,
            **extra,
        }
