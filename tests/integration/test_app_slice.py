"""The first slice end to end: install -> reachable -> SendMessage by UPN -> the chat gets it."""

from __future__ import annotations

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def _install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser, service: str = "a") -> None:
    response = live.activity(act.install(user, connector.service_url(service)))
    assert response.status_code == 200, response.text


def test_health_answers(live: LiveApp) -> None:
    assert live.api("GET", "/healthz").json() == {"status": "ok"}
    assert live.api("GET", "/readyz").json()["status"] == "ready"


def test_install_then_send_by_upn_reaches_the_teams_chat(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    # The welcome message went to the personal chat, and says how to opt out.
    welcome = connector.sent(user.conversation_id)
    assert len(welcome) == 1 and "stop" in welcome[0].activity["text"]

    recipient = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["reachable"] is True
    assert recipient["status"] == "active"
    assert recipient["aadObjectId"] == user.aad_object_id
    assert recipient["timezone"] == "Europe/Amsterdam"

    response = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "**Ticket 42** is yours"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "delivered"
    assert body["conversationId"] == user.conversation_id
    sent = connector.sent(user.conversation_id)[-1]
    assert sent.activity["text"] == "**Ticket 42** is yours"
    assert sent.activity["textFormat"] == "markdown"
    assert body["teamsMessageId"] == sent.activity_id


def test_card_goes_out_as_adaptive_card_attachment(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Approve?"}]}
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.aad_object_id, "card": card})
    assert response.status_code == 200, response.text
    attachment = connector.sent(user.conversation_id)[-1].activity["attachments"][0]
    assert attachment == {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}


def test_send_goes_to_teams_chat_even_after_m365_copilot_spoke_last(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    _install(live, connector, user)
    assert live.activity(act.m365_copilot_message(user, connector.service_url("m365"), "hello")).status_code == 200
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "ping"})
    assert response.status_code == 200, response.text
    assert response.json()["conversationId"] == user.conversation_id
    assert all(r.activity.get("text") != "ping" for r in connector.sent(user.m365_conversation_id))
    assert connector.sent(user.conversation_id)[-1].activity["text"] == "ping"


def test_only_copilot_reference_creates_the_teams_chat(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    other = make_user(name="Other", upn="other@contoso.example")
    _install(live, connector, other, "tenant")  # the tenant's known Teams service URL
    live.activity(act.m365_copilot_message(user, connector.service_url("m365"), "hi from copilot"))
    recipient = live.api("GET", f"/api/v1/recipients/{user.aad_object_id}", API_KEY).json()
    assert recipient["reachable"] is True
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.aad_object_id, "text": "hello"})
    assert response.status_code == 200, response.text
    created = connector.created_conversations[-1]
    assert created["tenantId"] == user.tenant_id and created["isGroup"] is False
    conversation_id = response.json()["conversationId"]
    assert conversation_id.startswith("a:created-")
    sent = connector.sent(conversation_id)[-1]
    assert sent.prefix == "/smba/tenant" and sent.activity["text"] == "hello"


def test_uninstall_makes_recipient_unreachable(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    assert live.activity(act.uninstall(user, connector.service_url())).status_code == 200
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RecipientUnreachable"
    assert "installed" in response.json()["error"]["message"]
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["reachable"] is False
    # Installing again makes the person reachable again.
    _install(live, connector, user)
    assert live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"}).status_code == 200


def test_stop_opts_out_and_start_opts_back_in(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    live.activity(act.message(user, connector.service_url(), "stop"))
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RecipientOptedOut"
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["optedOut"] is True
    live.activity(act.message(user, connector.service_url(), "start"))
    assert live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "hi"}).status_code == 200


def test_newest_service_url_is_used(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user, "old")
    live.activity(act.message(user, connector.service_url("new"), "help"))
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "where?"})
    assert response.status_code == 200, response.text
    assert connector.sent(user.conversation_id)[-1].prefix == "/smba/new"


def test_unknown_person_is_recipient_not_found(live: LiveApp) -> None:
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": "nobody@contoso.example", "text": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "RecipientNotFound"


def test_errors_are_json_with_codes(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    cases = [
        ({"recipient": user.upn}, 400, "ValidationError"),
        ({"recipient": user.upn, "card": "not an object"}, 400, "ValidationError"),
        ({"recipient": user.upn, "card": {"type": "AdaptiveCard"}}, 400, "ValidationError"),
        ({"recipient": user.upn, "text": "x" * 60_000}, 413, "MessageTooLarge"),
        ({"recipient": user.upn, "text": "hi", "colour": "red"}, 400, "ValidationError"),
    ]
    before = len(connector.sent())
    for body, status, code in cases:
        response = live.api("POST", "/api/v1/messages", API_KEY, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    unknown = live.api("POST", "/api/v1/messages", API_KEY, json=cases[-1][0]).json()["error"]
    assert "colour" in unknown["message"]
    missing_key = live.api("POST", "/api/v1/messages", None, json={"recipient": user.upn, "text": "hi"})
    assert missing_key.status_code == 401 and missing_key.json()["error"]["code"] == "Unauthorized"
    wrong_key = live.api("POST", "/api/v1/messages", "tpk_nope_nope", json={"recipient": user.upn, "text": "hi"})
    assert wrong_key.status_code == 401
    assert len(connector.sent()) == before  # nothing was sent by any refused request


def test_created_api_key_works_and_is_stored_hashed(live: LiveApp, connector: FakeConnector, make_user) -> None:
    from teams_proactive.connector.keys import create_key

    record, plaintext = live.runtime.call(create_key(live.runtime.store, "flows", tenant_id=None, scopes=["send"]))
    assert plaintext.split("_")[2] not in record.secret_hash
    user = make_user()
    _install(live, connector, user)
    assert (
        live.api("POST", "/api/v1/messages", plaintext, json={"recipient": user.upn, "text": "hi"}).status_code == 200
    )
    # A send-only key cannot start broadcasts.
    response = live.api("POST", "/api/v1/broadcasts", plaintext, json={"recipients": [user.upn], "text": "hi"})
    assert response.status_code == 403


def test_unknown_activity_types_are_answered_200_and_ignored(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    for kind in ("event", "typing", "messageReaction", "somethingNew"):
        activity = act.message(user, connector.service_url(), "")
        activity["type"] = kind
        activity.pop("text")
        response = live.activity(activity)
        assert response.status_code == 200, (kind, response.text)
    invoke = act.message(user, connector.service_url(), "")
    invoke.update(type="invoke", name="composeExtension/unknownThing", value={})
    assert live.activity(invoke).status_code == 200


def test_surfaces_are_kept_apart(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    live.activity(act.teams_copilot_message(user, connector.service_url(), "hi"))
    live.activity(act.m365_copilot_message(user, connector.service_url("m365"), "hi"))
    group = act.message(user, connector.service_url(), "hi all")
    group["conversation"] = {"id": "19:group@thread.v2", "conversationType": "groupChat", "tenantId": user.tenant_id}
    live.activity(group)
    surfaces = {s["surface"] for s in live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["surfaces"]}
    assert surfaces == {"teams", "teams-copilot", "m365-copilot", "group"}
    response = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": user.upn, "text": "to the chat"})
    assert response.json()["conversationId"] == user.conversation_id


def test_bot_removed_from_personal_chat_and_reinstalled_by_upgrade(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    _install(live, connector, user)
    removed = act.message(user, connector.service_url(), "")
    removed.pop("text")
    removed.update(type="conversationUpdate", membersRemoved=[{"id": act.BOT_ID}])
    assert live.activity(removed).status_code == 200
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["status"] == "uninstalled"
    upgrade = act.install(user, connector.service_url())
    upgrade["action"] = "add-upgrade"
    live.activity(upgrade)
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["status"] == "active"


def test_member_lookup_happens_once(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    _install(live, connector, user)
    live.activity(act.message(user, connector.service_url(), "help"))
    live.activity(act.message(user, connector.service_url(), "help"))
    assert live.api("GET", f"/api/v1/recipients/{user.aad_object_id}", API_KEY).json()["upn"] == user.upn
    assert connector.member_lookups == 1
