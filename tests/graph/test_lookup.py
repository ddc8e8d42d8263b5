"""A person seen only in Microsoft 365 Copilot is stored under their Entra object id, with no UPN. Named by UPN,
they are found through Graph (``GET /users/{upn}``) when Graph is configured — no install — and the message
lands in the Teams chat the service opens for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import API_KEY
from tests.delivery.conftest import FAST
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.fake_graph import FakeGraph, Fault, GraphUser
from tests.support.live_app import LiveApp


@pytest.fixture
def home_live(graph_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    # No installs allowed: the lookup needs only Graph's credentials (and the bot's home tenant for a GET).
    env = {**graph_env, "GRAPH_INSTALL": "false", "MicrosoftAppTenantId": TENANT}
    with LiveApp(env, runtime_kwargs={"dispatcher_settings": FAST}) as app:
        yield app


def _seen_only_in_copilot(live: LiveApp, connector: FakeConnector, graph: FakeGraph) -> act.TeamsUser:
    megan = act.TeamsUser(name="Megan Bowen", upn="megan@contoso.example", tenant_id=TENANT)
    assert live.activity(act.install(megan, connector.service_url("a"))).status_code == 200  # the tenant's URL
    user = act.TeamsUser(name="Adele Vance", upn="adele@contoso.example", tenant_id=TENANT)
    graph.add_user(TENANT, GraphUser(user.name, user.upn, id=user.aad_object_id))
    assert live.activity(act.m365_copilot_message(user, connector.service_url("m365"), "hi")).status_code == 200
    return user


def test_get_recipient_by_upn_finds_a_copilot_only_person_through_graph(
    home_live: LiveApp, connector: FakeConnector, graph: FakeGraph
) -> None:
    user = _seen_only_in_copilot(home_live, connector, graph)
    answer = home_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["aadObjectId"] == user.aad_object_id and body["reachable"] is True
    assert [c.path.split("?")[0] for c in graph.calls] == [f"/v1.0/users/{user.upn}"]
    # The address is kept: the next lookup needs no Graph call.
    assert home_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).status_code == 200
    assert len(graph.calls) == 1
    assert not graph.calls_matching("installedApps")


def test_send_message_by_upn_lands_in_the_teams_chat_without_an_install(
    home_live: LiveApp, connector: FakeConnector, graph: FakeGraph
) -> None:
    user = _seen_only_in_copilot(home_live, connector, graph)
    sent = home_live.api("POST", "/api/v1/messages", API_KEY,
                         json={"recipient": user.upn, "text": "From Copilot to Teams", "tenantId": TENANT, "wait": 30})  # fmt: skip
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "delivered", body
    (created,) = connector.created_conversations
    assert created["tenantId"] == TENANT
    assert connector.sent(body["conversationId"])[-1].activity["text"] == "From Copilot to Teams"
    assert all(r.activity.get("text") != "From Copilot to Teams" for r in connector.sent(user.m365_conversation_id))
    assert not graph.calls_matching("installedApps")


def test_an_address_graph_does_not_know_or_cannot_look_up_stays_not_found(
    home_live: LiveApp, connector: FakeConnector, graph: FakeGraph
) -> None:
    _seen_only_in_copilot(home_live, connector, graph)
    unknown = home_live.api("GET", "/api/v1/recipients/nobody@contoso.example", API_KEY)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "RecipientNotFound"
    # Someone Graph knows but the bot never saw: still not found (no install asked for).
    graph.add_user(TENANT, GraphUser("Stranger", "stranger@contoso.example"))
    assert home_live.api("GET", "/api/v1/recipients/stranger@contoso.example", API_KEY).status_code == 404
    graph.fail_next(r"^GET /v1.0/users/", Fault(403, "Authorization_RequestDenied", "Insufficient privileges."))
    denied = home_live.api("GET", "/api/v1/recipients/adele@contoso.example", API_KEY)
    assert denied.status_code == 404 and denied.json()["error"]["code"] == "RecipientNotFound"
