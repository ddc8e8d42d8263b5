"""Signed end to end: the real service, a real token in both directions, and a Bot Connector that answers 401
to anything unsigned. The last tests show the suite fails when either direction's token is missing or wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import requests

from tests.signed.conftest import (
    APP_ID,
    TENANT,
    api,
    eventually,
    post_activity,
    signed,
    signed_env,
)
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.server_process import ServerProcess
from tests.support.token_issuer import BOT_CONNECTOR_AUDIENCE, LocalTokenIssuer

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Coming to the all-hands?"}],
    "actions": [{"type": "Action.Submit", "title": "Yes", "data": {"answer": "yes"}}],
}


def _install(server: ServerProcess, issuer: LocalTokenIssuer, fake: FakeConnector, user: act.TeamsUser) -> None:
    activity = act.install(user, fake.service_url("emea"))
    answer = post_activity(server, activity, signed(issuer, activity))
    assert answer.status_code == 200, answer.text
    # Teams' welcome goes out from inside the turn (the SDK's own reply path), signed as well.
    eventually(lambda: fake.sent(user.conversation_id), what="the welcome message")


def _bot_tokens(issuer: LocalTokenIssuer) -> list[tuple[str, dict[str, str], int]]:
    """The bot's token requests for the Bot Connector (Graph's, for the same registration, are others)."""
    return [
        r for r in issuer.token_requests if r[0] == TENANT and r[1].get("scope", "").startswith(BOT_CONNECTOR_AUDIENCE)
    ]


def _claims(authorization: str | None) -> dict[str, Any]:
    assert authorization is not None and authorization.startswith("Bearer ")
    return dict(jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False}))


def test_install_send_card_answer_broadcast_and_recall_all_signed(
    server: ServerProcess, issuer: LocalTokenIssuer, fake: FakeConnector, person, tmp_path: Path
) -> None:
    cast = [person(n, f"{n.lower()}@contoso.example") for n in ("Ana", "Ben", "Cho")]
    for user in cast:
        _install(server, issuer, fake, user)

    sent = api(server, "POST", "/api/v1/messages", json={"recipient": cast[0].upn, "text": "Ticket 42 is yours"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "delivered"

    started = api(server, "POST", "/api/v1/broadcasts",
                  json={"recipients": [u.upn for u in cast], "text": "All-hands", "card": CARD})  # fmt: skip
    assert started.status_code in (200, 202), started.text
    broadcast_id = started.json()["id"]

    def report() -> dict[str, Any] | None:
        body = api(server, "GET", f"/api/v1/broadcasts/{broadcast_id}").json()
        return body if body["status"] == "completed" else None

    assert eventually(report, what="the broadcast")["counts"]["delivered"] == 3
    (card,) = [r for r in fake.sent(cast[1].conversation_id) if r.activity.get("text") == "All-hands"]
    answer = act.card_submit(cast[1], fake.service_url("emea"), {"answer": "yes"})
    answer["replyToId"] = card.activity_id
    assert post_activity(server, answer, signed(issuer, answer)).status_code == 200
    assert eventually(lambda: report() and report()["counts"]["answered"] == 1, what="the card answer")

    recall = api(server, "DELETE", f"/api/v1/broadcasts/{broadcast_id}")
    assert recall.status_code in (200, 202), recall.text
    eventually(lambda: (r := report()) and r["recall"]["status"] == "completed", what="the recall")
    assert {r.activity_id for r in fake.changes("DELETE")} == {
        r.activity_id for u in cast for r in fake.sent(u.conversation_id) if r.activity.get("text") == "All-hands"
    }

    # Every call the Bot Connector saw carried the bot's token: for api.botframework.com, from its own tenant.
    assert fake.unauthorized == []
    assert len(fake.received) == 3 + 1 + 3 + 3  # welcomes, the send, the broadcast, the recall
    for call in fake.sent():
        claims = _claims(call.authorization)
        assert (claims["aud"], claims["appid"], claims["tid"]) == (BOT_CONNECTOR_AUDIENCE, APP_ID, TENANT)
    # One token for the whole lifetime, shared by the SDK's replies and proactive sends.
    (request,) = _bot_tokens(issuer)
    assert request[1]["scope"] == "https://api.botframework.com/.default"
    assert request[1]["client_id"] == APP_ID and request[2] == 200
    # The inbound keys came from the configured OpenID endpoint, over TLS.
    assert "/v1/.well-known/openidconfiguration" in issuer.requests and "/v1/.well-known/keys" in issuer.requests


def test_a_token_the_connector_refuses_is_asked_for_again_once(
    server: ServerProcess, issuer: LocalTokenIssuer, fake: FakeConnector, person
) -> None:
    user = person()
    _install(server, issuer, fake, user)
    assert len(_bot_tokens(issuer)) == 1
    issuer.revoke_issued()  # the secret was rotated: the token the service holds is no longer accepted
    sent = api(server, "POST", "/api/v1/messages", json={"recipient": user.upn, "text": "after rotation"})
    assert sent.status_code == 200 and sent.json()["status"] == "delivered", sent.text
    assert len(fake.unauthorized) == 1  # the refused call
    assert len(_bot_tokens(issuer)) == 2  # and one new token, not one per call
    assert fake.sent(user.conversation_id)[-1].activity["text"] == "after rotation"


def test_a_managed_identity_gets_its_token_from_app_services_identity_endpoint(
    issuer: LocalTokenIssuer, fake: FakeConnector, person, tmp_path: Path, start_server
) -> None:
    issuer.register_app(APP_ID, TENANT, managed_identity=True)
    env = signed_env(issuer, tmp_path, MicrosoftAppType="UserAssignedMSI", MicrosoftAppPassword="",
                     IDENTITY_ENDPOINT=issuer.identity_endpoint, IDENTITY_HEADER=issuer.identity_header)  # fmt: skip
    server = start_server(env)
    user = person()
    _install(server, issuer, fake, user)
    sent = api(server, "POST", "/api/v1/messages", json={"recipient": user.upn, "text": "from a managed identity"})
    assert sent.status_code == 200 and sent.json()["status"] == "delivered", sent.text
    (request,) = [r for r in issuer.token_requests if r[0] == "msi"]
    assert request[1]["resource"] == BOT_CONNECTOR_AUDIENCE and request[1]["client_id"] == APP_ID
    assert request[2] == 200 and not _bot_tokens(issuer)  # no secret-based sign-in happened
    assert fake.unauthorized == []


# ---- the same suite, failing as it must --------------------------------------------------------------


def test_the_connector_refuses_a_call_without_the_bots_token(fake: FakeConnector, person) -> None:
    user = person()
    url = fake.service_url("emea") + f"v3/conversations/{user.conversation_id}/activities"
    anonymous = requests.post(url, json={"type": "message", "text": "hi"}, timeout=10)
    assert anonymous.status_code == 401
    foreign = LocalTokenIssuer().entra_token(BOT_CONNECTOR_AUDIENCE, TENANT, client_app_id=APP_ID)
    forged = requests.post(url, json={"type": "message", "text": "hi"}, timeout=10,
                           headers={"Authorization": f"Bearer {foreign}"})  # fmt: skip
    assert forged.status_code == 401
    assert len(fake.unauthorized) == 2 and fake.sent() == []


def test_without_a_token_from_the_authority_nothing_reaches_teams(
    issuer: LocalTokenIssuer, fake: FakeConnector, person, tmp_path: Path, start_server
) -> None:
    server = start_server(signed_env(issuer, tmp_path, MicrosoftAppPassword="not-the-secret"))
    user = person()
    activity = act.install(user, fake.service_url("emea"))
    assert post_activity(server, activity, signed(issuer, activity)).status_code == 200
    # By object id: without a token even the member lookup that learns the UPN never happens.
    sent = api(server, "POST", "/api/v1/messages", json={"recipient": user.aad_object_id, "text": "hi"})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "failed" and body["error"]["code"] == "BotUnauthorized"
    assert fake.received == [] and fake.member_lookups == 0  # no call went out unsigned
    assert {status for _, _, status in _bot_tokens(issuer)} == {401}


def test_an_inbound_activity_with_a_wrong_signature_is_refused_and_changes_nothing(
    server: ServerProcess, issuer: LocalTokenIssuer, fake: FakeConnector, person
) -> None:
    user = person()
    activity = act.install(user, fake.service_url("emea"))
    for header in (
        None,
        signed(issuer, activity, sign_with_other_key=True),
        signed(issuer, activity, audience="some-other-bot"),
        signed(issuer, {"serviceUrl": "https://smba.evil.example/"}),
    ):
        assert post_activity(server, activity, header).status_code == 401
    recipient = api(server, "GET", f"/api/v1/recipients/{user.aad_object_id}")
    assert recipient.status_code == 404 and recipient.json()["error"]["code"] == "RecipientNotFound"
    assert fake.received == [] and _bot_tokens(issuer) == []


def test_a_certificate_credential_signs_the_token_request(
    issuer: LocalTokenIssuer, fake: FakeConnector, person, tmp_path: Path, start_server
) -> None:
    from tests.support.local_ca import self_signed_client_certificate

    pem = self_signed_client_certificate(tmp_path, "bot")
    issuer.register_app(APP_ID, TENANT, certificate_pem=pem.read_bytes())  # the certificate, no secret
    server = start_server(signed_env(issuer, tmp_path, MicrosoftAppPassword="", BOT_CERTIFICATE_PATH=str(pem)))
    user = person()
    _install(server, issuer, fake, user)
    sent = api(server, "POST", "/api/v1/messages", json={"recipient": user.upn, "text": "signed by a certificate"})
    assert sent.status_code == 200 and sent.json()["status"] == "delivered", sent.text
    (request,) = _bot_tokens(issuer)
    assert request[2] == 200 and "client_secret" not in request[1]
    assert request[1]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert fake.unauthorized == []
