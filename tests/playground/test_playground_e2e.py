"""End to end with Microsoft 365 Agents Playground (npm, pinned): install -> SendMessage by UPN -> arrives."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import API_KEY
from tests.support.live_app import LiveApp
from tests.support.playground import Playground

pytestmark = pytest.mark.playground


@pytest.fixture
def playground_app(app_env: dict[str, str]) -> Iterator[tuple[LiveApp, Playground]]:
    with LiveApp(app_env) as live, Playground(f"{live.url}/api/messages", timezone="Europe/Berlin") as playground:
        yield live, playground


def _wait_reachable(live: LiveApp, upn: str) -> dict:
    # Installation activities reach the bot after the playground answered; poll the API until it knows.
    deadline = time.monotonic() + 15
    while True:
        response = live.api("GET", f"/api/v1/recipients/{upn}", API_KEY)
        if response.status_code == 200 and response.json().get("reachable"):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"recipient never became reachable: {response.status_code} {response.text}")
        time.sleep(0.05)  # polling interval of a deadline-bounded wait, not synchronisation


def test_install_then_send_text_and_card_by_upn(playground_app: tuple[LiveApp, Playground]) -> None:
    live, playground = playground_app
    playground.install()
    welcome = playground.wait_for_bot_message(lambda m: "stop" in (m.text or ""), timeout=15)
    assert "notifications" in welcome.text

    person = _wait_reachable(live, playground.user.upn)
    assert person["aadObjectId"] == playground.user.aad_object_id
    assert person["tenantId"] == playground.tenant_id
    # Install activities carry no time zone; the first message from the user does.
    playground.send_user_message("help")
    deadline = time.monotonic() + 15
    while live.api("GET", f"/api/v1/recipients/{playground.user.upn}", API_KEY).json()["timezone"] != "Europe/Berlin":
        assert time.monotonic() < deadline, "time zone never captured"
        time.sleep(0.05)

    mark = playground.mark()
    response = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": playground.user.upn, "text": "Your **ticket** was assigned"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "delivered"
    message = playground.wait_for_bot_message(lambda m: "ticket" in (m.text or ""), since=mark, timeout=15)
    assert message.conversation_id == playground.conversation_id

    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Approve expense 7?"}]}
    mark = playground.mark()
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": playground.user.upn, "card": card})
    assert response.status_code == 200, response.text
    arrived = playground.wait_for_bot_message(lambda m: bool(m.cards), since=mark, timeout=15)
    assert arrived.cards[0]["body"][0]["text"] == "Approve expense 7?"


def test_stop_command_in_playground_opts_out(playground_app: tuple[LiveApp, Playground]) -> None:
    live, playground = playground_app
    playground.install()
    _wait_reachable(live, playground.user.upn)
    mark = playground.mark()
    playground.send_user_message("stop")
    playground.wait_for_bot_message(lambda m: "won't send" in (m.text or ""), since=mark, timeout=15)
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": playground.user.upn, "text": "hi"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RecipientOptedOut"
