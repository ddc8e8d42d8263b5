"""Teams' documented refusals of a change (UpdateMessage, DeleteMessage, a campaign's recall) mean what they
mean for a send: a blocked chat makes the person ``blocked``, a gone chat ``notFound``, and a message that
is no longer in the chat says so without calling the person unreachable (DESIGN.md sections 7 and 8).

Bodies from tests/fixtures/teams/errors (Microsoft Learn: "Send proactive messages" for the
MessageWritesBlocked 403, "Status codes from bot conversational APIs" for ConversationNotFound and
ActivityNotFoundInConversation).
"""

from __future__ import annotations

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, install, send
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp


def _status(live: LiveApp, upn: str) -> str:
    return live.api("GET", f"/api/v1/recipients/{upn}", API_KEY).json()["status"]


def test_update_into_a_blocked_chat_marks_the_person_blocked(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "v1", "wait": 30}).json()
    assert sent["status"] == "delivered"
    connector.fail_next(1, Scripted.documented("403-message-writes-blocked"), user.conversation_id)
    changed = fast_live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "v2"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "RecipientUnreachable"
    assert _status(fast_live, user.upn) == "blocked"
    # And so the next send is refused before Teams is asked.
    assert send(fast_live, {"recipient": user.upn, "text": "v3"}).status_code == 409


def test_delete_of_a_message_teams_no_longer_has_leaves_the_person_reachable(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "v1", "wait": 30}).json()
    connector.fail_next(1, Scripted.documented("404-activity-not-found"), user.conversation_id)
    deleted = fast_live.api("DELETE", f"/api/v1/messages/{sent['id']}", API_KEY)
    assert deleted.status_code == 409, deleted.text
    error = deleted.json()["error"]
    assert error["code"] == "MessageNotDelivered" and "no longer has this message" in error["message"]
    assert _status(fast_live, user.upn) == "active"


def test_update_into_a_chat_that_is_gone_marks_the_person_not_found(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "v1", "wait": 30}).json()
    connector.fail_next(1, Scripted.documented("404-conversation-not-found"), user.conversation_id)
    changed = fast_live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "v2"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "RecipientUnreachable"
    assert _status(fast_live, user.upn) == "notFound"


def test_a_recall_refused_as_blocked_marks_the_person_blocked(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    started = fast_live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [user.upn], "text": "oops"})
    broadcast_id = started.json()["id"]
    eventually(
        lambda: fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()["status"] == "completed"
    )
    connector.fail_next(1, Scripted.documented("403-message-writes-blocked"), user.conversation_id)
    assert fast_live.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).status_code == 200
    report = eventually(
        lambda: (r := fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json())["recall"]["status"]
        == "completed"
        and r
    )
    assert report["recall"]["failed"] == 1
    assert _status(fast_live, user.upn) == "blocked"


def test_a_broadcast_update_leaves_a_message_deleted_on_its_own_alone(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    """DeleteMessage removed one person's copy: UpdateBroadcast must not PUT into the chat for it (Teams
    would answer 404, and the update would report a failure that is not one)."""
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    for user in (ana, ben):
        install(fast_live, connector, user)
    started = fast_live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [ana.upn, ben.upn], "text": "v1"}
    )
    broadcast_id = started.json()["id"]
    eventually(
        lambda: fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()["status"] == "completed"
    )
    rows = fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}/recipients", API_KEY).json()["value"]
    anas = next(r["messageId"] for r in rows if r["recipient"] == ana.upn)
    assert fast_live.api("DELETE", f"/api/v1/messages/{anas}", API_KEY).status_code == 200
    assert fast_live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"text": "v2"}).status_code == 200
    report = eventually(
        lambda: (r := fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json())["update"]["status"]
        == "completed"
        and r
    )
    assert report["update"]["failed"] == 0
    puts = [r.conversation_id for r in connector.received if r.method == "PUT"]
    assert puts == [ben.conversation_id]
