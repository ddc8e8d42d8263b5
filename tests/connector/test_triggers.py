"""The webhook triggers over real HTTP: subscribe with a local callback server, activities through
/api/messages, the documented payload at the callback, retries, 410 Gone, unsubscribe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from teams_proactive.connector.keys import create_key

from tests.conftest import API_KEY
from tests.connector.support import OPENAPI_DIR, CallbackServer, load, pending_events, resolve, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp

SPEC = load(OPENAPI_DIR / "apiDefinition.swagger.json")


def subscribe(live: LiveApp, hooks: CallbackServer, path: str, name: str, key: str = API_KEY, **extra: Any) -> str:
    response = live.api("POST", f"/api/v1/subscriptions{path}", key, json={"notificationUrl": hooks.url(name), **extra})
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location == f"{live.url}/api/v1/subscriptions/{response.json()['id']}"
    return location


def unsubscribe(live: LiveApp, location: str, key: str = API_KEY) -> int:
    return live.api("DELETE", location.removeprefix(live.url), key).status_code


def assert_documented(payload: dict[str, Any], path: str) -> None:
    """The payload has only the fields the trigger's x-ms-notification-content documents, and its required ones."""
    schema = resolve(SPEC, SPEC["paths"][f"/api/v1/subscriptions{path}"]["x-ms-notification-content"]["schema"])
    assert set(payload) <= set(schema["properties"]), set(payload) - set(schema["properties"])
    assert set(schema.get("required", [])) <= set(payload)
    for name, value in payload.items():
        prop = schema["properties"][name]
        if value is not None and prop.get("type") == "object" and "properties" in prop:
            assert set(value) <= set(prop["properties"]), name


def install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    assert live.activity(act.install(user, connector.service_url())).status_code == 200


def test_message_and_card_submission_reach_the_flow_then_unsubscribe_stops_them(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    messages = subscribe(live, hooks, "/user-messages", "messages")
    cards = subscribe(live, hooks, "/card-submissions", "cards")

    assert live.activity(act.message(user, connector.service_url(), "Where is my laptop?")).status_code == 200
    (payload,) = wait_until(lambda: hooks.bodies("messages"), what="the message callback")
    assert_documented(payload, "/user-messages")
    assert payload["event"] == "userMessage" and payload["text"] == "Where is my laptop?"
    assert payload["tenantId"] == user.tenant_id
    assert payload["user"] == {
        "id": user.user_id,
        "name": user.name,
        "aadObjectId": user.aad_object_id,
        "upn": user.upn,
        "email": user.email,
    }
    assert payload["surface"] == "teams" and payload["conversationId"] == user.conversation_id
    assert payload["subscriptionId"] == messages.rsplit("/", 1)[-1]
    # A flow listens, so the bot does not answer with its help text.
    assert all("stop" not in r.activity.get("text", "") for r in connector.sent(user.conversation_id)[1:])

    assert live.activity(act.card_submit(user, connector.service_url(), {"choice": "b"})).status_code == 200
    (card,) = wait_until(lambda: hooks.bodies("cards"), what="the card callback")
    assert_documented(card, "/card-submissions")
    assert card["event"] == "cardSubmitted" and card["data"] == {"choice": "b"}
    assert card["handledByCardWait"] is False and card["user"]["upn"] == user.upn
    assert len(hooks.bodies("messages")) == 1  # each trigger hears only its own event

    assert unsubscribe(live, messages) == 204
    assert unsubscribe(live, cards) == 204
    assert unsubscribe(live, cards) == 404
    before = len(connector.sent(user.conversation_id))
    assert live.activity(act.message(user, connector.service_url(), "anyone there?")).status_code == 200
    # Nobody listens any more: the bot answers with its help text, and no callback was made.
    assert "**stop**" in connector.sent(user.conversation_id)[before].activity["text"]
    assert len(hooks.received) == 2


def test_installation_and_any_event_triggers(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    subscribe(live, hooks, "/installations", "installs")
    subscribe(live, hooks, "", "any", event="any")
    install(live, connector, user)
    assert live.activity(act.uninstall(user, connector.service_url())).status_code == 200
    installs = wait_until(lambda: len(hooks.bodies("installs")) == 2 and hooks.bodies("installs"), what="2 callbacks")
    assert [p["action"] for p in installs] == ["installed", "uninstalled"]
    for payload in installs:
        assert_documented(payload, "/installations")
        assert payload["event"] == "installationChanged" and payload["user"]["aadObjectId"] == user.aad_object_id
    everything = wait_until(lambda: len(hooks.bodies("any")) == 2 and hooks.bodies("any"), what="2 callbacks")
    for payload in everything:
        assert_documented(payload, "")


def test_delivery_failure_trigger(live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user) -> None:
    user = make_user()
    install(live, connector, user)
    subscribe(live, hooks, "/delivery-failures", "failures")
    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", "User blocked the conversation with the bot."))
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi", "wait": 30})
    assert response.status_code == 200 and response.json()["status"] == "failed"
    (payload,) = wait_until(lambda: hooks.bodies("failures"), what="the failure callback")
    assert_documented(payload, "/delivery-failures")
    assert payload["event"] == "deliveryFailed" and payload["id"] == response.json()["id"]
    assert payload["recipient"] == user.upn and payload["error"]["code"] == "RecipientUnreachable"
    assert payload["tenantId"] == user.tenant_id


def test_callback_is_retried_with_the_same_event_id(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    subscribe(live, hooks, "/user-messages", "flaky")
    hooks.answer_next(503, 429, headers={"Retry-After": "0"})
    live.activity(act.message(user, connector.service_url(), "hello"))
    (payload,) = wait_until(lambda: hooks.bodies("flaky"), what="the callback after retries")
    attempts = hooks.bodies("flaky", ok_only=False)
    assert len(attempts) == 3 and {a["eventId"] for a in attempts} == {payload["eventId"]}


def test_a_callback_that_keeps_failing_or_refuses_is_given_up_and_the_trigger_lives_on(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    subscribe(live, hooks, "/user-messages", "flow")

    def waiting() -> list[dict[str, Any]]:
        return pending_events(Path(live.runtime.store.path))

    # Down for every attempt (4 in these tests): retried, then dropped from the outbox.
    hooks.answer_next(503, 502, 500, 504)
    live.activity(act.message(user, connector.service_url(), "first"))
    wait_until(lambda: len(hooks.received) == 4 and not waiting(), what="four attempts, then nothing waiting")
    # A 400 is the flow refusing the event: no retry.
    hooks.answer_next(400)
    live.activity(act.message(user, connector.service_url(), "second"))
    wait_until(lambda: len(hooks.received) == 5 and not waiting(), what="one attempt, then nothing waiting")
    # The subscription is still there: the next event reaches the flow.
    live.activity(act.message(user, connector.service_url(), "third"))
    (delivered,) = wait_until(lambda: hooks.bodies("flow"), what="the third event")
    assert delivered["text"] == "third"
    assert [c.status for c in hooks.received] == [503, 502, 500, 504, 400, 202]
    assert [c.body["text"] for c in hooks.received] == ["first"] * 4 + ["second", "third"]


def test_gone_callback_removes_the_subscription(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    location = subscribe(live, hooks, "/user-messages", "deleted-flow")
    subscription_id = location.rsplit("/", 1)[-1]
    hooks.answer_next(410)
    live.activity(act.message(user, connector.service_url(), "hello"))
    wait_until(
        lambda: live.runtime.call(live.runtime.store.subscriptions.get(subscription_id)) is None,
        what="the subscription to be removed",
    )
    assert len(hooks.received) == 1  # 410 is final: no retry
    assert unsubscribe(live, location) == 404


def test_a_tenant_limited_key_hears_only_its_tenant(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    _, key = live.runtime.call(
        create_key(live.runtime.store, "fabrikam-flows", tenant_id="tenant-fabrikam", scopes=["send"])
    )
    contoso = make_user()
    fabrikam = make_user(name="Fab Person", upn="fab@fabrikam.example", tenant_id="tenant-fabrikam")
    install(live, connector, contoso)
    install(live, connector, fabrikam)
    location = subscribe(live, hooks, "/user-messages", "fabrikam", key=key)
    refused = live.api(
        "POST", "/api/v1/subscriptions/user-messages", key,
        json={"notificationUrl": hooks.url("x"), "tenantId": "tenant-contoso"},
    )  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Forbidden"

    live.activity(act.message(contoso, connector.service_url(), "from contoso"))
    live.activity(act.message(fabrikam, connector.service_url(), "from fabrikam"))
    (payload,) = wait_until(lambda: hooks.bodies("fabrikam"), what="the fabrikam callback")
    assert payload["text"] == "from fabrikam" and payload["tenantId"] == "tenant-fabrikam"
    # Contoso's message found no listener (its turn answered with the help text), so nothing more will come.
    assert "**stop**" in connector.sent(contoso.conversation_id)[-1].activity["text"]
    assert len(hooks.received) == 1
    assert unsubscribe(live, location, key=key) == 204


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({}, "notificationUrl"),
        ({"notificationUrl": "not a url"}, "notificationUrl"),
        ({"notificationUrl": "ftp://example.com/x"}, "notificationUrl"),
        ({"notificationUrl": "https://example.com/x", "colour": "red"}, "colour"),
    ],
)
def test_subscribe_validates_the_request(live: LiveApp, body: dict[str, Any], target: str) -> None:
    response = live.api("POST", "/api/v1/subscriptions/user-messages", API_KEY, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ValidationError" and target in response.json()["error"]["message"]


def test_only_the_owner_may_unsubscribe(live: LiveApp, hooks: CallbackServer) -> None:
    location = subscribe(live, hooks, "/installations", "owned")
    _, other = live.runtime.call(create_key(live.runtime.store, "someone-else", tenant_id=None, scopes=["send"]))
    assert unsubscribe(live, location, key=other) == 404
    assert unsubscribe(live, location) == 204
