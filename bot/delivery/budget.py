"""One budget for every call to Teams: the per-tenant schedule and the per-conversation windows.

The dispatcher's sends, UpdateMessage, DeleteMessage, card-answer updates, chat creation and member
lookups all spend from the same ``TeamsBudget`` (DESIGN.md section 8), so a burst of updates cannot
push the tenant or a conversation over Teams' limits while a broadcast is running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import Middleware, TurnContext
from botbuilder.schema import Activity, ActivityTypes
from teams_proactive.bot.delivery.pacing import ConversationPacer, TenantRateLimiter

log = logging.getLogger(__name__)

# The longest a reply within a turn waits for the budget.
REPLY_WAIT_SECONDS = 5.0


class TeamsBudget:
    def __init__(
        self,
        limiter: TenantRateLimiter,
        pacer: ConversationPacer,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limiter = limiter
        self.pacer = pacer
        self._sleep = sleep

    async def spend(self, tenant_id: str, conversation_id: str | None = None) -> None:
        """Wait until one more call to this tenant (and conversation) stays within Teams' limits."""
        if conversation_id:
            while (wait := self.pacer.delay(conversation_id)) > 0:
                await self._sleep(wait)
            # Reserved at once after a zero delay (no await in between): concurrent callers queue up.
            self.pacer.reserve(conversation_id)
        try:
            await self.limiter.acquire(tenant_id)
        except BaseException:
            if conversation_id:
                self.pacer.release(conversation_id)
            raise
        if conversation_id:
            self.pacer.sent(conversation_id)

    def throttled(self, tenant_id: str, retry_after: float | None) -> None:
        """Teams answered 429 to a call: every call to the tenant waits (Retry-After, else a second)."""
        self.limiter.pause(tenant_id, retry_after or 1.0)


class PacedRepliesMiddleware(Middleware):
    """The bot's own replies in a turn (welcome, help, card answers) spend from the same budget."""

    def __init__(self, budget: TeamsBudget) -> None:
        self._budget = budget

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        context.on_send_activities(self._paced)
        await logic()

    async def _paced(self, context: TurnContext, activities: list[Activity], send: Callable[[], Awaitable[Any]]) -> Any:
        activity = context.activity
        conversation_id = activity.conversation.id if activity.conversation else None
        tenant_id = (activity.conversation.tenant_id if activity.conversation else None) or _tenant(activity)
        for reply in activities:
            # Typing indicators and invoke answers are not messages Teams counts against the chat.
            if reply.type == ActivityTypes.message and tenant_id:
                try:
                    await asyncio.wait_for(self._budget.spend(tenant_id, conversation_id), REPLY_WAIT_SECONDS)
                except TimeoutError:
                    # The tenant is paused (a long Retry-After): the person is waiting on this turn,
                    # which Teams gives 15 s; answer now rather than time the turn out.
                    log.info("reply sent without waiting for the tenant's pace (paused)")
        return await send()


def _tenant(activity: Activity) -> str | None:
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant")
    return str(tenant["id"]) if isinstance(tenant, dict) and tenant.get("id") else None
