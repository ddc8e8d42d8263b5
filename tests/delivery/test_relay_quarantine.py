"""The webhook relay (bot/webhooks.py): an event that decodes but cannot be posted (its body holds a lone
surrogate, as a document written by another program can) is moved to quarantine after 3 failures in a
row instead of being claimed again for ever; an event that goes out resets nothing for the others."""

from __future__ import annotations

import asyncio

from teams_proactive.bot.callback_guard import CallbackClient, CallbackPolicy
from teams_proactive.bot.model import Notification, Subscription
from teams_proactive.bot.quarantine import MAX_FAILURES
from teams_proactive.bot.store.memory import MemoryStore
from teams_proactive.bot.webhooks import WebhookSink


def test_an_event_that_keeps_failing_is_moved_aside() -> None:
    async def run() -> None:
        store = MemoryStore()
        client = CallbackClient(CallbackPolicy())
        sink = WebhookSink(store, client)
        try:
            await store.subscriptions.create(
                Subscription(id="s1", owner="k", event="userMessage", callback_url="https://flow.example/cb")
            )
            bad = Notification(id="n-bad", subscription_id="s1", body={"text": "\ud800"})
            await store.subscriptions.create_notifications([bad])
            for attempt in range(1, MAX_FAILURES + 1):
                assert await store.quarantine.list() == [], attempt
                await sink._deliver(bad)  # what the relay does with each claimed event
            (record,) = await store.quarantine.list()
            assert (record.kind, record.record_id) == ("notification", "n-bad")
            assert record.reason.startswith("UnicodeEncodeError") and "\ud800" not in record.reason
            assert await store.subscriptions.claim_notifications("me", 1e12, 10, 30) == []
        finally:
            await client.close()

    asyncio.run(run())
