"""SendCardAndWait on Cosmos DB (STORE_URL=cosmos): the card's callback registration and its
notifications (ids with dots, no expiry) go through the real azure-cosmos SDK; the answer reaches the
run's callback once and the registration is removed."""

from __future__ import annotations

from typing import Any

import pytest
from teams_proactive.bot.webhooks import WebhookSettings

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.support import activities as act
from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

pytestmark = pytest.mark.cosmos

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "Input.Text", "id": "comment", "label": "Comment"}],
    "actions": [{"type": "Action.Submit", "title": "OK", "data": {"ok": True}}],
}
FAST = WebhookSettings(max_attempts=4, backoff_base_seconds=0.02, backoff_max_seconds=0.1, timeout_seconds=5)


def test_card_and_wait_on_cosmos(
    connector: FakeConnector, make_user: Any, cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    env = {"CONNECTOR_API_KEY": API_KEY, "SEND_RATE_PER_TENANT": "200", "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32", **cosmos_target.env(cosmos_database)}
    user = make_user()
    with CallbackServer() as hooks, LiveApp(env, runtime_kwargs={"webhook_settings": FAST}) as live:
        assert live.activity(act.install(user, connector.service_url())).status_code == 200
        started = live.api(
            "POST",
            "/api/v1/cards/wait",
            API_KEY,
            json={"recipient": user.upn, "card": CARD, "notificationUrl": hooks.url("run")},
        )
        assert started.status_code == 201, started.text
        card_id = started.json()["id"]
        card = wait_until(
            lambda: [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")],
            what="the card in the chat",
        )[0]
        data = card.activity["attachments"][0]["content"]["actions"][0]["data"]
        press = act.card_submit(user, connector.service_url(), {**data, "comment": "yes"})
        press["replyToId"] = card.activity_id  # Teams points a press at the message that carries the card
        assert live.activity(press).status_code == 200
        (result,) = wait_until(lambda: hooks.bodies("run"), what="the callback")
        assert result["id"] == card_id and result["status"] == "responded"
        assert result["response"] == {"ok": True, "comment": "yes"}
        store = live.runtime.store
        wait_until(
            lambda: live.runtime.call(store.subscriptions.get(f"cardwait.{card_id}")) is None,
            what="the registration to be removed",
        )
        assert len(hooks.bodies("run", ok_only=False)) == 1
