"""The message API over the outbox: the async rules (200 at once, 202 + internal status link only when
a wait ran out), idempotency, update, delete, scheduling."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

from teams_proactive.bot.delivery.service import next_local_time

from tests.conftest import API_KEY
from tests.delivery.conftest import FAST, eventually, final_delivery, install, send, texts_in
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp


def test_async_rules_over_http(app_env: dict[str, str], connector: FakeConnector, make_user) -> None:
    # The held call below must outlast the polling: a long client timeout (and lease) for this test.
    settings = dataclasses.replace(FAST, send_timeout_seconds=60.0, lease_seconds=120.0)
    with LiveApp(app_env, runtime_kwargs={"dispatcher_settings": settings}) as live:
        _async_rules(live, connector, make_user())


def _async_rules(fast_live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    install(fast_live, connector, user)
    # Teams holds the first attempt until we let it go: the message is surely still on its way.
    connector.fail_next(1, Scripted(503, "ServiceUnavailable", "", hang=True), user.conversation_id)

    # wait 0: a final answer at once (for flows and Copilot Studio tools), no status link to poll.
    response = send(fast_live, {"recipient": user.upn, "text": "async", "wait": 0, "idempotencyKey": "run-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and "Location" not in response.headers

    eventually(lambda: connector.calls_to(user.conversation_id)[1:])  # the held attempt arrived
    # GetMessage is a read: 200 with the status, also while the message is on its way.
    read = fast_live.api("GET", f"/api/v1/messages/{body['id']}", API_KEY)
    assert read.status_code == 200 and read.json()["status"] == "sending" and "Location" not in read.headers

    # A caller who waits (the same run again, waiting 1 s) while Teams still holds the call: the wait
    # runs out, and only then is the answer 202 with the internal status link.
    waited = send(fast_live, {"recipient": user.upn, "text": "async", "wait": 1, "idempotencyKey": "run-1"})
    assert waited.status_code == 202, waited.text
    assert waited.json()["id"] == body["id"]
    location = waited.headers["Location"]
    assert location == f"{fast_live.url}/api/v1/messages/{body['id']}/status"
    assert int(waited.headers["Retry-After"]) > 0
    pending = fast_live.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
    assert pending.status_code == 202
    assert pending.json()["status"] == "sending"
    assert pending.headers["Location"] == location and "Retry-After" in pending.headers

    connector.release_hung()  # it answers 503: retried, then delivered

    def polled() -> dict | None:
        answer = fast_live.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
        assert answer.status_code in (200, 202)
        return answer.json() if answer.status_code == 200 else None

    done = eventually(polled)
    assert done["status"] == "delivered" and done["attempts"] == 2
    assert done["teamsMessageId"] and done["deliveredAt"]
    # The status link's final answer is the same object GetMessage answers.
    assert fast_live.api("GET", f"/api/v1/messages/{body['id']}", API_KEY).json() == done
    assert texts_in(connector, user.conversation_id, "async") == 1


def test_idempotency_key_returns_the_first_delivery(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    first = send(fast_live, {"recipient": user.upn, "text": "once", "idempotencyKey": "flow-run-1"})
    assert first.status_code == 200
    again = send(fast_live, {"recipient": user.upn, "text": "once", "idempotencyKey": "flow-run-1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["teamsMessageId"] == first.json()["teamsMessageId"]
    # The same key with another body is a mistake, answered as such rather than with the first message.
    edited = send(fast_live, {"recipient": user.upn, "text": "once, edited", "idempotencyKey": "flow-run-1"})
    assert edited.status_code == 409 and edited.json()["error"]["code"] == "IdempotencyKeyReused"
    assert edited.json()["error"]["target"] == "idempotencyKey"
    assert texts_in(connector, user.conversation_id, "once") == 1
    assert texts_in(connector, user.conversation_id, "once, edited") == 0
    other = send(fast_live, {"recipient": user.upn, "text": "once", "idempotencyKey": "flow-run-2"})
    assert other.json()["id"] != first.json()["id"]
    assert texts_in(connector, user.conversation_id, "once") == 2


def test_concurrent_retries_with_one_key_send_one_message(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    """Power Automate retries an action by itself; the retries can overlap the first try."""
    user = make_user()
    install(fast_live, connector, user)
    start = threading.Barrier(8)

    def post(_: int) -> str:
        start.wait()
        response = send(fast_live, {"recipient": user.upn, "text": "racing", "idempotencyKey": "same", "wait": 10})
        assert response.status_code in (200, 202), response.text
        return response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(post, range(8)))
    assert len(ids) == 1
    final_delivery(fast_live, ids.pop())
    assert texts_in(connector, user.conversation_id, "racing") == 1


def test_update_message_replaces_it_in_the_chat(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "Ticket 42: open"}).json()
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "closed"}]}
    response = fast_live.api(
        "PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "Ticket 42: closed", "card": card}
    )
    assert response.status_code == 200, response.text
    puts = [r for r in connector.received if r.method == "PUT"]
    assert len(puts) == 1
    assert puts[0].conversation_id == user.conversation_id
    assert puts[0].activity_id == sent["teamsMessageId"]
    assert puts[0].activity["text"] == "Ticket 42: closed"
    assert puts[0].activity["attachments"][0]["content"] == card
    assert puts[0].activity["id"] == sent["teamsMessageId"]


def test_update_of_a_scheduled_message_changes_what_is_sent(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    queued = send(fast_live, {"recipient": user.upn, "text": "draft", "deliverAt": soon}).json()
    response = fast_live.api("PUT", f"/api/v1/messages/{queued['id']}", API_KEY, json={"text": "final"})
    assert response.status_code == 200 and response.json()["status"] == "scheduled"
    assert final_delivery(fast_live, queued["id"])["status"] == "delivered"
    assert texts_in(connector, user.conversation_id, "final") == 1
    assert texts_in(connector, user.conversation_id, "draft") == 0
    assert not [r for r in connector.received if r.method == "PUT"]


def test_delete_message_removes_it_from_the_chat(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "oops"}).json()
    response = fast_live.api("DELETE", f"/api/v1/messages/{sent['id']}", API_KEY)
    assert response.status_code == 200, response.text
    deletes = [r for r in connector.received if r.method == "DELETE"]
    assert [(d.conversation_id, d.activity_id) for d in deletes] == [(user.conversation_id, sent["teamsMessageId"])]
    # Deleting again is harmless and does not call Teams again.
    assert fast_live.api("DELETE", f"/api/v1/messages/{sent['id']}", API_KEY).status_code == 200
    assert len([r for r in connector.received if r.method == "DELETE"]) == 1
    # A deleted message cannot be edited.
    assert fast_live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "x"}).status_code == 409


def test_delete_cancels_a_queued_message(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    queued = send(fast_live, {"recipient": user.upn, "text": "never sent", "deliverAt": later}).json()
    assert queued["status"] == "scheduled"
    response = fast_live.api("DELETE", f"/api/v1/messages/{queued['id']}", API_KEY)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["error"]["code"] == "Cancelled"
    final = fast_live.api("GET", f"/api/v1/messages/{queued['id']}", API_KEY)
    assert final.status_code == 200 and final.json()["status"] == "failed"
    assert not [r for r in connector.received if r.method == "DELETE"]
    # The outbox holds nothing for it any more.
    assert fast_live.runtime.call(fast_live.runtime.store.outbox.next_due_at()) is None
    assert texts_in(connector, user.conversation_id, "never sent") == 0


def test_deliver_at_schedules_then_delivers_when_due(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    response = send(fast_live, {"recipient": user.upn, "text": "on time", "deliverAt": due.isoformat()})
    # Scheduled: a final answer at once (a Copilot Studio tool cannot follow a 202).
    assert response.status_code == 200 and "Location" not in response.headers
    body = response.json()
    assert body["status"] == "scheduled"
    assert abs(dt.datetime.fromisoformat(body["deliverAt"]) - due) < dt.timedelta(milliseconds=2)
    assert texts_in(connector, user.conversation_id, "on time") == 0
    pending = fast_live.api("GET", f"/api/v1/messages/{body['id']}", API_KEY)
    assert pending.status_code == 200 and pending.json()["status"] == "scheduled"

    done = final_delivery(fast_live, body["id"])
    assert done["status"] == "delivered"
    assert dt.datetime.fromisoformat(done["deliveredAt"]) >= due - dt.timedelta(milliseconds=2)
    assert texts_in(connector, user.conversation_id, "on time") == 1


def test_deliver_at_local_time_uses_the_recipients_zone(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user(timezone="Asia/Tokyo")
    install(fast_live, connector, user)
    tokyo_now = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    hhmm = (tokyo_now + dt.timedelta(hours=2)).strftime("%H:%M")
    before = dt.datetime.now(dt.UTC)
    response = send(fast_live, {"recipient": user.upn, "text": "good morning", "deliverAtLocalTime": hhmm})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "scheduled"
    expected = next_local_time(hhmm, "Asia/Tokyo", before)
    assert dt.datetime.fromisoformat(body["deliverAt"]) == expected
    assert fast_live.api("DELETE", f"/api/v1/messages/{body['id']}", API_KEY).status_code == 200


def test_deliver_at_local_time_needs_a_known_zone(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user(timezone=None)
    install(fast_live, connector, user)
    response = send(fast_live, {"recipient": user.upn, "text": "hi", "deliverAtLocalTime": "09:00"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert error["target"] == "deliverAtLocalTime"
    assert "time zone" in error["message"] and "deliverAt" in error["message"]
    bad = send(fast_live, {"recipient": user.upn, "text": "hi", "deliverAtLocalTime": "25:00"})
    assert bad.status_code == 400


def test_unknown_message_id_is_not_found(fast_live: LiveApp) -> None:
    for method in ("GET", "DELETE"):
        response = fast_live.api(method, "/api/v1/messages/does-not-exist", API_KEY)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NotFound"


def test_a_burst_to_one_person_is_paced_and_all_of_it_arrives(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    """Teams allows 7 messages a second and 8 in two to one chat; the rest wait their turn, none is lost."""
    user = make_user()
    install(fast_live, connector, user)
    ids = [send(fast_live, {"recipient": user.upn, "text": f"update {i}", "wait": 0}).json()["id"] for i in range(12)]
    for delivery_id in ids:
        assert final_delivery(fast_live, delivery_id, timeout=60)["status"] == "delivered"
    for i in range(12):
        assert texts_in(connector, user.conversation_id, f"update {i}") == 1
    assert fast_live.runtime.dispatcher.stats["paced"] > 0  # some were held back for the chat's windows
