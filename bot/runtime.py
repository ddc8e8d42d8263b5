"""The bot's event loop in a background thread, and everything that lives on it.

Flask serves requests on its own threads; they hand coroutines to this loop with ``call`` and wait
for the answer. The SDK adapter, the store client, the dispatcher and the pooled HTTP session all
live here, so none of them is touched from two loops.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aiohttp
from teams_proactive.bot.activity_handler import ProactiveBot
from teams_proactive.bot.adapter import BotEndpoint
from teams_proactive.bot.bot_tokens import BotTokenProvider
from teams_proactive.bot.callback_guard import CallbackClient
from teams_proactive.bot.capture import InboundMiddleware
from teams_proactive.bot.cardwait import CALLBACK_EVENT, CardWaitHandler, CardWaitService
from teams_proactive.bot.delivery.broadcasts import BroadcastService
from teams_proactive.bot.delivery.budget import PacedRepliesMiddleware
from teams_proactive.bot.delivery.dispatcher import Dispatcher, DispatcherSettings
from teams_proactive.bot.delivery.housekeeping import Housekeeper
from teams_proactive.bot.delivery.service import DeliveryService
from teams_proactive.bot.eventloop import new_event_loop
from teams_proactive.bot.events import EventSink, NoEvents
from teams_proactive.bot.graph.client import GraphClient
from teams_proactive.bot.graph.install import Installer
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.inbound.handler import InboundHandler
from teams_proactive.bot.inbound.references import ReferenceRecorder
from teams_proactive.bot.model import Reference, ReferenceStatus
from teams_proactive.bot.outbound import BotConnectorClient
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import create_store
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.bot.webhooks import WebhookSettings, WebhookSink

log = logging.getLogger(__name__)

T = TypeVar("T")


class BotRuntime:
    """Starts and stops the loop thread and the parts on it; ``call`` runs a coroutine there."""

    def __init__(
        self,
        settings: BotSettings,
        *,
        store: Store | None = None,
        dispatcher_settings: DispatcherSettings | None = None,
        events: EventSink | None = None,
        webhook_settings: WebhookSettings | None = None,
        run_dispatcher: bool = True,
        graph_settings: GraphSettings | None = None,
    ) -> None:
        self.settings = settings
        self.graph_settings = graph_settings or GraphSettings.from_env(None, settings)
        self.store = store or create_store(settings)
        self._dispatcher_settings = dispatcher_settings or DispatcherSettings(
            rate_per_tenant=settings.send_rate_per_tenant,
            concurrency=settings.send_concurrency,
            max_attempts=settings.max_attempts,
            lease_seconds=settings.send_lease_seconds,
            leader_lease_seconds=min(10.0, settings.send_lease_seconds),
            send_timeout_seconds=settings.send_timeout_seconds,
            cloud_service_url=settings.cloud_service_url,
            bot_id=f"28:{settings.app_id}" if settings.app_id else "",
            retention_seconds=settings.delivery_retention_days * 86400 if settings.delivery_retention_days else None,
            housekeeping_seconds=min(5.0, settings.purge_interval_seconds),
        )
        # Without an explicit sink, events go to the webhook subscribers (made on the loop, in _open).
        self.events: EventSink = events or NoEvents()
        self._webhooks = webhook_settings if events is None else None
        self._own_events = events is None
        self._run_dispatcher = run_dispatcher
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._serve_loop, name="bot-loop", daemon=True)
        self._started = False
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.session: aiohttp.ClientSession
        self.callbacks: CallbackClient
        self.client: BotConnectorClient
        self.dispatcher: Dispatcher
        self.housekeeper: Housekeeper
        self.deliveries: DeliveryService
        self.broadcasts: BroadcastService
        self.cards: CardWaitService
        self.bot: ProactiveBot
        self.inbound: InboundHandler
        self.endpoint: BotEndpoint
        self.graph: GraphClient | None = None

    def _serve_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> BotRuntime:
        if self._started:
            return self
        self._thread.start()
        self.call(self._open(), timeout=60)
        self._started = True
        return self

    async def _open(self) -> None:
        await self.store.open()
        # One pooled session for every outbound call; limit matches the dispatcher's concurrency.
        connector = aiohttp.TCPConnector(limit=max(100, self._dispatcher_settings.concurrency * 2))
        self.session = aiohttp.ClientSession(connector=connector)
        # Maker-given URLs (webhook triggers and actions) never share the session that talks to
        # Microsoft: their own connectors enforce the callback policy on every connection.
        self.callbacks = CallbackClient(self.settings.callback_policy)
        # One token for proactive sends and the SDK's replies inside turns (see bot_tokens).
        self.tokens = BotTokenProvider(self.settings)
        self.client = BotConnectorClient(
            self.session,
            self.tokens.token,
            timeout_seconds=self._dispatcher_settings.send_timeout_seconds,
            forget_token=self.tokens.forget,
        )
        if self._own_events:
            self.events = WebhookSink(self.store, self.callbacks, self._webhooks)
        self.housekeeper = Housekeeper(self.store, purge_every_seconds=self.settings.purge_interval_seconds)
        installer = None
        if self.graph_settings.configured:
            # Graph shares the pooled session; without credentials audiences and installs are refused.
            # A Graph call is bounded like a Bot Connector call, so a delivery's lease outlasts it.
            self.graph = GraphClient(
                self.session, self.graph_settings, timeout_seconds=self._dispatcher_settings.send_timeout_seconds
            )
            if self.graph_settings.can_install:
                installer = Installer(
                    self.store,
                    self.graph,
                    cloud_service_url=self.settings.cloud_service_url,
                    bot_id=self._dispatcher_settings.bot_id,
                )
        self.dispatcher = Dispatcher(
            self.store,
            self.client,
            self._dispatcher_settings,
            events=self.events,
            housekeeping=self.housekeeper.run,
            installer=installer,
        )
        retention = self._dispatcher_settings.retention_seconds
        size = self.settings.max_message_kb
        self.deliveries = DeliveryService(
            self.store,
            self.dispatcher,
            self.client,
            retention_seconds=retention,
            max_message_kb=size,
            graph=self.graph_settings,
            graph_client=self.graph,
        )
        self.broadcasts = BroadcastService(
            self.store,
            self.dispatcher,
            retention_seconds=retention,
            max_message_kb=size,
            graph=self.graph,
            graph_settings=self.graph_settings,
        )
        sink = self.events if isinstance(self.events, WebhookSink) else None
        self.cards = CardWaitService(
            self.store,
            self.deliveries,
            wake=sink.wake if sink else None,
            callback_policy=self.settings.callback_policy,
        )
        if sink is not None:
            # A waiting card's callback goes through the triggers' relay: retried, durable, guarded.
            sink.prepare(CALLBACK_EVENT, self.cards.callback_body)
        self.bot = ProactiveBot(bot_name=self.settings.bot_name)
        self.inbound = InboundHandler(
            self.store,
            ReferenceRecorder(
                self.store,
                delete_on_uninstall=self.settings.delete_on_uninstall,
                on_forget=self._forget,
                budget=self.dispatcher.budget,
            ),
            events=self.events,
            cards=CardWaitHandler(self.store, self.client, self.dispatcher.budget, cards=self.cards),
            commands=True,
            claim_all_card_actions=True,
        )
        capture = InboundMiddleware(self.inbound)
        replies = PacedRepliesMiddleware(self.dispatcher.budget)
        self.endpoint = BotEndpoint(self.settings, self.bot, [capture, replies], tokens=self.tokens)
        if self._run_dispatcher:
            self.dispatcher.start()
            self.broadcasts.start()
        if isinstance(self.events, WebhookSink):
            self.events.start()

    async def _forget(self, tenant_id: str, user_key: str) -> None:
        """DELETE_ON_UNINSTALL: erase what ForgetRecipient erases, not only the references, but off
        the bot turn: the erasure is queued in the store and the dispatcher's housekeeping does it.
        Until then the person's records say uninstalled, so nothing more is sent to them."""
        person = PersonKey(tenant_id, user_key)
        await self.store.erasures.queue(person)

        def uninstalled(current: Reference) -> Reference | None:
            if current.status == ReferenceStatus.UNINSTALLED:
                return None
            current.status = ReferenceStatus.UNINSTALLED
            return current

        await self.store.references.update_person(tenant_id, user_key, uninstalled)
        if self._run_dispatcher:
            self.dispatcher.request_housekeeping()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the bot loop from another thread and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` on the loop when the runtime stops, before the store and the HTTP session close."""
        self._closers.append(closer)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.call(self._close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    async def _close(self) -> None:
        for closer in self._closers:
            await closer()
        if self._run_dispatcher:
            await self.broadcasts.stop()
            await self.dispatcher.stop()
        if isinstance(self.events, WebhookSink):
            await self.events.close()
        if self.graph is not None:
            await self.graph.close()
        await self.session.close()
        await self.callbacks.close()
        await self.store.close()
