"""Connector API auth with API keys: hashed, scoped to a tenant and to scopes, rate limited per key.

A key limited to tenant A learns nothing about tenant B: every way in answers exactly as it does
for a person or id that does not exist (404), never 403.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.security.conftest import create_key, error_of, final_delivery, finished_broadcast
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

TENANT_A = "tenant-a"
TENANT_B = "tenant-b"


def _install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    response = live.activity(act.install(user, connector.service_url(user.tenant_id)))
    assert response.status_code == 200, response.text


# ---- keys are stored hashed ------------------------------------------------------------------


def test_store_keeps_only_a_hash_of_the_key(live: LiveApp) -> None:
    secret = create_key(live, "flows")
    records = live.runtime.call(live.runtime.store.keys.list_all())
    assert [r.name for r in records] == ["flows"]
    key_id, key_secret = secret.split("_")[1:]
    assert records[0].id == key_id
    assert key_secret not in records[0].secret_hash and key_secret not in repr(records[0].to_doc())
    assert live.api("GET", "/api/v1/recipients/nobody@contoso.example", secret).status_code == 404


@pytest.mark.parametrize(
    "presented",
    ["", "nonsense", "tpk_unknownid_secret", "tpk__", "tpk_a_b_c", API_KEY + "x", API_KEY[:-1], "tpk_x_" + "y" * 5000],
)
def test_wrong_or_malformed_key_is_401(live: LiveApp, presented: str) -> None:
    response = live.api("GET", "/api/v1/recipients/nobody@contoso.example", headers={"X-API-Key": presented})
    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "Unauthorized"


def test_a_valid_key_id_with_a_wrong_secret_is_401(live: LiveApp) -> None:
    secret = create_key(live, "flows")
    prefix, key_id, _ = secret.split("_")
    forged = f"{prefix}_{key_id}_{'A' * 43}"
    assert live.api("GET", "/api/v1/recipients/x@contoso.example", forged).status_code == 401


def test_revoked_key_is_401(live: LiveApp) -> None:
    from teams_proactive.connector import keys

    secret = create_key(live, "old-flow")
    assert live.api("GET", "/api/v1/recipients/x@contoso.example", secret).status_code == 404
    live.runtime.call(keys.revoke(live.runtime.store, "old-flow"))
    assert live.api("GET", "/api/v1/recipients/x@contoso.example", secret).status_code == 401


# ---- scopes ----------------------------------------------------------------------------------

# (method, path, body) -> the scope it needs
OPERATIONS_BY_SCOPE: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/api/v1/messages", {"recipient": "x@contoso.example", "text": "hi"}, "send"),
    ("GET", "/api/v1/messages/0123456789abcdef", None, "send"),
    ("GET", "/api/v1/recipients/x@contoso.example", None, "send"),
    ("POST", "/api/v1/broadcasts", {"recipients": ["x@contoso.example"], "text": "hi"}, "broadcast"),
    ("GET", "/api/v1/broadcasts/0123456789abcdef", None, "broadcast"),
    ("GET", "/api/v1/recipients", None, "admin"),
    ("DELETE", "/api/v1/recipients/x@contoso.example", None, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needed"), OPERATIONS_BY_SCOPE)
@pytest.mark.parametrize("held", ["send", "broadcast", "admin"])
def test_scope_matrix(live: LiveApp, method: str, path: str, body: Any, needed: str, held: str) -> None:
    secret = create_key(live, f"key-{held}", scopes=[held])
    response = live.api(method, path, secret, json=body)
    allowed = held == needed or held == "admin"
    if allowed:
        assert response.status_code in (200, 202, 404), response.text  # nothing exists: 404 is the answer
    else:
        assert response.status_code == 403, response.text
        assert error_of(response)["code"] == "Forbidden"
        assert needed in error_of(response)["message"]


# ---- tenant isolation ------------------------------------------------------------------------


@pytest.fixture
def two_tenants(live: LiveApp, connector: FakeConnector, make_user):  # type: ignore[no-untyped-def]
    alice = make_user("Alice A", "alice@a.example", tenant_id=TENANT_A)
    bob = make_user("Bob B", "bob@b.example", tenant_id=TENANT_B)
    _install(live, connector, alice)
    _install(live, connector, bob)
    # Something of B's to find: a delivered message and a broadcast.
    sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": bob.upn, "text": "secret plan"})
    assert sent.status_code in (200, 202), sent.text
    bob_message = final_delivery(live, sent.json()["id"])
    broadcast = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [bob.upn], "text": "b only"})
    assert broadcast.status_code == 200, broadcast.text
    finished_broadcast(live, broadcast.json()["id"])
    key_a = create_key(live, "tenant-a-admin", tenant_id=TENANT_A, scopes=["admin"])
    return {"alice": alice, "bob": bob, "message": bob_message, "broadcast": broadcast.json(), "key_a": key_a}


def _same_as_unknown(live: LiveApp, key: str, method: str, known: str, unknown: str, **kwargs: Any) -> None:
    """Asking about B's thing answers exactly like asking about a thing that does not exist."""
    seen = live.api(method, known, key, **kwargs)
    never = live.api(method, unknown, key, **kwargs)
    assert seen.status_code == never.status_code == 404, (seen.text, never.text)
    a, b = error_of(seen), error_of(never)
    assert a["code"] == b["code"]
    assert a.get("target") == b.get("target")


def test_tenant_key_cannot_see_another_tenants_person(live: LiveApp, two_tenants: dict[str, Any]) -> None:
    key, bob = two_tenants["key_a"], two_tenants["bob"]
    for known, unknown in (
        (bob.upn, "nobody@b.example"),
        (bob.aad_object_id, "00000000-0000-0000-0000-000000000000"),
    ):
        _same_as_unknown(live, key, "GET", f"/api/v1/recipients/{known}", f"/api/v1/recipients/{unknown}")
    error = error_of(live.api("GET", f"/api/v1/recipients/{bob.upn}", key))
    assert TENANT_B not in error["message"]


def test_tenant_key_cannot_message_another_tenants_person(
    live: LiveApp, connector: FakeConnector, two_tenants: dict[str, Any]
) -> None:
    key, bob = two_tenants["key_a"], two_tenants["bob"]
    before = len(connector.sent(bob.conversation_id))
    for body in ({"recipient": bob.upn, "text": "hi"}, {"recipient": bob.upn, "text": "hi", "tenantId": TENANT_B}):
        response = live.api("POST", "/api/v1/messages", key, json=body)
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "RecipientNotFound"
    assert len(connector.sent(bob.conversation_id)) == before


def test_tenant_key_cannot_list_another_tenants_people(live: LiveApp, two_tenants: dict[str, Any]) -> None:
    key = two_tenants["key_a"]
    listed = live.api("GET", "/api/v1/recipients", key).json()["value"]
    assert [p["upn"] for p in listed] == ["alice@a.example"]
    # Naming another tenant is refused the same way whether that tenant exists or not.
    for tenant in (TENANT_B, "no-such-tenant"):
        refused = live.api("GET", f"/api/v1/recipients?tenantId={tenant}", key)
        assert refused.status_code == 403 and error_of(refused)["code"] == "Forbidden"


def test_tenant_key_cannot_read_change_or_delete_another_tenants_message(
    live: LiveApp, two_tenants: dict[str, Any]
) -> None:
    key, message_id = two_tenants["key_a"], two_tenants["message"]["id"]
    unknown = "f" * 32
    _same_as_unknown(live, key, "GET", f"/api/v1/messages/{message_id}", f"/api/v1/messages/{unknown}")
    _same_as_unknown(
        live, key, "PUT", f"/api/v1/messages/{message_id}", f"/api/v1/messages/{unknown}", json={"text": "changed"}
    )
    _same_as_unknown(live, key, "DELETE", f"/api/v1/messages/{message_id}", f"/api/v1/messages/{unknown}")
    still = live.api("GET", f"/api/v1/messages/{message_id}", API_KEY).json()
    assert still["status"] == "delivered"


def test_tenant_key_cannot_read_another_tenants_broadcast(live: LiveApp, two_tenants: dict[str, Any]) -> None:
    key, broadcast_id = two_tenants["key_a"], two_tenants["broadcast"]["id"]
    _same_as_unknown(live, key, "GET", f"/api/v1/broadcasts/{broadcast_id}", f"/api/v1/broadcasts/{'e' * 32}")


def test_tenant_key_cannot_forget_another_tenants_person(live: LiveApp, two_tenants: dict[str, Any]) -> None:
    key, bob = two_tenants["key_a"], two_tenants["bob"]
    _same_as_unknown(live, key, "DELETE", f"/api/v1/recipients/{bob.upn}", "/api/v1/recipients/nobody@b.example")
    assert live.api("GET", f"/api/v1/recipients/{bob.upn}", API_KEY).json()["reachable"] is True


def test_tenant_key_broadcast_skips_another_tenants_people_as_unknown(
    live: LiveApp, connector: FakeConnector, two_tenants: dict[str, Any]
) -> None:
    key, alice, bob = two_tenants["key_a"], two_tenants["alice"], two_tenants["bob"]
    before = len(connector.sent(bob.conversation_id))
    started = live.api(
        "POST", "/api/v1/broadcasts", key, json={"recipients": [alice.upn, bob.upn, "nobody@b.example"], "text": "hi"}
    )
    assert started.status_code == 200, started.text
    report = finished_broadcast(live, started.json()["id"], key)
    failures = {f["recipient"]: f["code"] for f in report["failures"]}
    assert failures == {bob.upn: "RecipientNotFound", "nobody@b.example": "RecipientNotFound"}
    assert report["counts"]["delivered"] == 1
    assert len(connector.sent(bob.conversation_id)) == before


def test_tenant_key_all_active_users_of_another_tenant_reaches_nobody(
    live: LiveApp, connector: FakeConnector, two_tenants: dict[str, Any]
) -> None:
    key, bob = two_tenants["key_a"], two_tenants["bob"]
    before = len(connector.sent(bob.conversation_id))
    answers = []
    for tenant in (TENANT_B, "no-such-tenant"):
        response = live.api(
            "POST", "/api/v1/broadcasts", key, json={"allActiveUsers": True, "tenantId": tenant, "text": "x"}
        )
        answers.append((response.status_code, error_of(response)["code"]))
    # Refused for any tenant but its own, whether or not that tenant has people here.
    assert answers[0] == answers[1] and answers[0][0] in (403, 404), answers
    assert len(connector.sent(bob.conversation_id)) == before


# ---- rate limits -----------------------------------------------------------------------------


def test_rate_limit_per_key_answers_429_with_retry_after(app_env: dict[str, str], connector: FakeConnector) -> None:
    env = {**app_env, "RATE_LIMIT_PER_MINUTE": "3"}
    with LiveApp(env) as app:
        first = create_key(app, "first")
        second = create_key(app, "second")
        codes = [app.api("GET", "/api/v1/recipients/x@contoso.example", first).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        throttled = app.api("GET", "/api/v1/recipients/x@contoso.example", first)
        assert throttled.status_code == 429
        assert error_of(throttled)["code"] == "Throttled"
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # Another key has its own budget; a wrong key is refused (401), not counted against anyone.
        assert app.api("GET", "/api/v1/recipients/x@contoso.example", second).status_code == 404
        assert app.api("GET", "/api/v1/recipients/x@contoso.example", "tpk_bad_key").status_code == 401
