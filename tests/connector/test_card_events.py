"""OnCardSubmitted filtered by the maker's cardType, with the message, button and values of every card
the bot sends (SendMessage, broadcasts); and the recipient picker's internal operation."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.cardtags import BROADCAST_KEY, MESSAGE_KEY

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Received
from tests.support.live_app import LiveApp

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "Input.Text", "id": "reason", "label": "Reason"}],
    "actions": [
        {"type": "Action.Submit", "title": "Accept", "data": {"choice": "yes"}},
        {"type": "Action.Execute", "title": "Decline", "verb": "decline", "data": {"choice": "no"}},
    ],
}


def install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    assert live.activity(act.install(user, connector.service_url())).status_code == 200


def card_sent(connector: FakeConnector, user: act.TeamsUser, count: int) -> Received:
    def sent() -> list[Received]:
        return [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")]

    return wait_until(lambda: len(sent()) >= count and sent(), what=f"card {count}")[count - 1]


def press(user: act.TeamsUser, connector: FakeConnector, card: Received, index: int, reason: str) -> dict[str, Any]:
    action = card.activity["attachments"][0]["content"]["actions"][index]
    if action["type"] == "Action.Submit":
        activity = act.card_submit(user, connector.service_url(), {**action["data"], "reason": reason})
    else:
        activity = act.message(user, connector.service_url(), "")
        activity.pop("text")
        activity.update(
            type="invoke",
            name="adaptiveCard/action",
            value={"action": {"type": "Action.Execute", "verb": action["verb"],
                              "data": {**action["data"], "reason": reason}}, "trigger": "manual"},
        )  # fmt: skip
    activity["replyToId"] = card.activity_id
    return activity


def test_card_trigger_filters_by_card_type_and_names_message_button_and_values(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    for name, card_type in (("expense", "expense"), ("all", None)):
        body = {"notificationUrl": hooks.url(name), **({"cardType": card_type} if card_type else {})}
        subscribed = live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json=body)
        assert subscribed.status_code == 201 and subscribed.json()["cardType"] == card_type
    expense = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "card": CARD, "cardType": "expense"}
    ).json()
    assert expense["cardType"] == "expense"
    leave = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "card": CARD, "cardType": "leave"}
    ).json()
    first, second = card_sent(connector, user, 1), card_sent(connector, user, 2)
    assert first.activity["attachments"][0]["content"]["actions"][0]["data"][MESSAGE_KEY] == expense["id"]

    assert live.activity(press(user, connector, first, 0, "trip")).status_code == 200
    assert live.activity(press(user, connector, second, 1, "busy")).status_code == 200

    everything = wait_until(lambda: len(hooks.bodies("all")) == 2 and hooks.bodies("all"), what="both events")
    (only,) = wait_until(lambda: hooks.bodies("expense"), what="the expense event")
    assert only["messageId"] == expense["id"] and only["cardType"] == "expense" and only["cardId"] is None
    assert only["actionTitle"] == "Accept" and only["verb"] is None
    assert only["values"] == {"choice": "yes", "reason": "trip"}
    assert only["user"]["upn"] == user.upn and only["teamsMessageId"] == first.activity_id
    declined = next(e for e in everything if e["messageId"] == leave["id"])
    assert declined["cardType"] == "leave" and declined["actionTitle"] == "Decline" and declined["verb"] == "decline"
    assert declined["values"] == {"choice": "no", "reason": "busy"}
    assert len(hooks.bodies("expense")) == 1  # the leave card was not for it (both events were out)


def test_a_broadcast_card_press_names_the_persons_message(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    for user in (ana, ben):
        install(live, connector, user)
    live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json={"notificationUrl": hooks.url("cards")})
    started = live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": [ana.upn, ben.upn], "card": CARD, "cardType": "survey", "waitForCompletion": True},
    )
    assert started.status_code in (200, 202), started.text
    broadcast_id = started.json()["id"]
    assert started.json()["cardType"] == "survey"
    card = card_sent(connector, ben, 1)
    assert card.activity["attachments"][0]["content"]["actions"][0]["data"][BROADCAST_KEY] == broadcast_id
    assert live.activity(press(ben, connector, card, 0, "ok")).status_code == 200
    (event,) = wait_until(lambda: hooks.bodies("cards"), what="the card event")
    assert event["broadcastId"] == broadcast_id and event["cardType"] == "survey"
    assert event["user"]["upn"] == ben.upn and event["messageId"].startswith(f"{broadcast_id}-")
    # A broadcast's send outcomes are written in groups (bot/delivery/outcomes.py): the press may
    # come before the group holding Ben's is written.
    message = wait_until(
        lambda: (m := live.api("GET", f"/api/v1/messages/{event['messageId']}", API_KEY).json())["teamsMessageId"]
        and m,
        what="the message's recorded send",
    )
    assert message["recipient"] == ben.upn and message["teamsMessageId"] == card.activity_id


def test_recipient_picker_lists_reachable_people(live: LiveApp, connector: FakeConnector, make_user) -> None:
    ana, ben = make_user("Ana Lopez", "ana@contoso.example"), make_user("Ben Stopped", "ben@contoso.example")
    gone = make_user("Gus Gone", "gus@contoso.example")
    for user in (ana, ben, gone):
        install(live, connector, user)
    live.activity(act.message(ben, connector.service_url(), "stop"))
    live.activity(act.uninstall(gone, connector.service_url()))
    people = live.api("GET", "/api/v1/people", API_KEY)
    assert people.status_code == 200, people.text
    assert people.json()["value"] == [{"upn": ana.upn, "name": "Ana Lopez", "label": f"Ana Lopez ({ana.upn})"}]
    assert live.api("GET", "/api/v1/people?search=LOPEZ", API_KEY).json()["value"][0]["upn"] == ana.upn
    assert live.api("GET", "/api/v1/people?search=nobody", API_KEY).json()["value"] == []
    assert live.api("GET", "/api/v1/people?bogus=1", API_KEY).status_code == 400
    assert live.api("GET", "/api/v1/people").status_code == 401
