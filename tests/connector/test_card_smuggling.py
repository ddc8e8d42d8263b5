"""Card ids only we can set: a card cannot answer another card, and a press by someone else is told so.

The attack (issue 24): any ``send`` key sends the person a card with an input whose id is one of our
tag names (``cardWaitId``) holding another card's id. Teams merges the inputs into the pressed
button's data, so pressing the harmless-looking card used to answer the other one in their name.
Two guards, each tested on its own: such a card is refused when it is sent (400, target ``card``),
and a press counts only when it comes from the message that carries the card (``replyToId``).
"""

from __future__ import annotations

from typing import Any

import pytest
from teams_proactive.bot.cardtags import BROADCAST_KEY, CARD_WAIT_KEY, MESSAGE_KEY

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.connector.test_card_wait import delivered_card, install, invoke, start
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def smuggling_card(tag: str, value: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": "Lunch on Friday?"},
            {"type": "Input.Text", "id": tag, "value": value, "isVisible": False},
        ],
        "actions": [{"type": "Action.Submit", "title": "Yes", "data": {"decision": "approve"}}],
    }


def card_status(live: LiveApp, card_id: str) -> str:
    return str(live.api("GET", f"/api/v1/cards/wait/{card_id}", API_KEY).json()["status"])


@pytest.mark.parametrize("tag", [CARD_WAIT_KEY, MESSAGE_KEY, BROADCAST_KEY])
@pytest.mark.parametrize("route", ["/api/v1/messages", "/api/v1/broadcasts", "/api/v1/cards/wait"])
def test_a_card_with_an_input_named_like_our_tags_is_refused(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user, tag: str, route: str
) -> None:
    user = make_user()
    install(live, connector, user)
    target = start(live, user, hooks.url("run")).json()["id"]
    card = smuggling_card(tag, target)
    body: dict[str, Any] = {"card": card, "recipient": user.upn}
    if route == "/api/v1/broadcasts":
        body = {"card": card, "recipients": [user.upn]}
    if route == "/api/v1/cards/wait":
        body["notificationUrl"] = hooks.url("other")
    response = live.api("POST", route, API_KEY, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ValidationError" and error["target"] == "card"
    assert f"'{tag}'" in error["message"]


def test_a_press_from_another_message_does_not_answer_the_card(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    card_id = start(live, user, hooks.url("run")).json()["id"]
    waiting = delivered_card(connector, user)
    # Another message in the same chat (as a card sent before the check, or by another route, would be):
    # the person presses it, and the id of the waiting card arrives in the data as an input's value.
    other = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi", "wait": 10})
    assert other.json()["status"] == "delivered", other.text
    smuggled = {CARD_WAIT_KEY: card_id, "decision": "approve"}
    press = act.card_submit(user, connector.service_url(), smuggled)
    press["replyToId"] = other.json()["teamsMessageId"]
    assert live.activity(press).status_code == 200
    pressed = invoke(user, connector.service_url(), {"verb": "approve", "data": smuggled}, {}, "f:not-the-card")
    answer = live.activity(pressed)
    assert answer.status_code == 200
    assert answer.json()["value"] == "This card was not sent to you."
    assert card_status(live, card_id) == "waiting"
    assert hooks.bodies("run", ok_only=False) == []

    # The same press from the card's own message counts.
    button = waiting.activity["attachments"][0]["content"]["actions"][0]
    own = invoke(user, connector.service_url(), button, {"comment": "ok"}, waiting.activity_id or "")
    answer = live.activity(own)
    assert answer.json()["value"] == "Thanks, your response was recorded."
    wait_until(lambda: card_status(live, card_id) == "responded", what="the answer")


def test_someone_else_pressing_the_card_is_answered_neutrally(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    colleague = make_user(name="Mallory", upn="mallory@contoso.example")
    for person in (user, colleague):
        install(live, connector, person)
    card_id = start(live, user, hooks.url("run")).json()["id"]
    waiting = delivered_card(connector, user)
    content = waiting.activity["attachments"][0]["content"]
    forwarded = invoke(colleague, connector.service_url(), content["actions"][0], {}, waiting.activity_id or "")
    answer = live.activity(forwarded)
    assert answer.status_code == 200
    assert answer.json()["value"] == "This card was not sent to you."
    assert card_status(live, card_id) == "waiting"
