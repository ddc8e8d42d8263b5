"""A lost chat (404 ConversationNotFound) is repaired once through Graph; a person who said no never is."""

from __future__ import annotations

from teams_proactive.bot.model import ReferenceStatus, Surface

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, send
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member, Scripted
from tests.support.fake_graph import FakeGraph, Fault, GraphUser
from tests.support.live_app import LiveApp

GONE = Scripted(404, "ConversationNotFound", "Conversation not found.")


def _person(live: LiveApp, graph: FakeGraph, connector: FakeConnector, upn: str = "adele@contoso.example") -> act.TeamsUser:
    user = act.TeamsUser(name="Adele Vance", upn=upn, tenant_id=TENANT)
    graph.add_user(TENANT, GraphUser(user.name, upn, id=user.aad_object_id))
    connector.add_member(Member(user.user_id, user.name, user.aad_object_id, upn, upn, TENANT))
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    return user


def _send(live: LiveApp, user: act.TeamsUser, install: bool = True) -> dict:
    response = send(live, {"recipient": user.aad_object_id, "text": "Hello again", "installIfMissing": install,
                           "wait": 0})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    return final_delivery(live, response.json()["id"])


def test_a_deleted_chat_is_repaired_once(graph_live: LiveApp, graph: FakeGraph, connector: FakeConnector) -> None:
    user = _person(graph_live, graph, connector)
    connector.fail_next(1, GONE, user.conversation_id)
    delivery = _send(graph_live, user)
    assert delivery["status"] == "delivered", delivery
    assert delivery["reachedBy"] == "repaired"
    new_chat = graph.chat_id(user.aad_object_id)
    assert delivery["conversationId"] == new_chat
    assert [r.activity["text"] for r in connector.sent(new_chat)] == ["Hello again"]
    ref = graph_live.runtime.call(
        graph_live.runtime.store.references.get(TENANT, user.aad_object_id.lower(), Surface.TEAMS)
    )
    assert ref is not None and ref.status == ReferenceStatus.ACTIVE and ref.conversation_id == new_chat


def test_a_repair_is_tried_only_once(graph_live: LiveApp, graph: FakeGraph, connector: FakeConnector) -> None:
    user = _person(graph_live, graph, connector)
    connector.fail_next(1, GONE, user.conversation_id)
    connector.fail_next(1, GONE, graph.chat_id(user.aad_object_id))
    delivery = _send(graph_live, user)
    assert delivery["status"] == "failed" and delivery["error"]["code"] == "RecipientUnreachable", delivery
    assert len(graph.calls_matching(r"^POST .*/installedApps")) == 1


def test_without_install_if_missing_a_lost_chat_stays_lost(
    graph_live: LiveApp, graph: FakeGraph, connector: FakeConnector
) -> None:
    user = _person(graph_live, graph, connector)
    connector.fail_next(1, GONE, user.conversation_id)
    delivery = _send(graph_live, user, install=False)
    assert delivery["status"] == "failed" and delivery["error"]["code"] == "RecipientUnreachable"
    assert graph.calls == []


def test_a_person_who_said_no_is_never_installed_for(
    graph_live: LiveApp, graph: FakeGraph, connector: FakeConnector
) -> None:
    blocked = _person(graph_live, graph, connector, "blocked@contoso.example")
    connector.fail_next(1, Scripted(403, "ConversationBlockedByUser", "User blocked the conversation with the bot."),
                        blocked.conversation_id)  # fmt: skip
    assert _send(graph_live, blocked, install=False)["error"]["code"] == "RecipientUnreachable"
    stopped = _person(graph_live, graph, connector, "stopped@contoso.example")
    assert graph_live.activity(act.message(stopped, connector.service_url("a"), "stop")).status_code == 200
    removed = _person(graph_live, graph, connector, "removed@contoso.example")
    assert graph_live.activity(act.uninstall(removed, connector.service_url("a"))).status_code == 200

    for user, code in ((blocked, "RecipientUnreachable"), (stopped, "RecipientOptedOut"),
                       (removed, "RecipientUnreachable")):  # fmt: skip
        response = send(graph_live, {"recipient": user.upn, "text": "Hi", "installIfMissing": True})
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == code
    broadcast = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "recipients": [blocked.upn, stopped.upn, removed.upn], "text": "All hands", "installIfMissing": True,
        "tenantId": TENANT})  # fmt: skip
    assert broadcast.status_code in (200, 202), broadcast.text

    def finished() -> dict | None:
        body = graph_live.api("GET", f"/api/v1/broadcasts/{broadcast.json()['id']}", API_KEY).json()
        return body if body["status"] == "completed" else None

    report = eventually(finished)
    assert report["counts"]["skipped"] == 3 and report["counts"]["delivered"] == 0, report
    assert sorted(f["code"] for f in report["failures"]) == ["RecipientOptedOut", "RecipientUnreachable",
                                                              "RecipientUnreachable"]  # fmt: skip
    assert graph.calls_matching(r"installedApps") == []


def test_a_graph_outage_does_not_spend_the_repair(
    graph_live: LiveApp, graph: FakeGraph, connector: FakeConnector
) -> None:
    user = _person(graph_live, graph, connector)
    connector.fail_next(1, GONE, user.conversation_id)
    # Graph keeps failing the install for longer than the client retries: the outbox tries again later.
    graph.fail_next(r"^POST .*/installedApps", Fault(503, "ServiceUnavailable", "Service Unavailable"), count=4)
    delivery = _send(graph_live, user)
    assert delivery["status"] == "delivered", delivery
    assert delivery["reachedBy"] == "repaired"
    assert len(graph.calls_matching(r"^POST .*/installedApps")) == 5
