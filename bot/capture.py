"""Our own bot's inbound middleware (botbuilder): the inbound half runs, then the bot talks.

Other bots add ``teams_proactive.capture.ReferenceCapture`` instead: the same inbound half, for
botbuilder and the Microsoft 365 Agents SDK, that answers our card invokes itself and never talks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from botbuilder.core import Middleware, TurnContext
from teams_proactive.bot.inbound.activity import is_uninstall, lifecycle_status, tenant_of
from teams_proactive.bot.inbound.handler import CAPTURED_REFERENCE, InboundHandler
from teams_proactive.bot.inbound.host import BotbuilderTurn

__all__ = ["CAPTURED_REFERENCE", "InboundMiddleware", "is_uninstall", "lifecycle_status", "tenant_of"]


class InboundMiddleware(Middleware):
    """Runs the inbound half for every activity, then the turn (our ``ProactiveBot``)."""

    def __init__(self, handler: InboundHandler) -> None:
        self._handler = handler

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        # A failed reference write is logged and skipped (the person still gets an answer); the rest
        # (a card answer, a receipt) fails the turn as any bot error does, and Teams retries it.
        await self._handler.handle(BotbuilderTurn(context))
        await logic()
