"""Our own bot's turn logic: it only talks (welcome on install, the stop/start/help answers, invoke answers).

Everything else an activity means (reference, receipts, card answers, triggers, opt-out) was done
before, in the inbound middleware (``teams_proactive.bot.inbound``), which leaves its outcome in the
turn state; the same code runs inside other bots without the talking.
"""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import ChannelAccount, InvokeResponse
from teams_proactive.bot.inbound.handler import (
    CARD_ACTION_ANSWER,
    INBOUND_OUTCOME,
    InboundOutcome,
    is_card_action,
)

log = logging.getLogger(__name__)


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


def _outcome(turn_context: TurnContext) -> InboundOutcome:
    return turn_context.turn_state.get(INBOUND_OUTCOME) or InboundOutcome()


class ProactiveBot(TeamsActivityHandler):
    def __init__(self, *, bot_name: str = "Notifications") -> None:
        self._bot_name = bot_name

    # ---- messages ---------------------------------------------------------------------------
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        outcome = _outcome(turn_context)
        if outcome.card_answered:
            return
        if outcome.command == "stop":
            await turn_context.send_activity(
                "Done: I won't send you notifications any more. Type **start** if you change your mind."
            )
        elif outcome.command == "start":
            await turn_context.send_activity("Welcome back: you'll get notifications here again.")
        elif outcome.command == "help" or not outcome.told:
            # A message no flow listens to gets the help text: the person learns what the bot is for.
            await turn_context.send_activity(MessageFactory.text(help_text(self._bot_name)))

    # ---- install ----------------------------------------------------------------------------
    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        conversation = turn_context.activity.conversation
        if conversation is not None and (conversation.conversation_type or "personal") == "personal":
            user = turn_context.activity.from_property
            await turn_context.send_activity(
                MessageFactory.text(welcome_text(self._bot_name, user.name if user else None))
            )

    async def on_teams_members_added(  # type: ignore[override]
        self, teams_members_added: list[ChannelAccount], team_info: Any, turn_context: TurnContext
    ) -> None:
        # Teams also sends installationUpdate on install; the welcome goes out from there only.
        return

    async def on_teams_read_receipt_event(self, read_receipt_info: Any, turn_context: TurnContext) -> None:
        return  # marked read on inbound

    # ---- invokes ----------------------------------------------------------------------------
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if is_card_action(turn_context.activity):
            return InvokeResponse(status=200, body=_outcome(turn_context).invoke_answer or CARD_ACTION_ANSWER)
        try:
            response = await super().on_invoke_activity(turn_context)
        except Exception:  # an invoke we do not implement is answered, never an error
            log.info("invoke %s not handled", turn_context.activity.name)
            return InvokeResponse(status=200)
        if response is None or response.status == 501:
            return InvokeResponse(status=200)
        return response
