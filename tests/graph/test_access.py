"""Graph access: hosts per cloud, credentials (secret, certificate), token reuse, error shapes."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from teams_proactive.bot.graph.client import GraphClient, GraphError
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.graph.tokens import GraphTokens
from teams_proactive.bot.settings import BotSettings

from tests.graph.conftest import TENANT
from tests.support.fake_graph import FakeGraph, Fault, GraphUser


@pytest.mark.parametrize(
    ("cloud", "graph_url", "login_url"),
    [
        ("public", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
        ("gcc", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
        ("gcch", "https://graph.microsoft.us", "https://login.microsoftonline.us"),
        ("dod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
    ],
)
def test_hosts_follow_the_cloud(cloud: str, graph_url: str, login_url: str) -> None:
    settings = GraphSettings.from_env({"TEAMS_CLOUD": cloud})
    assert (settings.graph_url, settings.login_url) == (graph_url, login_url)
    assert settings.scope == f"{graph_url}/.default"
    overridden = GraphSettings.from_env({"TEAMS_CLOUD": cloud, "GRAPH_URL": "http://127.0.0.1:1/",
                                         "LOGIN_URL": "https://127.0.0.1:2"})  # fmt: skip
    assert (overridden.graph_url, overridden.login_url) == ("http://127.0.0.1:1", "https://127.0.0.1:2")


def test_the_bots_own_registration_is_the_default() -> None:
    env = {"MicrosoftAppId": "bot-app", "MicrosoftAppPassword": "bot-secret", "MicrosoftAppTenantId": "t1"}
    settings = GraphSettings.from_env(env)
    assert (settings.client_id, settings.client_secret, settings.home_tenant_id) == ("bot-app", "bot-secret", "t1")
    assert settings.configured and not settings.can_install
    assert "GRAPH_INSTALL" in (settings.install_refusal() or "")
    other = GraphSettings.from_env({**env, "GRAPH_CLIENT_ID": "graph-app", "GRAPH_CLIENT_SECRET": "graph-secret",
                                    "GRAPH_INSTALL": "true"})  # fmt: skip
    assert (other.client_id, other.client_secret) == ("graph-app", "graph-secret")
    assert "TEAMS_APP_ID" in (other.install_refusal() or "")
    msi = GraphSettings.from_env({"MicrosoftAppId": "msi-client", "MicrosoftAppType": "UserAssignedMSI"})
    assert msi.managed_identity and msi.configured
    assert "secret" not in repr(GraphSettings.from_env(env)).lower().replace("client_secret", "")
    with pytest.raises(ValueError, match="GRAPH_CERTIFICATE_PATH"):
        GraphSettings.from_env({**env, "GRAPH_CERTIFICATE_PATH": "/nonexistent.pem"})


def _certificate(directory: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "teams-proactive")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = directory / "graph-app.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert_pem
    )
    return path, cert_pem


async def _get_user(settings: GraphSettings, who: str) -> tuple[dict | None, GraphClient]:
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, settings)
        try:
            return await client.get_user(TENANT, who), client
        finally:
            await client.close()


def test_a_certificate_signs_the_token_request(graph: FakeGraph, tmp_path: Path) -> None:
    path, cert_pem = _certificate(tmp_path)
    graph.trusted_certificate = cert_pem
    adele = graph.add_user(TENANT, GraphUser("Adele Vance", "adele@contoso.example"))
    env = {**graph.env(), "GRAPH_CLIENT_SECRET": "", "GRAPH_CERTIFICATE_PATH": str(path)}
    user, _ = asyncio.run(_get_user(GraphSettings.from_env(env, BotSettings.from_env({})), adele.upn))
    assert user is not None and user["id"] == adele.id
    (request,) = graph.token_requests
    assert request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    # A different certificate is refused by the authority, and the caller hears why.
    graph.trusted_certificate = _certificate(tmp_path / "..")[1]
    with pytest.raises(GraphError) as refused:
        asyncio.run(_get_user(GraphSettings.from_env(env, BotSettings.from_env({})), adele.upn))
    assert refused.value.status == 401 and refused.value.code == "invalid_client"


def test_errors_carry_graphs_codes_and_unknown_people_are_none(graph: FakeGraph) -> None:
    settings = GraphSettings.from_env(graph.env(), BotSettings.from_env({}))
    user, _ = asyncio.run(_get_user(settings, "nobody@contoso.example"))
    assert user is None
    graph.fail_next(r"^GET /v1.0/users/", Fault(403, "Authorization_RequestDenied",
                                                "Insufficient privileges to complete the operation."))  # fmt: skip
    with pytest.raises(GraphError) as denied:
        asyncio.run(_get_user(settings, "adele@contoso.example"))
    assert (denied.value.status, denied.value.code) == (403, "Authorization_RequestDenied")
    wrong = GraphSettings.from_env({**graph.env(), "GRAPH_CLIENT_SECRET": "wrong"}, BotSettings.from_env({}))
    with pytest.raises(GraphError) as unauthorized:
        asyncio.run(_get_user(wrong, "adele@contoso.example"))
    assert unauthorized.value.status == 401 and "AADSTS7000215" in unauthorized.value.message


def test_a_managed_identity_gets_graph_tokens_through_azure_identity(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    # azure-identity reads App Service's managed identity endpoint from the process environment.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{graph.graph_url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", graph.identity_header)
    adele = graph.add_user(TENANT, GraphUser("Adele Vance", "adele@contoso.example"))
    env = {"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppId": "msi-client-id", "MicrosoftAppTenantId": TENANT,
           "GRAPH_URL": graph.graph_url}  # fmt: skip
    settings = GraphSettings.from_env(env, BotSettings.from_env(env))
    assert settings.managed_identity
    user, _ = asyncio.run(_get_user(settings, adele.upn))
    assert user is not None and user["id"] == adele.id
    (asked,) = graph.identity_requests
    assert asked["resource"] == graph.graph_url and asked.get("client_id") == "msi-client-id"
    assert graph.token_requests == []  # no client secret flow


def test_a_refused_cached_token_is_forgotten_and_asked_for_once_more(graph: FakeGraph) -> None:
    adele = graph.add_user(TENANT, GraphUser("Adele Vance", "adele@contoso.example"))
    settings = GraphSettings.from_env(graph.env(), BotSettings.from_env({}))

    async def twice() -> tuple[Any, Any]:
        async with aiohttp.ClientSession() as session:
            client = GraphClient(session, settings)
            first = await client.get_user(TENANT, adele.upn)
            graph.revoke_tokens()  # Graph stops accepting the token the client has cached
            second = await client.get_user(TENANT, adele.upn)
            await client.close()
            return first, second

    first, second = asyncio.run(twice())
    assert first["id"] == second["id"] == adele.id
    assert len(graph.token_requests) == 2  # one new token, not one per call
    statuses = [c.tenant is not None for c in graph.calls]
    assert statuses == [True, False, True]  # accepted, refused (401), accepted with the new token


def test_a_retry_after_longer_than_30_seconds_goes_back_to_the_outbox(graph: FakeGraph) -> None:
    adele = graph.add_user(TENANT, GraphUser("Adele Vance", "adele@contoso.example"))
    settings = GraphSettings.from_env(graph.env(), BotSettings.from_env({}))
    graph.fail_next(r"^GET /v1.0/users/", Fault(429, "TooManyRequests", "Too many requests", retry_after=120))

    async def once() -> GraphError:
        async with aiohttp.ClientSession() as session:
            client = GraphClient(session, settings)
            try:
                await client.get_user(TENANT, adele.upn)
            except GraphError as exc:
                return exc
            finally:
                await client.close()
        raise AssertionError("Graph's 429 was not handed back")

    error = asyncio.run(once())
    # Handed back at once, retryable, with Graph's own wait: the dispatcher reschedules the delivery.
    assert (error.status, error.retryable, error.retry_after) == (429, True, 120.0)
    assert len(graph.calls_matching(r"^GET /v1.0/users/")) == 1


def test_the_product_asks_entra_id_for_graphs_default_scope(graph: FakeGraph) -> None:
    """Without GRAPH_URL, the token is asked for https://graph.microsoft.com/.default, on the wire."""
    env = {k: v for k, v in graph.env().items() if k != "GRAPH_URL"}
    settings = GraphSettings.from_env(env, BotSettings.from_env({}))
    token = asyncio.run(GraphTokens(settings).token(TENANT))
    assert token.startswith("graph-token-")
    (request,) = graph.token_requests
    assert request["scope"] == "https://graph.microsoft.com/.default"
    assert request["grant_type"] == "client_credentials" and request["client_id"] == graph.CLIENT_ID
