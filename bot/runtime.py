"""The bot's event loop in a background thread, and everything that lives on it.

Flask serves requests on its own threads; they hand coroutines to this loop with ``call`` and wait
for the answer. The SDK adapter, the store client, the dispatcher and the pooled HTTP session all
live here, so none of them is touched from two loops.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aiohttp

from bot.activity_handler import ProactiveBot
from bot.adapter import BotEndpoint, BotTokenProvider
from bot.capture import ReferenceCaptureMiddleware
from bot.cardwait import CardWaitHandler, CardWaitService
from bot.delivery.broadcasts import BroadcastService
from bot.delivery.dispatcher import Dispatcher, DispatcherSettings
from bot.delivery.service import DeliveryService
from bot.events import EventSink, NoEvents
from bot.graph.client import GraphClient
from bot.graph.install import Installer
from bot.graph.settings import GraphSettings
from bot.outbound import BotConnectorClient
from bot.recipients import forget
from bot.settings import BotSettings
from bot.store import create_store
from bot.store.base import PersonKey, Store
from bot.webhooks import WebhookSettings, WebhookSink

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
        )
        # Without an explicit sink, events go to the webhook subscribers (made on the loop, in _open).
        self.events: EventSink = events or NoEvents()
        self._webhooks = webhook_settings if events is None else None
        self._own_events = events is None
        self._run_dispatcher = run_dispatcher
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve_loop, name="bot-loop", daemon=True)
        self._started = False
        self.session: aiohttp.ClientSession
        self.client: BotConnectorClient
        self.dispatcher: Dispatcher
        self.deliveries: DeliveryService
        self.broadcasts: BroadcastService
        self.cards: CardWaitService
        self.bot: ProactiveBot
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
        tokens = BotTokenProvider(self.settings)
        self.client = BotConnectorClient(
            self.session, tokens.token, timeout_seconds=self._dispatcher_settings.send_timeout_seconds
        )
        if self._own_events:
            self.events = WebhookSink(self.store, self.session, self._webhooks)
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
            self.store, self.client, self._dispatcher_settings, events=self.events, installer=installer
        )
        retention = self._dispatcher_settings.retention_seconds
        self.deliveries = DeliveryService(
            self.store, self.dispatcher, self.client, retention_seconds=retention, graph=self.graph_settings
        )
        self.broadcasts = BroadcastService(
            self.store, self.dispatcher, retention_seconds=retention, graph=self.graph, graph_settings=self.graph_settings
        )
        self.cards = CardWaitService(self.store, self.deliveries)
        self.bot = ProactiveBot(
            self.store,
            bot_name=self.settings.bot_name,
            events=self.events,
            cards=CardWaitHandler(self.store, self.client),
        )
        capture = ReferenceCaptureMiddleware(
            self.store, delete_on_uninstall=self.settings.delete_on_uninstall, on_forget=self._forget
        )
        self.endpoint = BotEndpoint(self.settings, self.bot, [capture])
        if self._run_dispatcher:
            self.dispatcher.start()
            self.broadcasts.start()
        if isinstance(self.events, WebhookSink):
            self.events.start()

    async def _forget(self, tenant_id: str, user_key: str) -> None:
        # DELETE_ON_UNINSTALL erases what ForgetRecipient erases, not only the references.
        await forget(self.store, PersonKey(tenant_id, user_key))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the bot loop from another thread and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

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
        if self._run_dispatcher:
            await self.broadcasts.stop()
            await self.dispatcher.stop()
        if isinstance(self.events, WebhookSink):
            await self.events.close()
        if self.graph is not None:
            await self.graph.close()
        await self.session.close()
        await self.store.close()
