"""Ids as Teams gives them: Graph names a personal chat ``19:…@unq.gbl.spaces`` ("Get chat between user and app"),
while the activities Teams sends from that chat carry Bot Framework's ``a:…`` id ("Conversation basics":
personal conversation ids). A message sent under one id is read, answered and recalled under the other."""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, send
from tests.engagement.conftest import read_receipt
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.fake_graph import FakeGraph, GraphUser
from tests.support.live_app import LiveApp

GRAPH_CHAT = re.compile(r"^19:[^@]+@unq\.gbl\.spaces$")
CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Coming?"}],
    "actions": [{"type": "Action.Submit", "title": "Yes", "data": {"answer": "yes"}}],
}


def _installed_by_graph(live: LiveApp, graph: FakeGraph, connector: FakeConnector, person: GraphUser) -> dict:
    answer = send(live, {"recipient": person.upn, "card": CARD, "text": "Coming?", "installIfMissing": True,
                         "tenantId": TENANT, "wait": 0})  # fmt: skip
    assert answer.status_code in (200, 202), answer.text
    delivery = final_delivery(live, answer.json()["id"])
    assert delivery["status"] == "delivered", delivery
    assert GRAPH_CHAT.match(delivery["conversationId"]), delivery["conversationId"]
    return delivery


def _teams_user(person: GraphUser) -> act.TeamsUser:
    user = act.TeamsUser(name=person.display_name, upn=person.upn, tenant_id=TENANT, aad_object_id=person.id)
    assert user.conversation_id.startswith("a:") and not GRAPH_CHAT.match(user.conversation_id)
    return user


def test_a_graph_installed_persons_receipt_and_card_answer_are_recorded_under_teams_id(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    adele = new_person()
    delivery = _installed_by_graph(graph_live, graph, connector, adele)
    user = _teams_user(adele)
    connector.same_chat(delivery["conversationId"], user.conversation_id)
    # The reference Teams sends on install ties the two ids.
    assert graph_live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    receipt = read_receipt(user, connector.service_url("a"), delivery["teamsMessageId"])
    assert receipt["conversation"]["id"] == user.conversation_id
    assert graph_live.activity(receipt).status_code == 200
    read = eventually(lambda: (d := graph_live.api("GET", f"/api/v1/messages/{delivery['id']}", API_KEY).json())
                      ["readAt"] and d)  # fmt: skip
    assert read["conversationId"] == delivery["conversationId"]
    answer = act.card_submit(user, connector.service_url("a"), {"answer": "yes"})
    answer["replyToId"] = delivery["teamsMessageId"]
    assert graph_live.activity(answer).status_code == 200
    stored = graph_live.runtime.call(graph_live.runtime.store.outbox.get(delivery["id"]))
    assert stored is not None and stored.responded_at is not None


def test_the_first_activity_in_the_chat_ties_the_ids_even_when_it_is_the_receipt(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    adele = new_person()
    delivery = _installed_by_graph(graph_live, graph, connector, adele)
    user = _teams_user(adele)
    assert (
        graph_live.activity(read_receipt(user, connector.service_url("a"), delivery["teamsMessageId"])).status_code
        == 200
    )
    assert graph_live.api("GET", f"/api/v1/messages/{delivery['id']}", API_KEY).json()["readAt"]
    # Sends after that go to the id Teams uses; the Graph id stays known for what was sent under it.
    again = send(graph_live, {"recipient": adele.upn, "text": "Second", "wait": 30}).json()
    assert again["conversationId"] == user.conversation_id
    refs = graph_live.runtime.call(graph_live.runtime.store.references.of_person(TENANT, adele.id.lower()))
    assert refs[0].chat_ids == {user.conversation_id, delivery["conversationId"]}


def test_a_receipt_from_another_chat_marks_nothing(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    """Only the person's own personal chat ties ids: a receipt from a group chat does not read the 1:1 message."""
    adele = new_person()
    delivery = _installed_by_graph(graph_live, graph, connector, adele)
    user = _teams_user(adele)
    receipt = read_receipt(user, connector.service_url("a"), delivery["teamsMessageId"],
                           conversation_id="19:meeting_abc@thread.v2")  # fmt: skip
    receipt["conversation"]["conversationType"] = "groupChat"
    assert graph_live.activity(receipt).status_code == 200
    assert graph_live.api("GET", f"/api/v1/messages/{delivery['id']}", API_KEY).json()["readAt"] is None
