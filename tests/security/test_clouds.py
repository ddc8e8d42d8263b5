"""TEAMS_CLOUD end to end: each cloud takes its own channel's tokens, refuses the others', and replies in its cloud.

Tokens are signed by a local issuer (``LocalTokenIssuer``); ``BotOpenIdMetadata`` points every cloud's
key lookup at it, so what tells the clouds apart is exactly what tells them apart in production: the
token's issuer (``https://api.botframework.com`` for the public cloud and GCC, ``https://api.botframework.us``
for GCC High and DoD, Microsoft Learn "Configure Bot Framework bots for US Government customers"), and
the sign-in and audience the bot uses to answer. GCC runs on the commercial Bot Framework, so it shares
the public cloud's issuer; GCC High and DoD share the government one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botframework.connector.auth import (
    ClaimsIdentity,
)
from teams_proactive.bot.clouds import CLOUDS
from teams_proactive.bot.settings import BotSettings

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.token_issuer import LocalTokenIssuer

APP_ID = "3c9e2f14-6b7a-4d80-9e1f-2a3b4c5d6e7f"
ISSUERS = {"public": "https://api.botframework.com", "government": "https://api.botframework.us"}


@pytest.fixture(scope="module")
def issuer(local_ca_trusted: None) -> Iterator[LocalTokenIssuer]:
    # BOT_OPENID_METADATA_URL must be https: the issuer serves with the test run's own CA.
    with LocalTokenIssuer(tls=True) as local:
        yield local


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeConnector]:
    with FakeConnector() as connector:
        yield connector


@pytest.fixture(scope="module", params=sorted(CLOUDS))
def cloud_app(
    request: pytest.FixtureRequest, issuer: LocalTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LiveApp]]:
    path: Path = tmp_path_factory.mktemp(f"cloud-{request.param}")
    env = {
        "STORE_URL": f"sqlite:///{path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": "unused-test-secret",
        "TEAMS_CLOUD": request.param,
        "BotOpenIdMetadata": issuer.bot_framework_metadata_url,
    }
    with LiveApp(env) as app:
        yield request.param, app


def _uninstall_probe(fake: FakeConnector) -> tuple[act.TeamsUser, dict[str, Any]]:
    # An uninstall is recorded without any outbound call: a stored record proves the turn ran.
    user = act.TeamsUser(name="Adele Vance", upn="adele@contoso.example")
    return user, act.uninstall(user, fake.service_url("cloud"))


@pytest.mark.parametrize("family", sorted(ISSUERS))
def test_each_cloud_accepts_its_own_channel_tokens_and_refuses_the_others(
    cloud_app: tuple[str, LiveApp], family: str, issuer: LocalTokenIssuer, fake: FakeConnector
) -> None:
    cloud_name, app = cloud_app
    user, activity = _uninstall_probe(fake)
    header = issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"], issuer=ISSUERS[family])
    response = app.activity(activity, headers={"Authorization": header})
    own = CLOUDS[cloud_name].token_issuer == ISSUERS[family]
    stored = app.runtime.call(app.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower()))
    if own:
        assert response.status_code == 200, response.text
        assert len(stored) == 1
    else:
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "Unauthorized"
        assert stored == []


def test_the_sdk_replies_sign_in_to_the_configured_cloud(cloud_app: tuple[str, LiveApp], fake: FakeConnector) -> None:
    # The SDK's own replies (welcome, help) are sent with the credentials of the connector it builds per
    # turn: for GCC High and DoD those must be government credentials for https://api.botframework.us.
    cloud_name, app = cloud_app
    cloud = CLOUDS[cloud_name]
    authentication = app.runtime.endpoint.authentication
    assert authentication.get_originating_audience() == cloud.to_channel_scope
    claims = ClaimsIdentity({"aud": APP_ID, "iss": cloud.token_issuer}, True)
    factory = authentication.create_connector_factory(claims)
    client = app.runtime.call(factory.create(fake.service_url("cloud"), cloud.to_channel_scope))
    credentials = client.config.credentials
    # The same token provider as proactive sends (one token per lifetime), signing in to this cloud.
    assert credentials._provider is app.runtime.tokens
    assert credentials.oauth_scope == cloud.to_channel_scope
    assert credentials.oauth_endpoint == app.runtime.settings.bot_login_url
    assert credentials.oauth_endpoint.startswith(cloud.login_url)


@pytest.mark.parametrize("name", sorted(CLOUDS))
def test_every_endpoint_follows_the_cloud(name: str) -> None:
    settings = BotSettings.from_env({"TEAMS_CLOUD": name, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x"})
    cloud = settings.cloud
    government = name in {"gcch", "dod"}
    top_level = ".us" if government else ".com"
    for url in (cloud.token_issuer, cloud.to_channel_scope, cloud.graph_url, cloud.login_url):
        assert url.endswith(top_level), (name, url)
    assert ("azure.us" in cloud.openid_metadata_url) is government
    assert ("login.microsoftonline.us" in cloud.to_channel_login_url) is government
    assert settings.cloud_service_url == cloud.global_service_url
    assert {"public": "trafficmanager", "gcc": ".gcc.", "gcch": ".gov.", "dod": ".dod."}[
        name
    ] in cloud.global_service_url
    # The bot's outbound token for proactive sends is asked for in the same cloud.
    from teams_proactive.bot.bot_tokens import BotTokenProvider

    provider = BotTokenProvider(settings)
    tenant = "MicrosoftServices.onmicrosoft.us" if government else "botframework.com"
    assert (provider.scope, provider.authority) == (cloud.to_channel_scope, f"{cloud.login_url}/{tenant}")


def test_an_unknown_cloud_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="public, gcc, gcch, dod"):
        BotSettings.from_env({"TEAMS_CLOUD": "china"})


def test_connector_entra_tokens_are_checked_in_the_clouds_sign_in_host() -> None:
    from teams_proactive.connector.entra import metadata_url
    from teams_proactive.connector.settings import ConnectorSettings

    tenant = "9f8e7d6c-5b4a-4321-8fed-cba987654321"
    for name, host in {"public": "login.microsoftonline.com", "gcch": "login.microsoftonline.us"}.items():
        settings = ConnectorSettings.from_env({"TEAMS_CLOUD": name})
        assert metadata_url(settings, tenant, "2.0") == (
            f"https://{host}/{tenant}/v2.0/.well-known/openid-configuration"
        )
