"""installIfMissing: a person never seen is found in Entra ID, gets the app installed, and the message."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from teams_proactive.bot.model import Surface
from teams_proactive.connector import keys

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, send
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.fake_graph import FakeGraph, Fault, GraphUser
from tests.support.live_app import LiveApp


def _send_installing(live: LiveApp, recipient: str, text: str = "Welcome aboard", **extra: object) -> dict:
    response = send(live, {"recipient": recipient, "text": text, "installIfMissing": True, "tenantId": TENANT,
                           "wait": 0, **extra})  # fmt: skip
    assert response.status_code in (200, 202), response.text
    return final_delivery(live, response.json()["id"])


def test_a_person_never_seen_is_installed_for_and_gets_the_message(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    adele = new_person()
    delivery = _send_installing(graph_live, "Adele@Contoso.example")
    assert delivery["status"] == "delivered", delivery
    assert delivery["reachedBy"] == "installed"
    assert delivery["installOutcome"] == "installed"
    chat = graph.chat_id(adele.id)
    assert delivery["conversationId"] == chat
    assert [r.activity["text"] for r in connector.sent(chat)] == ["Welcome aboard"]
    # The chat went to the service URL the tenant is known by.
    assert connector.sent(chat)[0].prefix == "/smba/a"
    assert (TENANT, adele.id) in graph.installations
    # The person is now known by their UPN: the next send needs no Graph at all.
    installs_before = len(graph.calls_matching(r"^POST .*/installedApps"))
    again = send(graph_live, {"recipient": "adele@contoso.example", "text": "Second", "wait": 10})
    assert again.status_code == 200 and again.json()["reachedBy"] == "reference", again.text
    assert len(graph.calls_matching(r"^POST .*/installedApps")) == installs_before
    # One app-only token served every Graph call (client credentials at the tenant's authority).
    assert [t["grant_type"] for t in graph.token_requests] == ["client_credentials"]


def test_the_bots_own_installation_update_merges_into_the_same_record(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    adele = new_person()
    assert _send_installing(graph_live, adele.upn)["status"] == "delivered"
    # Teams then tells the bot about the installation, from the person's new chat: with Bot Framework's
    # "a:…" id for the chat Graph called "19:…@unq.gbl.spaces".
    user = act.TeamsUser(name="Adele Vance", upn=adele.upn, tenant_id=TENANT, aad_object_id=adele.id)
    assert user.conversation_id.startswith("a:")
    connector.same_chat(graph.chat_id(adele.id), user.conversation_id)
    assert graph_live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    refs = graph_live.runtime.call(graph_live.runtime.store.references.of_person(TENANT, adele.id.lower()))
    assert [(r.surface, r.conversation_id, r.user_id, r.conversation_aliases) for r in refs] == [
        (Surface.TEAMS, user.conversation_id, user.user_id, [graph.chat_id(adele.id)])
    ]
    assert refs[0].upn == adele.upn


def test_already_installed_is_found_and_reported_as_such(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, new_person: Callable[..., GraphUser]
) -> None:
    adele = new_person()
    graph.installations[(TENANT, adele.id)] = f"{adele.id}##{FakeGraph.APP_ID}"
    delivery = _send_installing(graph_live, adele.upn)
    assert delivery["status"] == "delivered", delivery
    assert delivery["installOutcome"] == "alreadyInstalled"
    assert graph.calls_matching(r"^POST .*/installedApps")  # tried, and Graph answered 409 Conflict


def test_install_failures_say_why(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, new_person: Callable[..., GraphUser]
) -> None:
    blocked = new_person("Blocked By Policy", "policy@contoso.example")
    graph.blocked_by_policy.add(blocked.id)
    unlicensed = new_person("No Licence", "nolicence@contoso.example")
    graph.unlicensed.add(unlicensed.id)
    assert _send_installing(graph_live, blocked.upn)["error"]["code"] == "InstallBlockedByPolicy"
    assert _send_installing(graph_live, unlicensed.upn)["error"]["code"] == "NoTeamsLicence"
    nobody = _send_installing(graph_live, "nobody@contoso.example")
    assert nobody["status"] == "failed" and nobody["error"]["code"] == "UserNotFound"
    graph.catalog.clear()
    someone = new_person("Someone", "someone@contoso.example")
    missing_app = _send_installing(graph_live, someone.upn)
    assert missing_app["error"]["code"] == "AppNotInCatalog", missing_app
    assert missing_app["installOutcome"] == "AppNotInCatalog"


def test_graph_throttling_is_honoured_and_the_install_retried(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, new_person: Callable[..., GraphUser]
) -> None:
    adele = new_person()
    graph.fail_next(
        r"^POST .*/installedApps", Fault(429, "TooManyRequests", "Please retry again later.", retry_after=1)
    )
    graph.fail_next(r"^GET .*/chat$", Fault(503, "ServiceUnavailable", "Service Unavailable"))
    delivery = _send_installing(graph_live, adele.upn)
    assert delivery["status"] == "delivered", delivery
    posts = graph.calls_matching(r"^POST .*/installedApps")
    assert len(posts) == 2
    assert posts[1].at - posts[0].at >= 1.0  # not before Graph's Retry-After
    assert len(graph.calls_matching(r"^GET .*/chat$")) == 2


def test_install_if_missing_needs_the_operators_switch(
    app_env: dict[str, str], graph: FakeGraph, connector: FakeConnector
) -> None:
    with LiveApp({**app_env, **graph.env(install=False)}) as live:
        response = send(live, {"recipient": "adele@contoso.example", "text": "Hi", "installIfMissing": True,
                               "tenantId": TENANT})  # fmt: skip
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "InstallNotEnabled" and "GRAPH_INSTALL" in error["message"]
        assert error["target"] == "installIfMissing"
        assert live.api("GET", "/api/v1/recipients/adele@contoso.example", API_KEY).status_code == 404
        card = {"type": "AdaptiveCard", "version": "1.4", "body": [],
                "actions": [{"type": "Action.Submit", "title": "OK"}]}  # fmt: skip
        waited = live.api("POST", "/api/v1/cards/wait", API_KEY, json={
            "recipient": "adele@contoso.example", "card": card, "installIfMissing": True,
            "notificationUrl": "https://flows.contoso.example/run/1"})  # fmt: skip
        assert waited.status_code == 409 and waited.json()["error"]["code"] == "InstallNotEnabled", waited.text
    assert graph.calls == []


def test_a_new_person_needs_a_tenant(graph_live: LiveApp, graph: FakeGraph) -> None:
    response = send(graph_live, {"recipient": "adele@contoso.example", "text": "Hi", "installIfMissing": True})
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "tenantId"


def test_a_card_waits_for_someone_the_app_was_installed_for(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    adele = new_person()
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "Approve?"}],
            "actions": [{"type": "Action.Submit", "title": "OK"}]}  # fmt: skip
    response = graph_live.api("POST", "/api/v1/cards/wait", API_KEY, json={
        "recipient": adele.upn, "card": card, "installIfMissing": True, "tenantId": TENANT,
        "notificationUrl": "https://flows.contoso.example/run/1"})  # fmt: skip
    assert response.status_code == 201, response.text
    delivered = eventually(lambda: connector.sent(graph.chat_id(adele.id)))
    assert delivered[0].activity["attachments"][0]["content"]["body"][0]["text"] == "Approve?"


def test_a_broadcast_reports_what_installing_did(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, new_person: Callable[..., GraphUser]
) -> None:
    fresh = new_person("Fresh", "fresh@contoso.example")
    had_it = new_person("Had It", "hadit@contoso.example")
    graph.installations[(TENANT, had_it.id)] = f"{had_it.id}##{FakeGraph.APP_ID}"
    blocked = new_person("Blocked", "blocked@contoso.example")
    graph.blocked_by_policy.add(blocked.id)
    response = graph_live.api("POST", "/api/v1/broadcasts", API_KEY, json={
        "recipients": [fresh.upn, had_it.upn, blocked.upn, "nobody@contoso.example", known_tenant.upn],
        "text": "Hello all", "installIfMissing": True, "tenantId": TENANT})  # fmt: skip
    assert response.status_code == 200, response.text  # StartBroadcast answers at once

    def done() -> dict | None:
        body = graph_live.api("GET", f"/api/v1/broadcasts/{response.json()['id']}", API_KEY).json()
        return body if body["status"] == "completed" else None

    report = eventually(done)
    assert report["counts"]["delivered"] == 3  # fresh, had it, and the person who had the bot already
    assert report["installs"] == {
        "installed": 1, "alreadyInstalled": 1, "failed": 2,
        "failures": [{"code": "InstallBlockedByPolicy", "count": 1}, {"code": "UserNotFound", "count": 1}],
    }  # fmt: skip


def test_installing_is_a_permission_of_its_own(
    graph_live: LiveApp, known_tenant: act.TeamsUser, graph: FakeGraph, connector: FakeConnector,
    new_person: Callable[..., GraphUser],
) -> None:  # fmt: skip
    """With GRAPH_INSTALL on, a key with send (and broadcast) but not install may not install the app."""
    adele = new_person()
    _, sender = graph_live.runtime.call(
        keys.create_key(graph_live.runtime.store, "flows", tenant_id=None, scopes=["send", "broadcast"])
    )
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [], "actions": [{"type": "Action.Submit", "title": "OK"}]}
    attempts = {
        "Send a message": ("/api/v1/messages", {"recipient": adele.upn, "text": "Hi", "tenantId": TENANT}),
        "Send a card and wait for a response": (
            "/api/v1/cards/wait",
            {"recipient": adele.upn, "card": card, "tenantId": TENANT, "notificationUrl": "https://flows.example/r"},
        ),
        "Send one message to many people": (
            "/api/v1/broadcasts",
            {"groups": [str(uuid.uuid4())], "text": "Hi", "tenantId": TENANT},
        ),
    }
    for operation, (path, body) in attempts.items():
        response = graph_live.api("POST", path, sender, json={**body, "installIfMissing": True})
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "Forbidden" and error["target"] == "installIfMissing"
        assert "'install' permission" in error["message"] and f"'{operation}'" in error["message"]
    assert graph.calls_matching(r"^POST .*/installedApps") == []
    assert (TENANT, adele.id) not in graph.installations
    # The same key sends to people who have the app; a key with install may install.
    plain = graph_live.api("POST", "/api/v1/messages", sender, json={"recipient": known_tenant.aad_object_id, "text": "Hi", "tenantId": TENANT})
    assert plain.status_code in (200, 202), plain.text
    _, installer = graph_live.runtime.call(
        keys.create_key(graph_live.runtime.store, "onboarding", tenant_id=None, scopes=["send", "install"])
    )
    installing = graph_live.api(
        "POST", "/api/v1/messages", installer,
        json={"recipient": adele.upn, "text": "Welcome", "tenantId": TENANT, "installIfMissing": True, "wait": 0},
    )  # fmt: skip
    assert installing.status_code == 200, installing.text
    assert final_delivery(graph_live, installing.json()["id"])["installOutcome"] == "installed"
