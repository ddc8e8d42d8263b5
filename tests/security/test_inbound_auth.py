"""Inbound bot auth: with MicrosoftAppId set, /api/messages takes only valid Bot Framework tokens.

Tokens are signed with a locally generated key; the OpenID metadata and keys are served by
``LocalTokenIssuer`` and the SDK reads them through its own ``BotOpenIdMetadata`` override, so the
production validation code runs unchanged. Every cell of the matrix (app type x token) is a test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from botframework.connector.auth import ChannelValidation
from cryptography.hazmat.primitives import serialization

from tests.conftest import API_KEY
from tests.security.conftest import all_references
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.token_issuer import LocalTokenIssuer

APP_ID = "7f1d6a52-3c1e-4a0b-9d55-0e4b9a1c2f10"
BOT_TENANT = "5b2c8e61-1d0a-4c6e-8f3b-2a9d7c4e1b00"

APP_TYPES: dict[str, dict[str, str]] = {
    "MultiTenant": {"MicrosoftAppType": "MultiTenant", "MicrosoftAppPassword": "unused-test-secret"},
    "SingleTenant": {
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppPassword": "unused-test-secret",
        "MicrosoftAppTenantId": BOT_TENANT,
    },
    "UserAssignedMSI": {"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppTenantId": BOT_TENANT},
}


@pytest.fixture(scope="module")
def issuer(local_ca_trusted: None) -> Iterator[LocalTokenIssuer]:
    # BOT_OPENID_METADATA_URL must be https: the issuer serves with the test run's own CA.
    with LocalTokenIssuer(tls=True) as local:
        yield local


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeConnector]:
    with FakeConnector() as connector:
        yield connector


@pytest.fixture(scope="module", params=sorted(APP_TYPES))
def bot_app(
    request: pytest.FixtureRequest, issuer: LocalTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    path: Path = tmp_path_factory.mktemp(f"inbound-{request.param}")
    env = {
        "STORE_URL": f"sqlite:///{path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "MicrosoftAppId": APP_ID,
        "BotOpenIdMetadata": issuer.bot_framework_metadata_url,
        **APP_TYPES[request.param],
    }
    try:
        with LiveApp(env) as app:
            yield app
    finally:
        # The SDK's override is process-wide; later tests must see the production default again.
        ChannelValidation.open_id_metadata_endpoint = None


def _probe(fake: FakeConnector, channel_id: str = "msteams") -> tuple[act.TeamsUser, dict[str, Any]]:
    # An uninstall is recorded (status "uninstalled") and answered without any outbound call, so a
    # stored record proves the turn ran, and no Entra token is needed to answer it offline.
    user = act.TeamsUser(name="Megan Bowen", upn="megan@contoso.example")
    activity = act.uninstall(user, fake.service_url("inbound"))
    activity["channelId"] = channel_id
    return user, activity


def _stored(app: LiveApp, user: act.TeamsUser) -> int:
    return len(app.runtime.call(app.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower())))


def _post(app: LiveApp, activity: dict[str, Any], authorization: str | None) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return app.activity(activity, headers=headers)


def test_valid_token_is_accepted_and_the_activity_recorded(
    bot_app: LiveApp, issuer: LocalTokenIssuer, fake: FakeConnector
) -> None:
    user, activity = _probe(fake)
    header = issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"])
    response = _post(bot_app, activity, header)
    assert response.status_code == 200, response.text
    assert _stored(bot_app, user) == 1


def _alg_none(issuer: LocalTokenIssuer, service_url: str) -> str:
    claims = jwt.decode(issuer.bot_framework_token(APP_ID, service_url), options={"verify_signature": False})
    return "Bearer " + jwt.encode(claims, key=None, algorithm="none", headers={"kid": issuer.bot_framework_key.kid})


def _hs256_with_public_key(issuer: LocalTokenIssuer, service_url: str) -> str:
    # The classic algorithm-confusion forgery: an HMAC "signed" with the served public key as secret.
    public = issuer.bot_framework_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(issuer.bot_framework_token(APP_ID, service_url), options={"verify_signature": False})
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.bot_framework_key.kid}
    signing_input = b".".join(_b64(json.dumps(part).encode()) for part in (header, claims))
    signature = hmac.new(public, signing_input, hashlib.sha256).digest()
    return "Bearer " + (signing_input + b"." + _b64(signature)).decode()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# name -> (how to build the Authorization header from the issuer and the activity's service URL, channel)
REFUSED: dict[str, Callable[[LocalTokenIssuer, str], str | None]] = {
    "missing": lambda i, url: None,
    "empty": lambda i, url: "",
    "expired": lambda i, url: i.bot_framework_auth_header(APP_ID, url, expires_in=-900),
    "not yet valid": lambda i, url: i.bot_framework_auth_header(
        APP_ID, url, not_before=int(time.time()) + 900, expires_in=3600
    ),
    "wrong audience": lambda i, url: i.bot_framework_auth_header(APP_ID, url, audience="another-bot-app-id"),
    "wrong issuer": lambda i, url: i.bot_framework_auth_header(APP_ID, url, issuer="https://evil.example"),
    "tenant-issued token": lambda i, url: i.entra_auth_header(APP_ID, BOT_TENANT, roles=["anything"]),
    "bad signature": lambda i, url: i.bot_framework_auth_header(APP_ID, url, sign_with_other_key=True),
    "serviceUrl claim mismatch": lambda i, url: i.bot_framework_auth_header(APP_ID, "https://smba.evil.example/"),
    "serviceUrl claim missing": lambda i, url: i.bot_framework_auth_header(APP_ID, None),
    "unknown key id": lambda i, url: i.bot_framework_auth_header(APP_ID, url, kid="not-a-served-kid"),
    "malformed token": lambda i, url: "Bearer not.a.jwt",
    "basic scheme": lambda i, url: "Basic dXNlcjpwYXNzd29yZA==",
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_token_is_refused_with_401_and_nothing_stored(
    bot_app: LiveApp, issuer: LocalTokenIssuer, fake: FakeConnector, case: str
) -> None:
    user, activity = _probe(fake)
    before = len(fake.received)
    response = _post(bot_app, activity, REFUSED[case](issuer, activity["serviceUrl"]))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "Unauthorized"
    assert _stored(bot_app, user) == 0
    assert len(fake.received) == before  # the bot did not answer either


def test_channel_not_endorsed_by_the_signing_key_is_refused(
    bot_app: LiveApp, issuer: LocalTokenIssuer, fake: FakeConnector
) -> None:
    user, activity = _probe(fake, channel_id="slack")
    response = _post(bot_app, activity, issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"]))
    assert response.status_code == 401, response.text
    assert _stored(bot_app, user) == 0


def test_a_token_for_one_activity_cannot_carry_another_service_url(
    bot_app: LiveApp, issuer: LocalTokenIssuer, fake: FakeConnector
) -> None:
    # A valid token replayed with the serviceUrl pointed elsewhere (where the bot would then send).
    user, activity = _probe(fake)
    header = issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"])
    activity["serviceUrl"] = "https://attacker.example/"
    response = _post(bot_app, activity, header)
    assert response.status_code == 401, response.text
    assert _stored(bot_app, user) == 0
    assert not [r for r in all_references(bot_app) if "attacker" in r.service_url]
