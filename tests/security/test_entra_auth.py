"""Connector API auth with Entra ID bearer tokens (CONNECTOR_AUTH=entra), signed by a local issuer.

Audience, issuer (v1 and v2), signature, lifetime, tenant allow-list and the required app role or
delegated scope are each a test; a token's caller reaches only people of the token's own tenant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from tests.security.conftest import create_key, error_of
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.token_issuer import LocalTokenIssuer, entra_v2_issuer

AUDIENCE = "api://teams-proactive"
CLIENT_ID = "3f0e2d1c-0b9a-4877-8665-544332211000"
TENANT_A = "aaaaaaaa-0000-4000-8000-00000000000a"
TENANT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
TENANT_OTHER = "cccccccc-0000-4000-8000-00000000000c"
SEND = ["Notifications.Send"]


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalTokenIssuer]:
    with LocalTokenIssuer() as local:
        yield local


def _env(app_env: dict[str, str], issuer: LocalTokenIssuer, modes: str = "entra") -> dict[str, str]:
    return {
        **app_env,
        "CONNECTOR_AUTH": modes,
        "ENTRA_AUDIENCE": f"{AUDIENCE},{CLIENT_ID}",
        "ENTRA_ALLOWED_TENANTS": f"{TENANT_A},{TENANT_B}",
        "ENTRA_METADATA_URL": issuer.base_url + "/{tenantid}/v2.0/.well-known/openid-configuration",
    }


@pytest.fixture
def entra(app_env: dict[str, str], issuer: LocalTokenIssuer, connector: FakeConnector, make_user):  # type: ignore[no-untyped-def]
    with LiveApp(_env(app_env, issuer)) as app:
        for name, upn, tenant in (("Alice A", "alice@a.example", TENANT_A), ("Bob B", "bob@b.example", TENANT_B)):
            user = make_user(name, upn, tenant_id=tenant)
            assert app.activity(act.install(user, connector.service_url(tenant))).status_code == 200
        yield app


def _get(app: LiveApp, path: str, authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return app.api("GET", path, headers=headers)


ALICE = "/api/v1/recipients/alice@a.example"


# ---- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND), id="app role, v2"),
        pytest.param(
            lambda i: i.entra_auth_header(CLIENT_ID, TENANT_A, scp="User.Read Notifications.Send"), id="delegated scope"
        ),
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, version="1.0"), id="app role, v1"),
        pytest.param(
            lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, expires_in=-60), id="expired within skew"
        ),
    ],
)
def test_valid_token_is_accepted(
    entra: LiveApp, issuer: LocalTokenIssuer, make: Callable[[LocalTokenIssuer], str]
) -> None:
    response = _get(entra, ALICE, make(issuer))
    assert response.status_code == 200, response.text
    assert response.json()["upn"] == "alice@a.example"


# ---- refused ---------------------------------------------------------------------------------


def _alg_none(i: LocalTokenIssuer) -> str:
    claims = jwt.decode(i.entra_token(AUDIENCE, TENANT_A, roles=SEND), options={"verify_signature": False})
    return "Bearer " + jwt.encode(claims, key=None, algorithm="none", headers={"kid": i.entra_key.kid})


REFUSED_401: dict[str, Callable[[LocalTokenIssuer], str | None]] = {
    "missing": lambda i: None,
    "not bearer": lambda i: "Basic dXNlcjpwYXNz",
    "expired": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, expires_in=-900),
    "not yet valid": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, not_before=int(time.time()) + 900),
    "wrong audience": lambda i: i.entra_auth_header("api://another-api", TENANT_A, roles=SEND),
    "wrong issuer": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, issuer="https://evil.example/v2.0"),
    "issuer of another tenant": lambda i: i.entra_auth_header(
        AUDIENCE, TENANT_A, roles=SEND, issuer=entra_v2_issuer(TENANT_OTHER)
    ),
    "bad signature": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, sign_with_other_key=True),
    "unknown key id": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, kid="unknown-kid"),
    "tenant not allowed": lambda i: i.entra_auth_header(AUDIENCE, TENANT_OTHER, roles=SEND),
    "no tenant claim": lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, extra_claims={"tid": None}),
    "tenant id shaped like a path": lambda i: i.entra_auth_header(
        AUDIENCE, TENANT_A, roles=SEND, extra_claims={"tid": "../../evil"}
    ),
    "alg none": _alg_none,
    "malformed": lambda i: "Bearer a.b.c",
    "bot framework channel token": lambda i: i.bot_framework_auth_header(AUDIENCE, "https://smba.example/"),
}


@pytest.mark.parametrize("case", list(REFUSED_401))
def test_bad_token_is_401(entra: LiveApp, issuer: LocalTokenIssuer, case: str) -> None:
    response = _get(entra, ALICE, REFUSED_401[case](issuer))
    assert response.status_code == 401, response.text
    assert error_of(response)["code"] == "Unauthorized"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A), id="no roles"),
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=["Other.Role"]), id="other role"),
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, scp="User.Read"), id="other scope"),
        pytest.param(lambda i: i.entra_auth_header(AUDIENCE, TENANT_A, roles=["notifications.send"]), id="wrong case"),
    ],
)
def test_token_without_the_required_role_is_403(
    entra: LiveApp, issuer: LocalTokenIssuer, make: Callable[[LocalTokenIssuer], str]
) -> None:
    response = _get(entra, ALICE, make(issuer))
    assert response.status_code == 403, response.text
    assert "Notifications.Send" in error_of(response)["message"]


# ---- what a valid token may reach ------------------------------------------------------------


def test_token_reaches_only_its_own_tenant(entra: LiveApp, issuer: LocalTokenIssuer) -> None:
    header = issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=[*SEND, "Notifications.Admin"])
    bob = _get(entra, "/api/v1/recipients/bob@b.example", header)
    nobody = _get(entra, "/api/v1/recipients/nobody@b.example", header)
    assert bob.status_code == nobody.status_code == 404
    assert error_of(bob)["code"] == error_of(nobody)["code"] == "RecipientNotFound"
    listed = _get(entra, "/api/v1/recipients", header).json()["value"]
    assert [p["upn"] for p in listed] == ["alice@a.example"]
    sent = entra.api(
        "POST", "/api/v1/messages", headers={"Authorization": header}, json={"recipient": "bob@b.example", "text": "x"}
    )
    assert sent.status_code == 404, sent.text


def test_roles_map_to_scopes(entra: LiveApp, issuer: LocalTokenIssuer) -> None:
    broadcast = {"recipients": ["alice@a.example"], "text": "hello"}
    send_only = {"Authorization": issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND)}
    assert entra.api("POST", "/api/v1/broadcasts", headers=send_only, json=broadcast).status_code == 403
    assert entra.api("GET", "/api/v1/recipients", headers=send_only).status_code == 403
    with_broadcast = {
        "Authorization": issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=[*SEND, "Notifications.Broadcast"])
    }
    assert entra.api("POST", "/api/v1/broadcasts", headers=with_broadcast, json=broadcast).status_code == 200
    admin = {"Authorization": issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=[*SEND, "Notifications.Admin"])}
    assert entra.api("GET", "/api/v1/recipients", headers=admin).status_code == 200


def test_entra_only_mode_refuses_api_keys(entra: LiveApp) -> None:
    key = create_key(entra, "a-key", scopes=["admin"])
    response = entra.api("GET", ALICE, key)
    assert response.status_code == 401
    assert "Entra ID" in error_of(response)["message"]


def test_both_modes_accept_either(
    app_env: dict[str, str], issuer: LocalTokenIssuer, connector: FakeConnector, make_user
) -> None:
    with LiveApp(_env(app_env, issuer, "apikey,entra")) as app:
        user = make_user("Alice A", "alice@a.example", tenant_id=TENANT_A)
        assert app.activity(act.install(user, connector.service_url("a"))).status_code == 200
        key = create_key(app, "a-key")
        assert app.api("GET", ALICE, key).status_code == 200
        assert _get(app, ALICE, issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND)).status_code == 200
        assert (
            _get(app, ALICE, issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, expires_in=-900)).status_code
            == 401
        )


def test_unreachable_key_server_is_503_not_a_pass(app_env: dict[str, str], issuer: LocalTokenIssuer) -> None:
    env = {
        **_env(app_env, issuer),
        "ENTRA_METADATA_URL": "http://127.0.0.1:9/{tenantid}/v2.0/.well-known/openid-configuration",
    }
    with LiveApp(env) as app:
        response = _get(app, ALICE, issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]


def test_delegated_callers_of_one_client_app_are_different_callers(entra: LiveApp, issuer: LocalTokenIssuer) -> None:
    """Power Automate's connections all use the connector's one OAuth client: with delegated tokens, the
    signed-in user (oid) is the caller, so two makers' idempotency keys, rate buckets and triggers stay apart."""

    def header(oid: str) -> dict[str, str]:
        token = issuer.entra_auth_header(CLIENT_ID, TENANT_A, scp="Notifications.Send", object_id=oid)
        return {"Authorization": token}

    maker_1, maker_2 = header("0000aaaa-0000-4000-8000-000000000001"), header("0000aaaa-0000-4000-8000-000000000002")
    first = entra.api(
        "POST", "/api/v1/messages", headers=maker_1,
        json={"recipient": "alice@a.example", "text": "from maker 1", "idempotencyKey": "run-1", "wait": 0},
    )  # fmt: skip
    second = entra.api(
        "POST", "/api/v1/messages", headers=maker_2,
        json={"recipient": "alice@a.example", "text": "from maker 2", "idempotencyKey": "run-1", "wait": 0},
    )  # fmt: skip
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["id"] != second.json()["id"]
    # One maker's trigger is not the other's to remove (neither is an admin).
    hook = "https://prod-00.westeurope.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=x"
    made = entra.api("POST", "/api/v1/subscriptions/user-messages", headers=maker_1, json={"notificationUrl": hook})
    assert made.status_code == 201, made.text
    refused = entra.api("DELETE", f"/api/v1/subscriptions/{made.json()['id']}", headers=maker_2)
    assert refused.status_code == 404
    assert entra.api("DELETE", f"/api/v1/subscriptions/{made.json()['id']}", headers=maker_1).status_code == 204
