"""Broadcast audiences from Entra groups (nested) and teams: paged, de-duplicated, guests left out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from teams_proactive.connector.cli import main

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, texts_in
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member
from tests.support.fake_graph import FakeGraph, Fault, GraphUser
from tests.support.live_app import LiveApp


def _gid() -> str:
    return str(uuid.uuid4())


def _completed(live: LiveApp, broadcast_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
        return body if body["status"] == "completed" else None

    return eventually(done, timeout=30)


def _org(graph: FakeGraph, live: LiveApp, connector: FakeConnector) -> dict[str, Any]:
    """Five members and a guest; two of the members already have the bot."""
    people = [graph.add_user(TENANT, GraphUser(f"Person {i}", f"p{i}@contoso.example")) for i in range(1, 6)]
    guest = graph.add_user(TENANT, GraphUser("Guest", "guest_fabrikam.example#EXT#@contoso.example",
                                             user_type="Guest"))  # fmt: skip
    chats = {}
    for person in people[:2]:
        user = act.TeamsUser(name=person.display_name, upn=person.upn, tenant_id=TENANT, aad_object_id=person.id)
        connector.add_member(Member(user.user_id, user.name, person.id, person.upn, person.upn, TENANT))
        assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
        chats[person.id] = user.conversation_id
    for person in people[2:]:
        chats[person.id] = graph.chat_id(person.id)
    outer, inner, team = _gid(), _gid(), _gid()
    graph.add_group(inner, [people[2].id, people[3].id, guest.id, people[0].id])
    graph.add_group(outer, [people[0].id, people[1].id, inner])
    graph.add_team(team, [(people[1].id, []), (people[4].id, ["owner"]), (guest.id, ["guest"])])
    return {"people": people, "guest": guest, "chats": chats, "outer": outer, "inner": inner, "team": team}


def test_two_nested_groups_and_a_team_reach_each_member_exactly_once(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector
) -> None:
    org = _org(graph, graph_live, connector)
    people = org["people"]
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "groups": [org["outer"], org["inner"]], "teams": [org["team"]], "recipients": [people[2].upn],
        "text": "Quarterly results", "installIfMissing": True, "tenantId": TENANT})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    report = _completed(graph_live, response.json()["id"])
    for person in people:
        assert texts_in(connector, org["chats"][person.id], "Quarterly results") == 1, person.upn
    assert not connector.sent(graph.chat_id(org["guest"].id))
    assert texts_in(connector, known_tenant.conversation_id, "Quarterly results") == 0  # in none of them
    assert report["counts"]["delivered"] == 5
    assert report["installs"] == {"installed": 3, "alreadyInstalled": 0, "failed": 0, "failures": []}
    # Paged: the fake answers two members a page, so the groups took several calls each.
    assert len(graph.calls_matching(r"transitiveMembers")) > 2
    assert len(graph.calls_matching(r"skiptoken")) >= 2
    # 1 listed + 4 in the outer group + 3 in the inner one + 2 in the team; the repeats are skipped.
    assert report["total"] == report["expanded"] == 10
    assert report["counts"]["skipped"] == 5


def test_guests_are_included_only_when_asked(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector
) -> None:
    org = _org(graph, graph_live, connector)
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "teams": [org["team"]], "text": "Team news", "installIfMissing": True, "includeGuests": True,
        "tenantId": TENANT})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    report = _completed(graph_live, response.json()["id"])
    assert report["counts"]["delivered"] == 3
    assert texts_in(connector, graph.chat_id(org["guest"].id), "Team news") == 1


def test_without_installing_only_people_with_the_bot_are_reached(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector
) -> None:
    org = _org(graph, graph_live, connector)
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "groups": [org["outer"], _gid()], "text": "Hello", "tenantId": TENANT})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    report = _completed(graph_live, response.json()["id"])
    assert report["counts"]["delivered"] == 2
    codes = sorted(f["code"] for f in report["failures"])
    assert codes == ["GroupNotFound", "RecipientNotFound", "RecipientNotFound"], report["failures"]
    assert graph.calls_matching(r"installedApps") == []


def test_a_throttled_expansion_resumes_without_duplicates(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector
) -> None:
    org = _org(graph, graph_live, connector)
    # The second page of the group fails until the client gives up; the expansion runs again later.
    graph.fail_next(r"transitiveMembers.*skiptoken=2", Fault(503, "ServiceUnavailable", "Service Unavailable"),
                    count=4)  # fmt: skip
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "groups": [org["outer"]], "text": "Again", "installIfMissing": True, "tenantId": TENANT})  # fmt: skip
    report = _completed(graph_live, response.json()["id"])
    assert report["counts"]["delivered"] == 4
    for person in org["people"][:4]:
        assert texts_in(connector, org["chats"][person.id], "Again") == 1


def test_groups_need_graph_credentials(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp(app_env) as live:
        response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={
            "groups": [_gid()], "text": "Hi", "tenantId": TENANT})  # fmt: skip
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "GraphNotConfigured"
        bad = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"groups": ["finance"], "text": "Hi"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "ValidationError"


def test_the_cli_broadcasts_to_a_group(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    org = _org(graph, graph_live, connector)
    argv = ["broadcast", "--group", org["inner"], "--install-if-missing", "--tenant", TENANT, "--text", "From the CLI",
            "--url", graph_live.url, "--api-key", API_KEY, "--poll-seconds", "0.1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "done: 3 delivered, 0 failed, 0 skipped" in out, out
    for person in (org["people"][0], org["people"][2], org["people"][3]):
        assert texts_in(connector, org["chats"][person.id], "From the CLI") == 1
    assert main(["broadcast", "--text", "nobody"]) == 2


def test_team_members_from_another_organisation_are_skipped_with_the_reason(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector
) -> None:
    """ "List members of team" warns that members of other tenants occur (shared channels, B2B direct
    connect): each carries its own tenantId, and this tenant's broadcast does not reach them."""
    org = _org(graph, graph_live, connector)
    outsider = graph.add_user("tenant-fabrikam", GraphUser("Fab Rikam", "fab@fabrikam.example"))
    graph.teams[org["team"]].append((outsider.id, []))
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "teams": [org["team"]], "text": "Team news", "installIfMissing": True, "tenantId": TENANT})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    report = _completed(graph_live, response.json()["id"])
    assert report["counts"]["delivered"] == 2  # the team's two members of this tenant (the guest left out)
    (skip,) = [f for f in report["failures"] if f["recipient"] == outsider.upn]
    assert skip["code"] == "OtherTenantMember" and "another organisation" in skip["message"]
    assert not graph.calls_matching(outsider.id)  # never looked up, never installed for
    assert not [r for r in connector.created_conversations if r["tenantId"] != TENANT]


@pytest.mark.parametrize("kind", ["groups", "teams"])
def test_graph_refusing_to_list_a_group_or_team_is_a_clear_failure(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector, kind: str
) -> None:
    org = _org(graph, graph_live, connector)
    target = org["outer"] if kind == "groups" else org["team"]
    pattern = r"transitiveMembers" if kind == "groups" else r"/teams/.*/members"
    graph.fail_next(pattern, Fault(403, "Authorization_RequestDenied",
                                   "Insufficient privileges to complete the operation."))  # fmt: skip
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        kind: [target], "text": "Denied", "tenantId": TENANT})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    report = _completed(graph_live, response.json()["id"])
    (failure,) = report["failures"]
    permission = "GroupMember.Read.All" if kind == "groups" else "TeamMember.Read.All"
    assert failure["code"] == "GraphPermissionMissing" and permission in failure["message"]
    assert "403" in failure["message"] and report["counts"]["delivered"] == 0
    assert not [r for r in connector.sent() if r.activity.get("text") == "Denied"]
