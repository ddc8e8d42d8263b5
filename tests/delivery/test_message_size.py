"""Message size as Teams counts it: UTF-16 of the activity, base64 images excluded, 80 KB by default."""

from __future__ import annotations

import base64

import pytest
from teams_proactive.bot.delivery.messages import activity_size

from tests.conftest import API_KEY
from tests.delivery.conftest import install, send, texts_in
from tests.security.conftest import all_deliveries
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Hi"}]}
# A 150 KB PNG-looking payload inlined as a data URI: Teams does not count base64 images.
IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(range(256)) * 450).decode()


def test_size_is_utf16_of_the_activity_without_base64_images() -> None:
    ascii_size = activity_size({"text": "x" * 35_000})
    assert 70_000 < ascii_size < 75_000  # two bytes per ASCII character, plus the envelope
    assert activity_size({"text": "\U0001f600" * 1000}) - activity_size({"text": "x" * 1000}) == 2000  # surrogates
    with_image = {"card": {**CARD, "body": [{"type": "Image", "url": IMAGE}]}}
    assert len(IMAGE) > 150_000
    assert activity_size(with_image) < activity_size({"card": CARD}) + 200


def test_35000_ascii_characters_are_delivered(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    text = "x" * 35_000
    response = send(live, {"recipient": user.upn, "text": text, "wait": 30})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "delivered"
    assert texts_in(connector, user.conversation_id, text) == 1


def test_a_card_with_a_large_base64_image_is_not_refused(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    card = {**CARD, "body": [{"type": "TextBlock", "text": "Chart"}, {"type": "Image", "url": IMAGE}]}
    response = send(live, {"recipient": user.upn, "card": card, "wait": 30})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "delivered"


@pytest.mark.parametrize("route", ["SendMessage", "UpdateMessage", "StartBroadcast", "SendCardAndWait"])
def test_60000_characters_are_refused_with_413_before_the_outbox(
    live: LiveApp, connector: FakeConnector, make_user, route: str
) -> None:
    user = make_user()
    install(live, connector, user)
    big = "x" * 60_000
    existing: set[str] = set()
    if route == "UpdateMessage":
        sent = send(live, {"recipient": user.upn, "text": "small", "wait": 30}).json()
        existing = {sent["id"]}
    calls = len(connector.received)
    before = {d.id: d.content for d in all_deliveries(live)}
    if route == "SendMessage":
        response = send(live, {"recipient": user.upn, "text": big})
    elif route == "UpdateMessage":
        response = live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": big})
    elif route == "StartBroadcast":
        response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [user.upn], "text": big})
    else:
        card = {
            **CARD,
            "body": [{"type": "TextBlock", "text": big}],
            "actions": [{"type": "Action.Submit", "title": "OK", "data": {"ok": True}}],
        }
        body = {"recipient": user.upn, "card": card, "notificationUrl": "https://flows.contoso.example/run/1"}
        response = live.api("POST", "/api/v1/cards/wait", API_KEY, json=body)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "MessageTooLarge"
    assert "MAX_MESSAGE_KB" in error["message"] and "UTF-16" in error["message"]
    # Nothing queued, nothing changed, nothing sent.
    assert {d.id: d.content for d in all_deliveries(live)} == before
    assert {d.id for d in all_deliveries(live)} <= existing | set(before)
    assert len(connector.received) == calls


def test_max_message_kb_lowers_the_cap(app_env: dict[str, str], connector: FakeConnector, make_user) -> None:
    with LiveApp({**app_env, "MAX_MESSAGE_KB": "20"}) as app:
        user = make_user()
        install(app, connector, user)
        assert send(app, {"recipient": user.upn, "text": "x" * 9_000, "wait": 30}).status_code == 200
        refused = send(app, {"recipient": user.upn, "text": "x" * 11_000})
        assert refused.status_code == 413 and "20 KB" in refused.json()["error"]["message"]


@pytest.mark.parametrize("value", ["0", "-5", "101", "lots"])
def test_a_bad_max_message_kb_is_refused_at_start(value: str) -> None:
    from teams_proactive.bot.settings import BotSettings

    with pytest.raises(ValueError, match="MAX_MESSAGE_KB"):
        BotSettings.from_env({"MAX_MESSAGE_KB": value})


def test_teams_own_413_is_final_with_a_clear_message(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    connector.fail_next(1, Scripted.documented("413-message-size-too-big"), user.conversation_id)
    body = send(fast_live, {"recipient": user.upn, "text": "counted differently by Teams", "wait": 30}).json()
    assert body["status"] == "failed" and body["attempts"] == 1
    assert body["error"]["code"] == "MessageTooLarge"
    assert body["error"]["teamsCode"] == "MessageSizeTooBig"
    assert "100 KB" in body["error"]["message"]
    assert len(connector.calls_to(user.conversation_id)) == 2  # the welcome and the one refused try
    recipient = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["status"] == "active"
