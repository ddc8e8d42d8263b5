"""SendCardAndWait over real HTTP: 202 + Location, polls answer 202, the person answers in Teams
(an adaptiveCard/action invoke or an Action.Submit message), the poll answers 200 with the values and
who answered, and the card in the chat is replaced by one that shows the answer."""

from __future__ import annotations

import copy
from typing import Any

from bot.cardwait import CORRELATION_KEY
from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Received, Scripted
from tests.support.live_app import LiveApp

APPROVAL = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [
        {"type": "TextBlock", "text": "Approve the purchase of 3 laptops?", "wrap": True},
        {"type": "Input.Text", "id": "comment", "label": "Comment"},
        {
            "type": "Input.ChoiceSet",
            "id": "priority",
            "label": "Priority",
            "choices": [{"title": "High", "value": "h"}, {"title": "Low", "value": "l"}],
        },
    ],
    "actions": [
        {"type": "Action.Execute", "title": "Approve", "verb": "approve", "data": {"decision": "approve"}},
        {"type": "Action.Submit", "title": "Reject", "data": {"decision": "reject"}},
    ],
}


def start(live: LiveApp, user: act.TeamsUser, **extra: Any) -> Any:
    response = live.api("POST", "/api/v1/cards/wait", API_KEY, json={"recipient": user.upn, "card": APPROVAL, **extra})
    assert response.status_code == 202, response.text
    assert int(response.headers["Retry-After"]) > 0
    return response


def poll(live: LiveApp, location: str) -> Any:
    return live.api("GET", location.removeprefix(live.url), API_KEY)


def delivered_card(connector: FakeConnector, user: act.TeamsUser) -> Received:
    def card() -> Received | None:
        sent = [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")]
        return sent[-1] if sent else None

    return wait_until(card, what="the card in the chat")


def invoke(user: act.TeamsUser, service_url: str, action: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """An Action.Execute press as Teams posts it: the button's data merged with the inputs."""
    activity = act.message(user, service_url, "")
    activity.pop("text")
    activity.update(
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": action["verb"], "data": {**action["data"], **inputs}},
               "trigger": "manual"},
    )  # fmt: skip
    return activity


def install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    assert live.activity(act.install(user, connector.service_url())).status_code == 200


def test_card_and_wait_round_trip_with_action_execute(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json={"notificationUrl": hooks.url("cards")})
    started = start(live, user)
    card_id = started.json()["id"]
    location = started.headers["Location"]
    assert location == f"{live.url}/api/v1/cards/wait/{card_id}"

    sent = delivered_card(connector, user)
    content = sent.activity["attachments"][0]["content"]
    # Every submit button carries the card's id; the rest of the card is as given.
    assert [a["data"][CORRELATION_KEY] for a in content["actions"]] == [card_id, card_id]
    assert content["body"] == APPROVAL["body"]

    (waiting,) = wait_until(lambda: (r := poll(live, location)).json()["status"] == "waiting" and (r,), what="waiting")
    assert waiting.status_code == 202 and waiting.headers["Location"] == location
    assert waiting.json()["response"] is None and waiting.json()["messageId"] == sent.activity_id

    execute = content["actions"][0]
    answered = live.activity(invoke(user, connector.service_url(), execute, {"comment": "Go ahead", "priority": "h"}))
    assert answered.status_code == 200 and answered.json()["statusCode"] == 200

    done = poll(live, location)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "responded" and body["id"] == card_id
    assert body["response"] == {"decision": "approve", "comment": "Go ahead", "priority": "h"}
    assert body["action"] == "Approve" and body["verb"] == "approve"
    assert body["respondedBy"] == {
        "name": user.name, "upn": user.upn, "email": user.email, "aadObjectId": user.aad_object_id
    }  # fmt: skip
    assert body["respondedAt"]

    # The card in the chat now shows the answer, without buttons, in place of the original.
    (update,) = [r for r in connector.received if r.method == "PUT" and r.conversation_id == user.conversation_id]
    assert update.activity_id == sent.activity_id
    shown = update.activity["attachments"][0]["content"]
    assert "actions" not in shown
    facts = {f["title"]: f["value"] for b in shown["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts == {"Comment": "Go ahead", "Priority": "High"}
    assert "Approve" in shown["body"][-1]["text"] and user.name in shown["body"][-1]["text"]

    # A flow listening to card submissions hears it too, marked as answering a waiting card.
    (event,) = wait_until(lambda: hooks.bodies("cards"), what="the card callback")
    assert event["handledByCardWait"] is True and event["data"][CORRELATION_KEY] == card_id


def test_action_submit_answer_and_first_answer_wins(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    started = start(live, user, text="Please decide by Friday.", idempotencyKey="po-4711")
    location = started.headers["Location"]
    content = delivered_card(connector, user).activity["attachments"][0]["content"]
    wait_until(lambda: poll(live, location).json()["status"] == "waiting", what="waiting")

    reject = content["actions"][1]
    submit = act.card_submit(user, connector.service_url(), {**reject["data"], "comment": "Too expensive"})
    assert live.activity(submit).status_code == 200
    later = act.card_submit(user, connector.service_url(), {**content["actions"][1]["data"], "comment": "changed"})
    assert live.activity(later).status_code == 200

    body = poll(live, location).json()
    assert body["response"] == {"decision": "reject", "comment": "Too expensive"}
    assert body["action"] == "Reject" and body["verb"] is None
    assert len([r for r in connector.received if r.method == "PUT"]) == 1
    # Starting again with the same idempotency key returns the same card, already answered.
    again = live.api(
        "POST",
        "/api/v1/cards/wait",
        API_KEY,
        json={
            "recipient": user.upn, "card": APPROVAL, "text": "Please decide by Friday.", "idempotencyKey": "po-4711"
        },
    )  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == started.json()["id"]
    # The card is also a message: its delivery status is there.
    message = live.api("GET", f"/api/v1/messages/{started.json()['id']}", API_KEY).json()
    assert message["status"] == "delivered"


def test_a_message_back_button_answers_the_card(live: LiveApp, connector: FakeConnector, make_user) -> None:
    """An Action.Submit with ``msteams: {type: messageBack}`` arrives as a message with text *and* value:
    it is the card's answer, not a chat message (no help text, no opt-out by its words)."""
    user = make_user()
    install(live, connector, user)
    card = {
        **APPROVAL,
        "actions": [
            {
                "type": "Action.Submit",
                "title": "Approve",
                "data": {
                    "msteams": {
                        "type": "messageBack",
                        "text": "stop",
                        "displayText": "OK",
                        "value": {"decision": "approve"},
                    }
                },
            }
        ],
    }
    started = start(live, user, card=card)
    location = started.headers["Location"]
    content = delivered_card(connector, user).activity["attachments"][0]["content"]
    wait_until(lambda: poll(live, location).json()["status"] == "waiting", what="waiting")
    before = len(connector.sent(user.conversation_id))

    # Teams posts the button's msteams.value (where the card's id was written) with the inputs, and
    # the button's messageBack text along with it.
    value = content["actions"][0]["data"]["msteams"]["value"]
    assert value[CORRELATION_KEY] == started.json()["id"]
    press = act.card_submit(user, connector.service_url(), {**value, "comment": "fine"})
    press["text"] = "stop"
    assert live.activity(press).status_code == 200

    body = poll(live, location).json()
    assert body["status"] == "responded" and body["response"] == {"decision": "approve", "comment": "fine"}
    assert body["action"] == "Approve"
    # Not taken as the "stop" command: the person still gets notifications, and no reply was sent.
    recipient = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["optedOut"] is False
    assert [r.activity.get("text") for r in connector.sent(user.conversation_id)[before:]] == []


def test_only_the_recipient_can_answer_and_unknown_cards_are_ignored(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    colleague = make_user(name="Mallory", upn="mallory@contoso.example")
    stranger = make_user(name="Eve", upn="eve@fabrikam.example", tenant_id="tenant-fabrikam")
    for person in (user, colleague, stranger):
        install(live, connector, person)
    location = start(live, user).headers["Location"]
    content = delivered_card(connector, user).activity["attachments"][0]["content"]
    wait_until(lambda: poll(live, location).json()["status"] == "waiting", what="waiting")
    # Someone who learned the card's id answers it from their own chat: not taken.
    for other in (colleague, stranger):
        forged = act.card_submit(other, connector.service_url(), dict(content["actions"][0]["data"]))
        assert live.activity(forged).status_code == 200
    unknown = act.card_submit(user, connector.service_url(), {CORRELATION_KEY: "f" * 32, "decision": "approve"})
    assert live.activity(unknown).status_code == 200
    assert poll(live, location).status_code == 202


def test_undeliverable_or_deleted_card_fails_the_wait(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", "blocked"), user.conversation_id)
    location = start(live, user).headers["Location"]
    # (a requests.Response is falsy when it is an error, hence the tuple)
    (failed,) = wait_until(lambda: (r := poll(live, location)).status_code != 202 and (r,), what="the failure")
    assert failed.status_code == 409 and failed.json()["error"]["code"] == "MessageNotDelivered"

    other = make_user(name="Megan Bowen", upn="megan@contoso.example")
    install(live, connector, other)
    started = start(live, other)
    wait_until(lambda: poll(live, started.headers["Location"]).json()["status"] == "waiting", what="waiting")
    assert live.api("DELETE", f"/api/v1/messages/{started.json()['id']}", API_KEY).status_code == 200
    deleted = poll(live, started.headers["Location"])
    assert deleted.status_code == 409 and "deleted" in deleted.json()["error"]["message"]


def test_card_and_wait_validates_the_card(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    no_buttons = copy.deepcopy(APPROVAL)
    no_buttons.pop("actions")
    cases = [
        ({"recipient": user.upn}, "card"),
        ({"recipient": user.upn, "card": no_buttons}, "card"),
        ({"recipient": user.upn, "card": {"type": "AdaptiveCard"}}, "card"),
    ]
    for body, target in cases:
        response = live.api("POST", "/api/v1/cards/wait", API_KEY, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "ValidationError" and target in response.json()["error"]["message"]
    plain = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"}).json()
    assert live.api("GET", f"/api/v1/cards/wait/{plain['id']}", API_KEY).status_code == 404
    unknown = live.api("POST", "/api/v1/cards/wait", API_KEY, json={"recipient": "nobody@x.example", "card": APPROVAL})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RecipientNotFound"
