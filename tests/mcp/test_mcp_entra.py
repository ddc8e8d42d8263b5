"""POST /mcp with Entra ID bearer tokens: the REST API's validation, tenant limit and permissions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.client.session import ClientSession

from tests.mcp.support import with_session
from tests.security.test_entra_auth import AUDIENCE, SEND, TENANT_A, TENANT_B, _env
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.token_issuer import LocalTokenIssuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalTokenIssuer]:
    with LocalTokenIssuer() as local:
        yield local


@pytest.fixture
def entra(app_env: dict[str, str], issuer: LocalTokenIssuer, connector: FakeConnector, make_user):  # type: ignore[no-untyped-def]
    with LiveApp(_env(app_env, issuer)) as app:
        for name, upn, tenant in (("Alice A", "alice@a.example", TENANT_A), ("Bob B", "bob@b.example", TENANT_B)):
            user = make_user(name, upn, tenant_id=tenant)
            assert app.activity(act.install(user, connector.service_url(tenant))).status_code == 200
        yield app


async def look_up_both(session: ClientSession) -> Any:
    return (
        await session.call_tool("get_recipient", {"recipient": "alice@a.example"}),
        await session.call_tool("get_recipient", {"recipient": "bob@b.example"}),
        await session.call_tool("start_broadcast", {"recipients": ["alice@a.example"], "text": "all"}),
    )


def test_a_token_reaches_only_its_own_tenant(entra: LiveApp, issuer: LocalTokenIssuer) -> None:
    token = issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND)
    alice, bob, broadcast = with_session(entra.url, None, look_up_both, {"Authorization": token})
    assert alice.is_error is False and alice.structured_content["tenantId"] == TENANT_A
    assert bob.is_error is True and bob.structured_content["error"]["code"] == "RecipientNotFound"
    # Notifications.Send alone grants the send permission, not broadcast (as in the REST API).
    assert broadcast.is_error is True and broadcast.structured_content["error"]["code"] == "Forbidden"


def test_a_bad_token_is_refused_with_the_reason(entra: LiveApp, issuer: LocalTokenIssuer) -> None:
    expired = issuer.entra_auth_header(AUDIENCE, TENANT_A, roles=SEND, expires_in=-900)
    with pytest.raises(BaseException) as raised:
        with_session(entra.url, None, look_up_both, {"Authorization": expired})
    assert "bearer token is not valid" in repr(raised.value)
    response = entra.http.post(
        entra.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": expired, "Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.json()["error"]["data"]["code"] == "Unauthorized"
