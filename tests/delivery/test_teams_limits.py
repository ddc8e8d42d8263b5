"""What Teams enforces, met as Teams answers it: per-chat limits (429), chat creation refused (403 not installed,
400 bad member id), changes to a message that is gone (404), a member lookup that fails.

The fake Bot Connector enforces these itself (tests/support/fake_connector.py); nothing here is scripted
except where a test names a single answer Microsoft documents."""

from __future__ import annotations

from teams_proactive.bot.model import Surface

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, install, send
from tests.support import activities as act
from tests.support.fake_connector import CHAT_LIMITS, FakeConnector, Member, Scripted
from tests.support.live_app import LiveApp


def test_the_fake_keeps_teams_per_chat_limits() -> None:
    """7 per 1 s, 8 per 2 s, 60 per 30 s, 1,800 per hour, on the fake's own clock (no waiting here)."""
    assert CHAT_LIMITS == ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
    fake = FakeConnector()
    check = fake._breaks_chat_limits
    assert [check("c", 0.1 * i) for i in range(7)] == [False] * 7
    assert check("c", 0.7) is True  # the 8th within a second
    assert check("other", 0.7) is False  # per conversation
    assert check("c", 1.05) is False  # 8 within 2 s is allowed
    assert check("c", 1.2) is True  # the 9th within 2 s is not
    assert check("c", 10.0) is False
    # 60 per 30 s: spread (0.3 s apart) so the short windows never trip.
    spread = [check("s", 0.3 * i) for i in range(61)]
    assert spread.count(False) == 60 and spread[-1] is True
    hour = FakeConnector()
    results = [hour._breaks_chat_limits("h", 0.6 * i) for i in range(3100)]  # 100 per minute for 31 minutes
    assert results.count(False) == 1800 and results[1799] is False and results[1800] is True


def test_the_fake_keeps_the_budget_per_tenant() -> None:
    """The per-app cap is Teams' per-app, per-tenant budget: one tenant's calls never spend another's."""
    fake = FakeConnector(rate_cap_per_second=5)
    check = fake._breaks_tenant_cap
    assert [check("contoso", 0.1 * i) for i in range(5)] == [False] * 5
    assert check("contoso", 0.6) is True  # the 6th within a second
    assert [check("fabrikam", 0.6 + 0.01 * i) for i in range(5)] == [False] * 5  # its own budget
    assert check("fabrikam", 0.7) is True
    assert check("contoso", 1.05) is False  # the first of contoso's calls left the window
    # A call is counted against the tenant its body names; a DELETE (no body) against the one learnt.
    body = {"conversation": {"id": "a:1", "tenantId": "contoso"}}
    assert fake._tenant_of("a:1", body) == "contoso"
    assert fake._tenant_of("a:1", None) == "contoso"
    assert fake._tenant_of("a:2", {"channelData": {"tenant": {"id": "fabrikam"}}}) == "fabrikam"


def test_many_messages_to_one_chat_are_all_delivered_without_a_429(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    ids = [send(fast_live, {"recipient": user.upn, "text": f"n{i}", "wait": 0}).json()["id"] for i in range(20)]
    assert all(final_delivery(fast_live, i, timeout=60)["status"] == "delivered" for i in ids)
    assert len([r for r in connector.sent(user.conversation_id) if r.activity["text"].startswith("n")]) == 20
    assert connector.chat_throttled == 0


def _copilot_only(user: act.TeamsUser, service_url: str) -> dict:
    """A Microsoft 365 Copilot message whose sender id is not a Teams user id (here the Entra object id)."""
    activity = act.m365_copilot_message(user, service_url, "hi")
    activity["from"]["id"] = user.aad_object_id
    return activity


def test_a_person_known_only_from_copilot_gets_a_chat_opened_with_their_entra_object_id(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    other = make_user("Other", "other@contoso.example")
    install(fast_live, connector, other)  # the tenant's Teams service URL
    assert fast_live.activity(_copilot_only(user, connector.service_url("m365"))).status_code == 200
    sent = send(fast_live, {"recipient": user.aad_object_id, "text": "hello", "wait": 30}).json()
    assert sent["status"] == "delivered", sent
    (created,) = connector.created_conversations
    # Copilot's user id is not a Teams one: the chat is asked for with the Entra object id.
    assert created["members"] == [{"id": user.aad_object_id}] and created["tenantId"] == user.tenant_id
    assert connector.sent(f"a:created-{user.aad_object_id}")[-1].activity["text"] == "hello"


def test_opening_a_chat_with_someone_without_the_app_fails_as_teams_answers(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    other = make_user("Other", "other@contoso.example")
    install(fast_live, connector, other)
    connector.not_installed.add(user.aad_object_id)
    assert fast_live.activity(_copilot_only(user, connector.service_url("m365"))).status_code == 200
    sent = send(fast_live, {"recipient": user.aad_object_id, "text": "hello", "wait": 30})
    body = sent.json()
    assert body["status"] == "failed", body
    assert (body["error"]["code"], body["error"]["teamsCode"]) == (
        "RecipientUnreachable",
        "ForbiddenOperationException",
    )
    assert connector.created_conversations == [] and connector.sent(f"a:created-{user.aad_object_id}") == []


def test_a_member_id_teams_cannot_read_is_a_bad_argument() -> None:
    import requests

    with FakeConnector() as fake:
        url = fake.service_url("a") + "v3/conversations"
        for member in ("not-an-id", "8:orgid:", ""):
            answer = requests.post(url, json={"members": [{"id": member}], "tenantId": "t"}, timeout=10)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadArgument"
        assert fake.created_conversations == []


def test_a_recall_that_meets_a_message_deleted_in_teams_completes(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    for user in (ana, ben):
        install(fast_live, connector, user)
    started = fast_live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [ana.upn, ben.upn],
                                                                          "text": "oops"})  # fmt: skip
    broadcast_id = started.json()["id"]

    def report() -> dict:
        return fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()

    eventually(lambda: report()["status"] == "completed")
    (anas,) = [r for r in connector.sent(ana.conversation_id) if r.activity.get("text") == "oops"]
    connector.delete_in_teams(ana.conversation_id, str(anas.activity_id))  # Ana deleted it herself
    assert fast_live.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).status_code == 200
    done = eventually(lambda: (r := report())["recall"]["status"] == "completed" and r)
    # Ben's copy is deleted; Ana's was gone already (Teams answered 404), which is not a failure to reach her.
    assert [r.conversation_id for r in connector.changes("DELETE")] == [ben.conversation_id]
    assert [s for _, s in connector.calls_to(ana.conversation_id)][-1] == 404
    assert done["recall"]["failed"] == 0, done["recall"]
    assert fast_live.api("GET", f"/api/v1/recipients/{ana.upn}", API_KEY).json()["status"] == "active"


def test_an_update_that_meets_a_429_is_retried_and_lands(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "v1", "wait": 30}).json()
    connector.fail_next(2, Scripted(429, "Throttled", retry_after=0.2), user.conversation_id)
    changed = fast_live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "v2"})
    assert changed.status_code == 200, changed.text
    (put,) = connector.changes("PUT")
    assert put.activity["text"] == "v2" and put.activity_id == sent["teamsMessageId"]
    assert [s for _, s in connector.calls_to(user.conversation_id)][-3:] == [429, 429, 200]


def test_an_update_of_a_message_deleted_in_teams_says_so(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    sent = send(fast_live, {"recipient": user.upn, "text": "v1", "wait": 30}).json()
    connector.delete_in_teams(user.conversation_id, sent["teamsMessageId"])
    changed = fast_live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "v2"})
    assert changed.status_code == 409 and "no longer has this message" in changed.json()["error"]["message"]
    assert connector.changes("PUT") == []
    assert fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["status"] == "active"


def test_a_failed_member_lookup_keeps_the_person_and_the_next_activity_learns_the_upn(
    fast_live: LiveApp, connector: FakeConnector
) -> None:
    user = act.TeamsUser(name="Lee Gu", upn="lee@contoso.example")  # not yet in the fake's roster: lookup 404
    install(fast_live, connector, user)
    assert connector.member_lookups == 1
    by_id = fast_live.api("GET", f"/api/v1/recipients/{user.aad_object_id}", API_KEY).json()
    assert by_id["reachable"] is True and by_id["upn"] is None
    assert fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).status_code == 404
    connector.add_member(Member(user.user_id, user.name, user.aad_object_id, user.upn, user.upn, user.tenant_id))
    assert fast_live.activity(act.message(user, connector.service_url(), "hello")).status_code == 200
    assert connector.member_lookups == 2
    by_upn = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert by_upn["aadObjectId"] == user.aad_object_id and by_upn["reachable"] is True
    refs = fast_live.runtime.call(fast_live.runtime.store.references.of_person(user.tenant_id, user.aad_object_id))
    assert [r.surface for r in refs] == [Surface.TEAMS] and refs[0].upn == user.upn
