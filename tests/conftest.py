"""Shared fixtures: a fake Bot Connector, the real app over real HTTP, Teams users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.activities import TeamsUser
from tests.support.fake_connector import FakeConnector, Member
from tests.support.live_app import LiveApp
from tests.support.local_ca import trust_env

API_KEY = "test-bootstrap-key-0123456789"


@pytest.fixture(scope="module")
def local_ca_trusted() -> Iterator[None]:
    """This process trusts the test run's own CA (and only it) for TLS: signing keys, sign-in, Graph."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in trust_env().items():
            patch.setenv(name, value)
        yield


@pytest.fixture
def connector() -> Iterator[FakeConnector]:
    with FakeConnector() as fake:
        yield fake


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    return {
        "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "SEND_RATE_PER_TENANT": "200",
        # The tests' callback servers listen on plain http://127.0.0.1: allowed as an operator would.
        "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }


@pytest.fixture
def live(app_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp(app_env) as app:
        yield app


@pytest.fixture
def make_user(connector: FakeConnector):  # type: ignore[no-untyped-def]
    def make(name: str = "Adele Vance", upn: str = "adele@contoso.example", **kwargs: object) -> TeamsUser:
        user = TeamsUser(name=name, upn=upn, **kwargs)  # type: ignore[arg-type]
        connector.add_member(Member(user.user_id, name, user.aad_object_id, upn, upn, user.tenant_id))
        return user

    return make
