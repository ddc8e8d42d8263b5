"""The service as deployed, signed both ways: a SingleTenant identity, inbound tokens checked against keys fetched
over TLS, outbound tokens asked for at a local Entra authority, and a Bot Connector that refuses anything else.

``LocalTokenIssuer(tls=True)`` is the Bot Framework's OpenID endpoint (BOT_OPENID_METADATA_URL) and Entra ID
(LOGIN_URL) at once; its certificate comes from the test run's own CA, which the service trusts through
SSL_CERT_FILE (aiohttp, urllib) and REQUESTS_CA_BUNDLE (requests, msal). ``teams-proactive serve`` runs as a
child process, as App Service runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member
from tests.support.local_ca import trust_env
from tests.support.server_process import ServerProcess
from tests.support.token_issuer import LocalTokenIssuer

APP_ID = "5d2b9a31-7c4e-4f08-9b6a-0e1f2a3b4c5d"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SECRET = "signed-suite-secret-value"
API_KEY = "signed-suite-bootstrap-key-0123456789"


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``check`` until it returns something truthy (a deadline, not a sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.05)


@pytest.fixture
def issuer() -> Iterator[LocalTokenIssuer]:
    with LocalTokenIssuer(tls=True) as local:
        local.register_app(APP_ID, TENANT, secret=SECRET)
        yield local


@pytest.fixture
def fake(issuer: LocalTokenIssuer) -> Iterator[FakeConnector]:
    with FakeConnector(authorize=issuer.accepts_bot_connector_token) as connector:
        yield connector


def signed_env(issuer: LocalTokenIssuer, folder: Path, **extra: str) -> dict[str, str]:
    return {
        "STORE_URL": f"sqlite:///{folder / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": SECRET,
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppTenantId": TENANT,
        "LOGIN_URL": issuer.base_url,
        "BOT_OPENID_METADATA_URL": issuer.bot_framework_metadata_url,
        **trust_env(),
        **extra,
    }


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], ServerProcess]]:
    started: list[ServerProcess] = []

    def start(env: dict[str, str]) -> ServerProcess:
        server = ServerProcess(env, log_path=tmp_path / f"server-{len(started)}.log", threads=8)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(issuer: LocalTokenIssuer, fake: FakeConnector, tmp_path: Path, start_server) -> ServerProcess:  # type: ignore[no-untyped-def]
    return start_server(signed_env(issuer, tmp_path))


@pytest.fixture
def person(fake: FakeConnector) -> Callable[..., act.TeamsUser]:
    def make(name: str = "Adele Vance", upn: str = "adele@contoso.example") -> act.TeamsUser:
        user = act.TeamsUser(name=name, upn=upn, tenant_id=TENANT)
        fake.add_member(Member(user.user_id, name, user.aad_object_id, upn, upn, TENANT))
        return user

    return make


def post_activity(server: ServerProcess, activity: dict[str, Any], authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return server.http.post(server.url + "/api/messages", json=activity, headers=headers, timeout=60)


def api(server: ServerProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    return server.http.request(method, server.url + path, headers={"X-API-Key": API_KEY}, timeout=60, **kwargs)


def signed(issuer: LocalTokenIssuer, activity: dict[str, Any], **kwargs: Any) -> str:
    """The header the Bot Framework channel sends with ``activity``: issuer, audience = app id, serviceurl."""
    return issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"], **kwargs)
