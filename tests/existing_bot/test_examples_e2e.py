"""An existing bot with ReferenceCapture, and teams-proactive beside it, end to end, for each SDK.

Each example of examples/ runs in its own process on its own port (botbuilder's CloudAdapter, the
Microsoft 365 Agents SDK's CloudAdapter + AgentApplication); ``teams-proactive serve`` runs in
another process on the same SQLite store. One person talks to the bot in the Teams chat, in Copilot
in Teams and in Microsoft 365 Copilot (the bot still answers with its own logic, seen at the fake
Bot Connector); the service sends by UPN and the message lands in the Teams chat; a card sent with
SendCardAndWait and answered through the bot's endpoint reaches the flow's callback once; a read
receipt sent to the bot marks the delivery read. With the store down, the bot still answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.connector.support import CallbackServer, wait_until
from tests.connector.test_card_wait import APPROVAL, invoke
from tests.engagement.conftest import read_receipt
from tests.support import activities as act
from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.example_bot import ExampleBot
from tests.support.fake_connector import FakeConnector, Member
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.slow

API_KEY = "existing-bot-bootstrap-key-0123456789"
REPLY = {"botbuilder": "Echo: ", "agents": "You said: "}


def _replies(fake: FakeConnector, conversation_id: str, prefix: str) -> list[str]:
    return [
        r.activity.get("text", "") for r in fake.sent(conversation_id) if r.activity.get("text", "").startswith(prefix)
    ]


@pytest.mark.parametrize("sdk", ["botbuilder", "agents"])
def test_the_example_bot_captures_and_the_service_sends_as_it(sdk: str, tmp_path: Path) -> None:
    _scenario(sdk, {"STORE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}, tmp_path)


@pytest.mark.cosmos
@pytest.mark.parametrize("sdk", ["botbuilder", "agents"])
def test_the_same_on_cosmos_db(sdk: str, tmp_path: Path, cosmos_target: CosmosTarget, cosmos_database: str) -> None:
    """Several hosts share Cosmos DB: the bot and the service on the real azure-cosmos SDK and the test server."""
    _scenario(sdk, cosmos_target.env(cosmos_database), tmp_path)


def _scenario(sdk: str, store_env: dict[str, str], tmp_path: Path) -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    with FakeConnector() as fake, CallbackServer() as hooks:
        fake.add_member(Member(user.user_id, user.name, user.aad_object_id, user.upn, user.upn, user.tenant_id))
        service_env = {
            **store_env, "CONNECTOR_API_KEY": API_KEY, "SERVER_CWD": str(tmp_path),
            "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32",
        }  # fmt: skip
        with (
            ExampleBot(sdk, store_env, log_path=tmp_path / "bot.log", cwd=tmp_path) as bot,
            ServerProcess(service_env, log_path=tmp_path / "service.log") as service,
        ):
            url = fake.service_url()
            # One person in three places; the bot answers each with its own logic.
            for activity, conversation in (
                (act.message(user, url, "hello from the chat"), user.conversation_id),
                (act.teams_copilot_message(user, url, "hello from copilot"), user.copilot_conversation_id),
                (act.m365_copilot_message(user, url, "hello from m365"), user.m365_conversation_id),
            ):
                answer = bot.activity(activity)
                assert answer.status_code in (200, 201, 202), (answer.text, bot.log_tail())
                wait_until(
                    lambda c=conversation: _replies(fake, c, REPLY[sdk]), what=f"the bot's answer in {conversation}"
                )
            assert fake.member_lookups == 1  # once for the person, then kept

            # The service, in its own process on the same store, finds the person by UPN.
            person = service.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY)
            assert person.status_code == 200, person.text
            surfaces = {s["surface"] for s in person.json()["surfaces"]} if "surfaces" in person.json() else None
            assert surfaces is None or len(surfaces) == 3, person.json()

            sent = service.api(
                "POST",
                "/api/v1/messages",
                API_KEY,
                json={"recipient": user.upn, "text": "Your leave was approved", "wait": 20},
            )
            assert sent.status_code == 200, (sent.text, service.log_tail())
            delivery = sent.json()
            # The Teams chat, although the person spoke last in Microsoft 365 Copilot.
            assert delivery["status"] == "delivered" and delivery["conversationId"] == user.conversation_id
            assert [r.activity.get("text") for r in fake.sent(user.conversation_id)].count(
                "Your leave was approved"
            ) == 1

            # A read receipt to the bot's endpoint marks the service's delivery read.
            receipt = bot.activity(read_receipt(user, url, delivery["teamsMessageId"]))
            assert receipt.status_code in (200, 201, 202), receipt.text
            wait_until(
                lambda: service.api("GET", f"/api/v1/messages/{delivery['id']}", API_KEY).json()["readAt"],
                what="the delivery marked read",
            )

            # SendCardAndWait from the service; the person answers through the bot's endpoint.
            started = service.api(
                "POST",
                "/api/v1/cards/wait",
                API_KEY,
                json={"recipient": user.upn, "card": APPROVAL, "notificationUrl": hooks.url("run")},
            )
            assert started.status_code == 201, started.text
            card_id = started.json()["id"]

            def card() -> Any:
                cards = [r for r in fake.sent(user.conversation_id) if r.activity.get("attachments")]
                return cards[-1] if cards else None

            posted = wait_until(card, what="the card in the chat")
            execute = posted.activity["attachments"][0]["content"]["actions"][0]
            before = len(_replies(fake, user.conversation_id, REPLY[sdk]))
            press = invoke(user, url, execute, {"comment": "fine"}, posted.activity_id)
            answered = bot.activity(press)
            # Our invoke is answered by the middleware, in the SDK's own form; the bot's logic never sees it.
            assert answered.status_code == 200, (answered.text, bot.log_tail())
            assert answered.json()["statusCode"] == 200
            (result,) = wait_until(lambda: hooks.bodies("run"), timeout=40, what="the flow's callback")
            assert result["id"] == card_id and result["status"] == "responded"
            assert result["response"]["comment"] == "fine" and result["respondedBy"]["upn"] == user.upn
            # The card in the chat is replaced by the answered one, through the host bot's own connector.
            wait_until(
                lambda: [r for r in fake.received if r.method == "PUT" and r.activity_id == posted.activity_id],
                what="the answered card",
            )
            assert len(_replies(fake, user.conversation_id, REPLY[sdk])) == before
            # Once: a second press is answered but posts nothing more.
            assert bot.activity(invoke(user, url, execute, {"comment": "again"}, posted.activity_id)).status_code == 200
            read = service.api("GET", f"/api/v1/cards/wait/{card_id}", API_KEY).json()
            assert read["response"]["comment"] == "fine"
            assert len(hooks.bodies("run")) == 1


@pytest.mark.parametrize("sdk", ["botbuilder", "agents"])
def test_with_the_store_down_the_bot_still_answers(sdk: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    store = f"sqlite:///{blocker / 'store.db'}"  # cannot be created: every store call fails
    user = act.TeamsUser(name="Ben Ode", upn="ben@contoso.example")
    with (
        FakeConnector() as fake,
        ExampleBot(sdk, {"STORE_URL": store}, log_path=tmp_path / "bot.log", cwd=tmp_path) as bot,
    ):
        for text in ("first", "second"):
            answer = bot.activity(act.message(user, fake.service_url(), text))
            assert answer.status_code in (200, 201, 202), (answer.text, bot.log_tail())
            wait_until(
                lambda t=text: REPLY[sdk] + t in _replies(fake, user.conversation_id, REPLY[sdk]),
                what="the bot's own answer",
            )
        log = bot.log_tail(200)
        assert "capture skipped" in log or "capture failed" in log, log
        assert user.upn not in log and "first" not in log.replace(REPLY[sdk] + "first", "")
