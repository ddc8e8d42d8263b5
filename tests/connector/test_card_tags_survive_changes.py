"""The ids a card's buttons carry (which message, card or broadcast a press answers) survive every way a card
can be changed, and a maker's own card data cannot name another message.

SendMessage, SendCardAndWait and StartBroadcast write our ids into every submit button's data
(bot/cardtags.py). UpdateMessage and UpdateBroadcast replace the card in the chat: the new card must
carry the same ids, or a press on it answers nothing (a waiting card then waits until its timeout).
A press is posted as Teams posts an Action.Submit ("Card actions", learn.microsoft.com/microsoftteams/
platform: a message activity whose ``value`` holds the button's data merged with the inputs).
"""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.cardtags import BROADCAST_KEY, CARD_WAIT_KEY, MESSAGE_KEY

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Received
from tests.support.live_app import LiveApp


def _card(title: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": title}],
        "actions": [{"type": "Action.Submit", "title": "OK", "data": data or {"choice": title}}],
    }


def _install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    assert live.activity(act.install(user, connector.service_url())).status_code == 200


def _last_card(connector: FakeConnector, user: act.TeamsUser, method: str) -> Received:
    def found() -> Received | None:
        calls = [
            r for r in connector.received
            if r.method == method and r.conversation_id == user.conversation_id and r.activity.get("attachments")
        ]  # fmt: skip
        return calls[-1] if calls else None

    return wait_until(found, what=f"a {method} of a card")


def _press(live: LiveApp, connector: FakeConnector, user: act.TeamsUser, sent: Received, card: Received) -> None:
    data = card.activity["attachments"][0]["content"]["actions"][0]["data"]
    submit = act.card_submit(user, connector.service_url(), dict(data))
    submit["replyToId"] = sent.activity_id
    assert live.activity(submit).status_code == 200


def _delivered(live: LiveApp, message_id: str) -> None:
    wait_until(
        lambda: live.api("GET", f"/api/v1/messages/{message_id}", API_KEY).json()["status"] == "delivered",
        what="the message to be delivered",
    )


def test_a_waiting_card_updated_with_update_message_can_still_be_answered(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    _install(live, connector, user)
    started = live.api(
        "POST",
        "/api/v1/cards/wait",
        API_KEY,
        json={"recipient": user.upn, "card": _card("First"), "notificationUrl": hooks.url("run")},
    )
    assert started.status_code == 201, started.text
    card_id = started.json()["id"]
    sent = _last_card(connector, user, "POST")
    _delivered(live, card_id)
    changed = live.api("PUT", f"/api/v1/messages/{card_id}", API_KEY, json={"card": _card("Second")})
    assert changed.status_code == 200, changed.text
    update = _last_card(connector, user, "PUT")
    assert update.activity["attachments"][0]["content"]["actions"][0]["data"][CARD_WAIT_KEY] == card_id

    _press(live, connector, user, sent, update)
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["id"] == card_id and result["status"] == "responded"
    assert result["response"] == {"choice": "Second"}


def test_a_message_card_replaced_by_update_message_still_names_its_message(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    _install(live, connector, user)
    subscribed = live.api(
        "POST", "/api/v1/subscriptions/card-submissions", API_KEY,
        json={"notificationUrl": hooks.url("cards"), "cardType": "ticket"},
    )  # fmt: skip
    assert subscribed.status_code == 201, subscribed.text
    sent_body = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "card": _card("Open"), "cardType": "ticket"}
    ).json()
    sent = _last_card(connector, user, "POST")
    _delivered(live, sent_body["id"])
    assert live.api("PUT", f"/api/v1/messages/{sent_body['id']}", API_KEY, json={"card": _card("Closed")}).ok
    update = _last_card(connector, user, "PUT")
    assert update.activity["attachments"][0]["content"]["actions"][0]["data"][MESSAGE_KEY] == sent_body["id"]

    _press(live, connector, user, sent, update)
    (event,) = wait_until(lambda: hooks.bodies("cards"), what="the OnCardSubmitted event")
    assert event["messageId"] == sent_body["id"] and event["cardType"] == "ticket"


def test_a_broadcast_card_replaced_by_update_broadcast_still_names_its_broadcast(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    _install(live, connector, user)
    live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json={"notificationUrl": hooks.url("cards")})
    started = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [user.upn], "card": _card("v1")})
    assert started.status_code == 200, started.text
    broadcast_id = started.json()["id"]
    sent = _last_card(connector, user, "POST")
    wait_until(
        lambda: live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()["status"] == "completed",
        what="the broadcast to complete",
    )
    assert live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"card": _card("v2")}).ok
    update = _last_card(connector, user, "PUT")
    assert update.activity["attachments"][0]["content"]["actions"][0]["data"][BROADCAST_KEY] == broadcast_id

    _press(live, connector, user, sent, update)
    (event,) = wait_until(lambda: hooks.bodies("cards"), what="the OnCardSubmitted event")
    assert event["broadcastId"] == broadcast_id and event["messageId"]
    report = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
    assert report["counts"]["answered"] == 1


def test_a_makers_card_cannot_answer_another_waiting_card(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    """Card ids can be predictable (derived from an idempotency key): a card sent by another flow with a
    button whose data names that id must not answer the waiting card when the person presses it."""
    user = make_user()
    _install(live, connector, user)
    started = live.api(
        "POST",
        "/api/v1/cards/wait",
        API_KEY,
        json={"recipient": user.upn, "card": _card("Approve?"), "notificationUrl": hooks.url("run")},
    )
    card_id = started.json()["id"]
    _delivered(live, card_id)
    forged = _card("Click me", {"decision": "approve", CARD_WAIT_KEY: card_id})
    other = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "card": forged}).json()
    _delivered(live, other["id"])
    decoy = _last_card(connector, user, "POST")
    data = decoy.activity["attachments"][0]["content"]["actions"][0]["data"]
    assert data.get(CARD_WAIT_KEY) is None and data[MESSAGE_KEY] == other["id"]

    _press(live, connector, user, decoy, decoy)
    wait_until(
        lambda: live.runtime.call(live.runtime.store.outbox.get(other["id"])).responded_at is not None,
        what="the decoy press to be recorded",
    )
    assert live.api("GET", f"/api/v1/cards/wait/{card_id}", API_KEY).json()["status"] == "waiting"
    assert hooks.bodies("run", ok_only=False) == []
