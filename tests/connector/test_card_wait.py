"""SendCardAndWait as a Power Automate webhook action, over real HTTP: the test serves the run's callback
URL, the person presses the card as Teams sends each action type (an ``adaptiveCard/action`` invoke for
Action.Execute, a message activity with ``value`` for Action.Submit), and the callback receives the
answer exactly once without anyone polling; a DELETE of the Location cancels; a timeout ends the wait
with ``expired``; the card in the chat is replaced by one that shows the answer.

Activity shapes: "Universal Actions for Adaptive Cards" (the ``adaptiveCard/action`` invoke, value
``{action: {type, verb, data}, trigger}``) and "Card actions" (Action.Submit: a message whose ``value``
holds the button's data merged with the inputs, ``replyToId`` the card's activity), both on
learn.microsoft.com/microsoftteams/platform.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.bot import cardwait
from teams_proactive.bot.cardwait import CORRELATION_KEY

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, pending_events, wait_until
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


class RequestLog:
    """Every request the app serves, by path: shows that nothing polls while a card waits."""

    def __init__(self, live: LiveApp) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()
        inner = live.app.wsgi_app

        def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            with self._lock:
                self.paths.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
            return inner(environ, start_response)

        live.app.wsgi_app = logged  # type: ignore[method-assign]

    def api_calls(self, since: int = 0) -> list[str]:
        with self._lock:
            return [p for p in self.paths[since:] if " /api/v1/" in p]

    def __len__(self) -> int:
        with self._lock:
            return len(self.paths)


@pytest.fixture
def requests_seen(live: LiveApp) -> Iterator[RequestLog]:
    yield RequestLog(live)


def db_of(live: LiveApp) -> Path:
    return Path(live.env["STORE_URL"].removeprefix("sqlite:///"))


def start(live: LiveApp, user: act.TeamsUser, callback: str, **extra: Any) -> Any:
    body = {"recipient": user.upn, "card": APPROVAL, "notificationUrl": callback, **extra}
    response = live.api("POST", "/api/v1/cards/wait", API_KEY, json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{live.url}/api/v1/cards/wait/{response.json()['id']}"
    assert "Retry-After" not in response.headers  # nothing to poll
    return response


def delivered_card(connector: FakeConnector, user: act.TeamsUser) -> Received:
    def card() -> Received | None:
        sent = [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")]
        return sent[-1] if sent else None

    return wait_until(card, what="the card in the chat")


def invoke(user: act.TeamsUser, service_url: str, action: dict[str, Any], inputs: dict[str, Any], card_id: str) -> dict:
    """An Action.Execute press as Teams posts it: the button's data merged with the inputs."""
    activity = act.message(user, service_url, "")
    activity.pop("text")
    activity.update(
        type="invoke",
        name="adaptiveCard/action",
        replyToId=card_id,
        value={"action": {"type": "Action.Execute", "verb": action["verb"], "data": {**action["data"], **inputs}},
               "trigger": "manual"},
    )  # fmt: skip
    return activity


def install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    assert live.activity(act.install(user, connector.service_url())).status_code == 200


def card_events(live: LiveApp) -> list[dict[str, Any]]:
    return [e for e in pending_events(db_of(live)) if e["id"].startswith("cardwait.")]


def test_answer_by_action_execute_is_posted_to_the_callback_once_without_polling(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, requests_seen: RequestLog, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    assert live.api(
        "POST", "/api/v1/subscriptions/card-submissions", API_KEY,
        json={"notificationUrl": hooks.url("cards"), "cardType": "purchase"},
    ).status_code == 201  # fmt: skip
    started = start(live, user, hooks.url("run"), cardType="purchase")
    card_id = started.json()["id"]
    assert started.json()["status"] in ("sending", "waiting") and started.json()["response"] is None
    seen = len(requests_seen)

    sent = delivered_card(connector, user)
    content = sent.activity["attachments"][0]["content"]
    # Every submit button carries the card's id; the rest of the card is as given.
    assert [a["data"][CORRELATION_KEY] for a in content["actions"]] == [card_id, card_id]
    assert content["body"] == APPROVAL["body"]

    execute = content["actions"][0]
    press = invoke(user, connector.service_url(), execute, {"comment": "Go ahead", "priority": "h"}, sent.activity_id)
    answered = live.activity(press)
    assert answered.status_code == 200 and answered.json()["statusCode"] == 200

    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["id"] == card_id and result["status"] == "responded"
    assert result["response"] == {"decision": "approve", "comment": "Go ahead", "priority": "h"}
    assert result["action"] == "Approve" and result["verb"] == "approve" and result["cardType"] == "purchase"
    assert result["respondedBy"] == {
        "name": user.name, "upn": user.upn, "email": user.email, "aadObjectId": user.aad_object_id
    }  # fmt: skip
    assert result["respondedAt"] and result["teamsMessageId"] == sent.activity_id
    # The card is kept as long as a run may wait for it, on top of the report retention.
    stored = live.runtime.call(live.runtime.store.outbox.get(card_id))
    assert stored.expires_at - stored.delivered_at >= (30 + 30) * 86400 - 60
    # Between the start and the callback the API served no request at all: only the bot's activity.
    assert requests_seen.api_calls(seen) == []

    # The card in the chat now shows the answer, without buttons, in place of the original.
    (update,) = wait_until(
        lambda: [r for r in connector.received if r.method == "PUT" and r.conversation_id == user.conversation_id],
        what="the card update",
    )
    assert update.activity_id == sent.activity_id
    shown = update.activity["attachments"][0]["content"]
    assert "actions" not in shown
    facts = {f["title"]: f["value"] for b in shown["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts == {"Comment": "Go ahead", "Priority": "High"}
    assert "Approve" in shown["body"][-1]["text"] and user.name in shown["body"][-1]["text"]

    # OnCardSubmitted (filtered to the card type) hears it with the message, button and values.
    (event,) = wait_until(lambda: hooks.bodies("cards"), what="the card trigger")
    assert event["messageId"] == card_id and event["cardId"] == card_id and event["cardType"] == "purchase"
    assert event["actionTitle"] == "Approve" and event["verb"] == "approve"
    assert event["values"] == {"decision": "approve", "comment": "Go ahead", "priority": "h"}
    assert event["user"]["upn"] == user.upn and event["handledByCardWait"] is True
    assert event["teamsMessageId"] == sent.activity_id

    # The card's callback registration is gone with its one callback (nothing piles up in the store).
    wait_until(
        lambda: live.runtime.call(live.runtime.store.subscriptions.get(f"cardwait.{card_id}")) is None,
        what="the card's callback registration to be removed",
    )
    # A second press changes nothing: no second callback (the card's notifications are all done).
    again = invoke(user, connector.service_url(), execute, {"comment": "changed"}, sent.activity_id)
    assert live.activity(again).status_code == 200
    wait_until(lambda: len(hooks.bodies("cards")) == 2, what="the second press's trigger event")
    wait_until(lambda: card_events(live) == [], what="the card's callback outbox to empty")
    assert len(hooks.bodies("run")) == 1
    # The polling-free read says the same, at any time.
    read = live.api("GET", f"/api/v1/cards/wait/{card_id}", API_KEY)
    assert read.status_code == 200 and read.json() == result


def test_answer_by_action_submit_and_a_retried_start_returns_the_same_card(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    started = start(live, user, hooks.url("run"), text="Please decide by Friday.", idempotencyKey="po-4711")
    sent = delivered_card(connector, user)
    content = sent.activity["attachments"][0]["content"]
    reject = content["actions"][1]
    submit = act.card_submit(user, connector.service_url(), {**reject["data"], "comment": "Too expensive"})
    submit["replyToId"] = sent.activity_id
    assert live.activity(submit).status_code == 200

    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["status"] == "responded" and result["action"] == "Reject" and result["verb"] is None
    assert result["response"] == {"decision": "reject", "comment": "Too expensive"}
    # Power Automate repeats the call (same key, a new callback URL): the same card, not a second
    # one, and the new callback hears the answer too.
    again = start(live, user, hooks.url("retry"), text="Please decide by Friday.", idempotencyKey="po-4711")
    assert again.json()["id"] == started.json()["id"] and again.json()["status"] == "responded"
    (repeated,) = wait_until(lambda: hooks.bodies("retry"), what="the repeated call's callback")
    assert repeated["response"] == result["response"]
    assert len([r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")]) == 1
    # The card is also a message: its delivery status is there.
    message = live.api("GET", f"/api/v1/messages/{started.json()['id']}", API_KEY).json()
    assert message["status"] == "delivered" and message["teamsMessageId"] == sent.activity_id


def test_delete_of_the_location_cancels_the_wait(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json={"notificationUrl": hooks.url("cards")})
    started = start(live, user, hooks.url("run"))
    sent = delivered_card(connector, user)
    # The flow run is cancelled: Power Automate deletes the Location.
    cancelled = live.http.delete(started.headers["Location"], headers={"X-API-Key": API_KEY}, timeout=30)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    content = sent.activity["attachments"][0]["content"]
    press = act.card_submit(user, connector.service_url(), {**content["actions"][1]["data"], "comment": "late"})
    press["replyToId"] = sent.activity_id
    assert live.activity(press).status_code == 200
    # The press was handled to the end (its trigger event is out) and left nothing for the callback.
    wait_until(lambda: hooks.bodies("cards"), what="the trigger event of the press")
    wait_until(lambda: card_events(live) == [], what="the card's callback outbox to empty")
    assert hooks.bodies("run", ok_only=False) == []
    read = live.api("GET", f"/api/v1/cards/wait/{started.json()['id']}", API_KEY).json()
    assert read["status"] == "cancelled" and read["response"] is None
    assert not [r for r in connector.received if r.method == "PUT"]  # the card was not marked answered


def test_timeout_ends_the_wait_with_expired(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cardwait, "SECONDS_PER_MINUTE", 0.5)  # timeoutMinutes 1 = half a second here
    user = make_user()
    install(live, connector, user)
    started = start(live, user, hooks.url("run"), timeoutMinutes=1)
    assert started.json()["waitUntil"]
    sent = delivered_card(connector, user)
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the expired callback")
    assert result["status"] == "expired" and result["response"] is None and result["id"] == started.json()["id"]
    # A press after the timeout is not taken as the answer.
    content = sent.activity["attachments"][0]["content"]
    press = act.card_submit(user, connector.service_url(), {**content["actions"][1]["data"]})
    press["replyToId"] = sent.activity_id
    assert live.activity(press).status_code == 200
    assert live.api("GET", f"/api/v1/cards/wait/{started.json()['id']}", API_KEY).json()["status"] == "expired"
    wait_until(lambda: card_events(live) == [], what="the card's callback outbox to empty")
    assert len(hooks.bodies("run", ok_only=False)) == 1


def test_an_undeliverable_card_ends_the_wait_with_failed(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cardwait, "SENDING_RECHECK_SECONDS", 0.2)
    user = make_user()
    install(live, connector, user)
    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", "blocked"), user.conversation_id)
    started = start(live, user, hooks.url("run"))
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the failed callback")
    assert result["status"] == "failed" and result["error"]["code"] == "RecipientUnreachable"
    assert live.api("GET", f"/api/v1/cards/wait/{started.json()['id']}", API_KEY).json()["status"] == "failed"


def test_only_the_recipient_can_answer_and_unknown_cards_are_ignored(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    colleague = make_user(name="Mallory", upn="mallory@contoso.example")
    stranger = make_user(name="Eve", upn="eve@fabrikam.example", tenant_id="tenant-fabrikam")
    for person in (user, colleague, stranger):
        install(live, connector, person)
    live.api("POST", "/api/v1/subscriptions/card-submissions", API_KEY, json={"notificationUrl": hooks.url("cards")})
    started = start(live, user, hooks.url("run"))
    sent = delivered_card(connector, user)
    content = sent.activity["attachments"][0]["content"]
    # Someone who learned the card's id (and its message's) answers it from their own chat: not taken.
    for other in (colleague, stranger):
        forged = act.card_submit(other, connector.service_url(), dict(content["actions"][0]["data"]))
        forged["replyToId"] = sent.activity_id
        assert live.activity(forged).status_code == 200
    unknown = act.card_submit(user, connector.service_url(), {CORRELATION_KEY: "f" * 32, "decision": "approve"})
    assert live.activity(unknown).status_code == 200
    events = wait_until(lambda: len(hooks.bodies("cards")) == 3 and hooks.bodies("cards"), what="three events")
    assert all(e["handledByCardWait"] is False and e["messageId"] is None for e in events)
    assert live.api("GET", f"/api/v1/cards/wait/{started.json()['id']}", API_KEY).json()["status"] == "waiting"
    assert hooks.bodies("run", ok_only=False) == []


def test_card_and_wait_validates_its_input(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    no_buttons = copy.deepcopy(APPROVAL)
    no_buttons.pop("actions")
    url = hooks.url("run")
    cases = [
        ({"recipient": user.upn, "notificationUrl": url}, "card"),
        ({"recipient": user.upn, "card": no_buttons, "notificationUrl": url}, "card"),
        ({"recipient": user.upn, "card": {"type": "AdaptiveCard"}, "notificationUrl": url}, "card"),
        ({"recipient": user.upn, "card": APPROVAL}, "notificationUrl"),
        ({"recipient": user.upn, "card": APPROVAL, "notificationUrl": "ftp://x.example/cb"}, "notificationUrl"),
        ({"recipient": user.upn, "card": APPROVAL, "notificationUrl": url, "timeoutMinutes": 0}, "timeoutMinutes"),
    ]
    for body, target in cases:
        response = live.api("POST", "/api/v1/cards/wait", API_KEY, json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "ValidationError" and target in response.json()["error"]["message"]
    assert not connector.sent(user.conversation_id)[1:]  # nothing but the welcome was sent
    plain = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"}).json()
    assert live.api("GET", f"/api/v1/cards/wait/{plain['id']}", API_KEY).status_code == 404
    assert live.api("DELETE", f"/api/v1/cards/wait/{plain['id']}", API_KEY).status_code == 404
    unknown = live.api(
        "POST",
        "/api/v1/cards/wait",
        API_KEY,
        json={"recipient": "nobody@x.example", "card": APPROVAL, "notificationUrl": url},
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RecipientNotFound"


def test_answer_schema_lists_the_cards_inputs(live: LiveApp) -> None:
    response = live.api("POST", "/api/v1/cards/answer-schema", API_KEY, json={"card": APPROVAL})
    assert response.status_code == 200, response.text
    schema = response.json()["schema"]
    assert schema["type"] == "object" and list(schema["properties"]) == ["comment", "priority"]
    assert schema["properties"]["priority"]["x-ms-summary"] == "Priority"
    assert live.api("POST", "/api/v1/cards/answer-schema", API_KEY, json={}).status_code == 400


def test_deleting_a_waiting_card_ends_the_wait_with_cancelled(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    started = start(live, user, hooks.url("run"))
    delivered_card(connector, user)
    wait_until(
        lambda: live.api("GET", f"/api/v1/cards/wait/{started.json()['id']}", API_KEY).json()["status"] == "waiting",
        what="the card to be shown",
    )
    assert live.api("DELETE", f"/api/v1/messages/{started.json()['id']}", API_KEY).status_code == 200
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the cancelled callback")
    assert result["status"] == "cancelled" and result["response"] is None
    # Deleting it again changes nothing and posts nothing more.
    assert live.api("DELETE", f"/api/v1/messages/{started.json()['id']}", API_KEY).status_code == 200
    wait_until(lambda: card_events(live) == [], what="the card's callback outbox to empty")
    assert len(hooks.bodies("run", ok_only=False)) == 1


def test_a_card_purged_by_retention_leaves_no_callback_registration(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    """The run's callback URL carries a signature (a secret): once the card itself is gone (retention),
    its one-shot registration goes too, instead of staying in the store for good."""
    from teams_proactive.bot.model import Notification, now

    user = make_user()
    install(live, connector, user)
    card_id = start(live, user, hooks.url("run")).json()["id"]
    delivered_card(connector, user)
    store = live.runtime.store

    def expire(current: Any) -> Any:
        current.expires_at = now() - 1
        return current

    live.runtime.call(store.outbox.update(card_id, expire))
    live.runtime.call(store.purge_expired(now()))
    assert live.runtime.call(store.outbox.get(card_id)) is None
    # The card's waiting notification falls due (its daily look at the card).
    waiting = Notification(
        id=f"cardwait.{card_id}.wait", subscription_id=f"cardwait.{card_id}", body={},
        tenant_id=user.tenant_id, user_key="x", not_before=now(), created_at=now(), updated_at=now(),
    )  # fmt: skip
    assert live.runtime.call(live.runtime.cards.callback_body(waiting)) is None
    assert live.runtime.call(store.subscriptions.get(f"cardwait.{card_id}")) is None
    assert hooks.bodies("run", ok_only=False) == []


def test_an_answer_that_meets_the_cards_own_recheck_reaches_the_flow_once(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiting card's notification looks at the card now and then. When that look comes between
    the answer's write and the answer's own notification, it takes the card's one callback; if its
    POST then fails, it must still be there to retry. The answer used to delete it: the answer's own
    notification found the callback taken and gave up, and the flow waited for its timeout."""
    from teams_proactive.bot.model import Notification, now

    monkeypatch.setattr(cardwait, "SENDING_RECHECK_SECONDS", 3600.0)  # the test runs the recheck itself
    user = make_user()
    install(live, connector, user)
    card_id = start(live, user, hooks.url("run")).json()["id"]
    sent = delivered_card(connector, user)
    cards = live.runtime.cards
    held: list[Any] = []
    finished = cards.finished

    async def hold(delivery: Any) -> None:  # the answer is recorded; its notification is not made yet
        held.append(delivery)

    monkeypatch.setattr(cards, "finished", hold)
    content = sent.activity["attachments"][0]["content"]
    press = invoke(user, connector.service_url(), content["actions"][0], {"comment": "ok"}, sent.activity_id)
    assert live.activity(press).status_code == 200
    (answered,) = wait_until(lambda: held, what="the answer to be recorded")
    monkeypatch.setattr(cards, "finished", finished)

    # The card's recheck runs now, finds the answer and claims the callback (its POST will fail).
    wait_id = f"cardwait.{card_id}.wait"

    def waiting() -> Notification:
        return Notification(
            id=wait_id, subscription_id=f"cardwait.{card_id}", body={}, tenant_id=user.tenant_id,
            user_key=answered.user_key, not_before=now(), created_at=now(), updated_at=now(),
        )  # fmt: skip

    assert live.runtime.call(cards.callback_body(waiting()))["status"] == "responded"
    live.runtime.call(finished(answered))  # the answer's own notification, a moment late
    assert wait_id in [e["id"] for e in card_events(live)]  # kept: it carries the answer
    # Its POST is retried (written back due now, as the relay does after a 503): the flow hears it once.
    live.runtime.call(live.runtime.store.subscriptions.delete_notification(wait_id))
    live.runtime.call(live.runtime.store.subscriptions.create_notifications([waiting()]))
    live.runtime.loop.call_soon_threadsafe(live.runtime.events.wake)
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["id"] == card_id and result["status"] == "responded" and result["response"]["comment"] == "ok"
    wait_until(lambda: card_events(live) == [], what="the card's callback outbox to empty")
    assert len(hooks.bodies("run", ok_only=False)) == 1


def _answer_by_submit(live: LiveApp, connector: FakeConnector, hooks: CallbackServer, user: act.TeamsUser) -> None:
    start(live, user, hooks.url("run"))
    sent = delivered_card(connector, user)
    reject = sent.activity["attachments"][0]["content"]["actions"][1]
    submit = act.card_submit(user, connector.service_url(), {**reject["data"], "comment": "no"})
    submit["replyToId"] = sent.activity_id
    assert live.activity(submit).status_code == 200


def test_the_answered_card_is_shown_after_teams_throttles_the_update(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    """Teams answers the card's update 429 twice: the update is retried (after Retry-After) and lands."""
    user = make_user()
    install(live, connector, user)
    start(live, user, hooks.url("run"))
    sent = delivered_card(connector, user)
    connector.fail_next(2, Scripted(429, "Throttled", retry_after=0.2), user.conversation_id)
    reject = sent.activity["attachments"][0]["content"]["actions"][1]
    submit = act.card_submit(user, connector.service_url(), {**reject["data"], "comment": "no"})
    submit["replyToId"] = sent.activity_id
    assert live.activity(submit).status_code == 200
    (put,) = wait_until(lambda: connector.changes("PUT"), what="the answered card")
    assert put.activity_id == sent.activity_id and put.conversation_id == user.conversation_id
    assert [s for _, s in connector.calls_to(user.conversation_id)][-3:] == [429, 429, 200]
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["status"] == "responded" and result["response"]["comment"] == "no"


def test_an_update_teams_keeps_refusing_gives_up_after_three_tries_and_keeps_the_answer(
    live: LiveApp, connector: FakeConnector, hooks: CallbackServer, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    start(live, user, hooks.url("run"))
    sent = delivered_card(connector, user)
    connector.fail_next(3, Scripted(429, "Throttled", retry_after=0.1), user.conversation_id)
    reject = sent.activity["attachments"][0]["content"]["actions"][1]
    submit = act.card_submit(user, connector.service_url(), {**reject["data"], "comment": "no"})
    submit["replyToId"] = sent.activity_id
    assert live.activity(submit).status_code == 200
    (result,) = wait_until(lambda: hooks.bodies("run"), what="the card's callback")
    assert result["status"] == "responded"  # the answer is recorded and delivered whatever the card shows
    wait_until(lambda: [s for _, s in connector.calls_to(user.conversation_id)][-3:] == [429] * 3,
               what="three refused updates")  # fmt: skip
    assert connector.changes("PUT") == []
