"""Faults from the Bot Connector: what is retried (and how), what is not, and what it does to the person's status."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, install, send, texts_in
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp
from tests.support.people import people, seed

RETRYABLE = {
    "429 with Retry-After": Scripted(429, "Throttled", "slow down", retry_after=1),
    "429 without Retry-After": Scripted(429, "Throttled", "slow down"),
    "412": Scripted(412, "PreconditionFailed", "try again"),
    "502": Scripted(502, "BadGateway", ""),
    "503": Scripted(503, "ServiceUnavailable", ""),
    "504": Scripted(504, "GatewayTimeout", ""),
    "timeout": Scripted(503, hang=True),  # never answers: the client's 2 s timeout fires
}


@pytest.mark.parametrize("fault", list(RETRYABLE), ids=list(RETRYABLE))
def test_transient_faults_are_retried_until_one_copy_arrives(
    fast_live: LiveApp, connector: FakeConnector, make_user, fault: str
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    connector.fail_next(2, RETRYABLE[fault], user.conversation_id)

    response = send(fast_live, {"recipient": user.upn, "text": "ticket 7", "wait": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "delivered"
    assert body["attempts"] == 3
    assert texts_in(connector, user.conversation_id, "ticket 7") == 1

    calls = connector.calls_to(user.conversation_id)[1:]  # after the welcome message
    failing = RETRYABLE[fault].status  # for the timeout: what the held calls would have answered
    assert [status for _, status in calls] == [failing, failing, 200]
    if fault == "429 with Retry-After":
        # Teams said "not before a second from now", twice: the retries waited at least that long.
        assert calls[1][0] - calls[0][0] >= 1.0
        assert calls[2][0] - calls[1][0] >= 1.0
    recipient = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["status"] == "active"


def test_retries_give_up_after_max_attempts(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    connector.fail_next(20, Scripted(503, "ServiceUnavailable", ""), user.conversation_id)
    response = send(fast_live, {"recipient": user.upn, "text": "never", "wait": 30})
    body = response.json() if response.status_code == 200 else final_delivery(fast_live, response.json()["id"])
    assert body["status"] == "failed"
    assert body["attempts"] == 6
    assert body["error"]["code"] == "TeamsUnavailable"
    assert "gave up after 6 attempts" in body["error"]["message"]
    assert len(connector.calls_to(user.conversation_id)) == 1 + 6  # the welcome, then six tries
    assert texts_in(connector, user.conversation_id, "never") == 0


REFUSALS = {
    "400": (Scripted(400, "BadArgument", "bad activity"), "InvalidMessage", "active"),
    "401": (Scripted(401, "Unauthorized", "bad token"), "BotUnauthorized", "active"),
    "413": (Scripted(413, "MessageSizeTooBig", ""), "MessageTooLarge", "active"),
    "403 other": (Scripted(403, "SomethingElse", "no"), "Forbidden", "active"),
    "403 MessageWritesBlocked": (Scripted(403, "MessageWritesBlocked", ""), "RecipientUnreachable", "blocked"),
    "403 ConversationBlockedByUser": (
        Scripted(403, "ConversationBlockedByUser", "User blocked the conversation with the bot."),
        "RecipientUnreachable",
        "blocked",
    ),
    "403 BotNotInConversationRoster": (
        Scripted(403, "BotNotInConversationRoster", "The bot is not part of the conversation roster."),
        "RecipientUnreachable",
        "uninstalled",
    ),
    "403 ForbiddenOperationException": (
        Scripted(403, "ForbiddenOperationException", ""),
        "RecipientUnreachable",
        "uninstalled",
    ),
    "404 ConversationNotFound": (Scripted(404, "ConversationNotFound", ""), "RecipientUnreachable", "notFound"),
}


@pytest.mark.parametrize("fault", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_are_not_retried_and_set_the_reference_status(
    fast_live: LiveApp, connector: FakeConnector, make_user, fault: str
) -> None:
    scripted, code, reference_status = REFUSALS[fault]
    user = make_user()
    install(fast_live, connector, user)
    connector.fail_next(1, scripted, user.conversation_id)

    response = send(fast_live, {"recipient": user.upn, "text": "refused", "wait": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert body["attempts"] == 1
    assert body["error"]["code"] == code
    assert len(connector.calls_to(user.conversation_id)) == 2  # the welcome and one try: no retry

    recipient = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["status"] == reference_status
    if reference_status == "active":
        return
    assert recipient["reachable"] is False
    refused = send(fast_live, {"recipient": user.upn, "text": "again"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "RecipientUnreachable"

    # Any later activity from the person makes the chat active again.
    assert fast_live.activity(act.message(user, connector.service_url(), "hello again")).status_code == 200
    recipient = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["status"] == "active" and recipient["reachable"] is True
    again = send(fast_live, {"recipient": user.upn, "text": "welcome back", "wait": 30})
    assert again.status_code == 200 and again.json()["status"] == "delivered"
    assert texts_in(connector, user.conversation_id, "welcome back") == 1


def test_a_blocked_person_fails_the_rest_of_their_queue_without_calls(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
    queued = send(fast_live, {"recipient": user.upn, "text": "queued before", "deliverAt": soon})
    assert queued.status_code == 200 and queued.json()["status"] == "scheduled"

    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", ""), user.conversation_id)
    first = send(fast_live, {"recipient": user.upn, "text": "one", "wait": 30}).json()
    assert first["status"] == "failed"
    calls = len(connector.calls_to(user.conversation_id))

    # New sends are refused at once; the one queued before the block fails when due, without a call.
    assert send(fast_live, {"recipient": user.upn, "text": "two"}).status_code == 409
    earlier = final_delivery(fast_live, queued.json()["id"])
    assert earlier["status"] == "failed"
    assert earlier["error"]["code"] == "RecipientUnreachable"
    assert earlier["attempts"] == 0
    assert len(connector.calls_to(user.conversation_id)) == calls


def test_broadcast_with_faults_delivers_each_deliverable_message_exactly_once(
    fast_live: LiveApp, connector: FakeConnector
) -> None:
    crowd = people(60, tenant_id="tenant-contoso", prefix="crowd")
    fast_live.runtime.call(seed(fast_live.runtime.store, crowd, connector.service_url("a")))
    transient = [
        Scripted(429, "Throttled", "", retry_after=1),
        Scripted(429, "Throttled", ""),
        Scripted(412, "PreconditionFailed", ""),
        Scripted(502, "BadGateway", ""),
        Scripted(503, "ServiceUnavailable", ""),
        Scripted(504, "GatewayTimeout", ""),
        Scripted(503, hang=True),
    ]
    refusals = {
        0: Scripted(403, "ConversationBlockedByUser", ""),
        1: Scripted(403, "BotNotInConversationRoster", ""),
        2: Scripted(404, "ConversationNotFound", ""),
        3: Scripted(400, "BadArgument", ""),
    }
    for i, person in enumerate(crowd):
        if i in refusals:
            connector.fail_next(1, refusals[i], person.conversation_id)
        elif i % 3 == 0:
            connector.fail_next(1 + i % 2, transient[i % len(transient)], person.conversation_id)

    response = fast_live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": [p.upn for p in crowd], "text": "all hands", "waitForCompletion": True},
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]

    def report() -> dict | None:
        answer = fast_live.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
        return answer.json() if answer.status_code == 200 else None

    done = eventually(report, timeout=60)
    assert done["counts"] == {
        "queued": 0,
        "sending": 0,
        "delivered": 56,
        "failed": 4,
        "skipped": 0,
        "recalled": 0,
        "read": 0,
        "answered": 0,
    }
    assert done["progress"] == 100.0
    failures = {f["recipient"]: f["code"] for f in done["failures"]}
    assert failures == {
        crowd[0].upn: "RecipientUnreachable",
        crowd[1].upn: "RecipientUnreachable",
        crowd[2].upn: "RecipientUnreachable",
        crowd[3].upn: "InvalidMessage",
    }
    for i, person in enumerate(crowd):
        assert texts_in(connector, person.conversation_id, "all hands") == (0 if i in refusals else 1), person.upn
        if i in refusals:
            assert len(connector.calls_to(person.conversation_id)) == 1
    statuses = {p.upn: fast_live.api("GET", f"/api/v1/recipients/{p.upn}", API_KEY).json()["status"] for p in crowd[:4]}
    assert statuses == {
        crowd[0].upn: "blocked",
        crowd[1].upn: "uninstalled",
        crowd[2].upn: "notFound",
        crowd[3].upn: "active",
    }
