"""``ReferenceCapture``: the inbound half of teams-proactive as a middleware for a bot or agent that already exists.

Add it to a botbuilder adapter (``CloudAdapter`` / ``BotFrameworkAdapter``) or a Microsoft 365 Agents
SDK adapter (``microsoft-agents-hosting-aiohttp``'s ``CloudAdapter``, which runs an
``AgentApplication``); the SDK is told apart by the turn context's type::

    from teams_proactive.capture import ReferenceCapture
    adapter.use(ReferenceCapture())              # the store named by STORE_URL

For every activity it keeps the sender's conversation reference per surface (Teams chat, Copilot in
Teams, Microsoft 365 Copilot) with the newest service URL, follows install and uninstall, looks the
member up once for UPN and email, marks deliveries read on read receipts, records answers to cards
sent by teams-proactive (and answers their ``adaptiveCard/action`` invokes itself), and writes the
events the flow triggers listen to; ``teams-proactive serve``, beside the bot on the same store,
sends and posts the callbacks. ``stop``/``start`` opt a person out only with ``opt_out_commands=True``.

It never sends a message of its own, and the host's logic runs for every activity except an invoke
it answered. A failure of its own (the store down, or slower than ``CAPTURE_TIMEOUT_SECONDS``; an
activity holding text the store could not read back) is logged without personal data, counted in the
``teams_proactive_capture_failures`` Prometheus counter, and the host's turn goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from teams_proactive.bot import text
from teams_proactive.bot.cardwait import CardWaitHandler, CardWaitService
from teams_proactive.bot.delivery.metrics import CAPTURE_FAILURES
from teams_proactive.bot.inbound.activity import as_dict
from teams_proactive.bot.inbound.handler import InboundHandler, InboundOutcome
from teams_proactive.bot.inbound.host import host_turn
from teams_proactive.bot.inbound.references import ReferenceRecorder
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import Store, create_store
from teams_proactive.bot.webhooks import EventOutbox

__all__ = ["ReferenceCapture"]

log = logging.getLogger(__name__)

# At most this long for our part of a turn: Teams waits about 15 s for an invoke's answer, and the
# host's own logic needs the rest. Past it the turn goes on without us (counted as a failure).
CAPTURE_TIMEOUT_SECONDS = 8.0


class ReferenceCapture:
    """Middleware (``async def on_turn(context, logic)``) for botbuilder and the Microsoft 365 Agents SDK.

    ``store_url``: ``sqlite:///PATH`` or ``cosmos`` (with ``COSMOS_*``), as ``STORE_URL``; without it,
    the ``STORE_URL`` setting. ``store``: an already built store instead (tests, custom wiring).
    ``opt_out_commands``: recognise ``stop``/``start`` (the host's logic still answers them).
    ``delete_on_uninstall``: erase a person's references when they uninstall the app.
    """

    def __init__(
        self,
        store_url: str | None = None,
        *,
        opt_out_commands: bool = False,
        delete_on_uninstall: bool = False,
        store: Store | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if store is None:
            settings = BotSettings.from_env(env)
            if store_url:
                settings = dataclasses.replace(settings, store_url=store_url)
            store = create_store(settings)
        self.store = store
        recorder = ReferenceRecorder(store, delete_on_uninstall=delete_on_uninstall)
        self._handler = InboundHandler(
            store,
            recorder,
            events=EventOutbox(store),  # written here, posted by the service's relay
            # No client: a card that was answered is replaced through the host's own connector.
            cards=CardWaitHandler(store, None, cards=CardWaitService(store, None)),
            commands=opt_out_commands,
            claim_all_card_actions=False,
        )
        self._opened = False
        self._opening: asyncio.Lock | None = None

    async def on_turn(self, context: Any, logic: Callable[..., Awaitable[Any]]) -> None:
        turn = host_turn(context)
        outcome: InboundOutcome | None = None
        try:
            # Text the store could not read back (a lone surrogate, NUL) anywhere in the activity: our own
            # endpoint refuses such an activity before the turn; here the host's turn runs without us.
            unreadable = text.find(as_dict(turn.activity))
            if unreadable is not None:
                CAPTURE_FAILURES.labels("unreadable").inc()
                log.warning("teams-proactive capture skipped a %s activity: %s", turn.activity.type, unreadable)
            else:
                # A store that hangs (a busy SQLite lock, Cosmos DB retrying) must not hold the host's turn
                # past what Teams waits for an answer.
                outcome = await asyncio.wait_for(self._capture(turn), CAPTURE_TIMEOUT_SECONDS)
        except Exception as exc:  # never the host's problem: the turn goes on
            CAPTURE_FAILURES.labels("inbound").inc()
            log.warning(
                "teams-proactive capture skipped for a %s activity (%s)", turn.activity.type, type(exc).__name__
            )
        if outcome is not None and outcome.invoke_answer is not None:
            # Our card's Action.Execute: answered here, so the host cannot overwrite the answer.
            await turn.answer_invoke(outcome.invoke_answer)
            return
        await turn.run_logic(logic)

    async def _capture(self, turn: Any) -> InboundOutcome:
        await self._open()
        return await self._handler.handle(turn)

    async def _open(self) -> None:
        """Open the store on the host's loop, once (again after a failure, at the next turn)."""
        if self._opened:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self._opened:
                await self.store.open()
                self._opened = True

    async def close(self) -> None:
        """Close the store (call it from the host's shutdown, on its loop)."""
        if self._opened:
            self._opened = False
            await self.store.close()
