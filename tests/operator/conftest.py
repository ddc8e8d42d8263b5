"""Fixtures for the operator tests: the CLI's environment, users installed through the real app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

# Settings the CLI would otherwise pick up from the machine running the tests.
CLEARED = (
    "MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppType", "MicrosoftAppTenantId", "STORE_URL",
    "COSMOS_ENDPOINT", "COSMOS_KEY", "CONNECTOR_API_KEY", "CONNECTOR_AUTH", "PUBLIC_BASE_URL", "SECRET_KEY",
    "METRICS_TOKEN", "TEAMS_PROACTIVE_API_KEY", "PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT", "BOT_NAME",
    "LOCAL_MODE", "TRUSTED_PROXY_HOPS", "CALLBACK_ALLOWED_NETWORKS", "MAX_SUBSCRIPTIONS_PER_KEY",
)  # fmt: skip


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app_env: dict[str, str]) -> dict[str, str]:
    """The CLI runs in an empty folder (no .env) with the same store as the ``live`` app."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "cli"
    work.mkdir()
    monkeypatch.chdir(work)
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    return app_env


@pytest.fixture
def installed(live: LiveApp, connector: FakeConnector, make_user) -> Callable[..., act.TeamsUser]:  # type: ignore[no-untyped-def]
    """A user who installed the app (through /api/messages, as Teams does)."""

    def install(name: str, upn: str, **kwargs: object) -> act.TeamsUser:
        user = make_user(name=name, upn=upn, **kwargs)
        response = live.activity(act.install(user, connector.service_url("a")))
        assert response.status_code == 200, response.text
        return user

    return install
