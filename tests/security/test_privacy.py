"""Privacy: ForgetRecipient and DELETE_ON_UNINSTALL erase a person; logs never hold bodies, keys or tokens."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botframework.connector.auth import ChannelValidation

from tests.conftest import API_KEY
from tests.security.conftest import (
    POLL_SECONDS,
    all_deliveries,
    all_references,
    create_key,
    final_delivery,
    finished_broadcast,
)
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp
from tests.support.token_issuer import LocalTokenIssuer

CARD_SECRET = "CARD-7f3a9c-confidential-salary-review"
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": CARD_SECRET}]}


def _install(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> None:
    response = live.activity(act.install(user, connector.service_url("a")))
    assert response.status_code == 200, response.text


def _dump(live: LiveApp) -> str:
    """Everything the store holds (references, deliveries, their broadcasts) as one text to search."""
    docs: list[Any] = [r.to_doc() for r in all_references(live)]
    deliveries = all_deliveries(live)
    docs += [d.to_doc() for d in deliveries]
    for broadcast_id in {d.broadcast_id for d in deliveries if d.broadcast_id}:
        broadcast = live.runtime.call(live.runtime.store.broadcasts.get(broadcast_id))
        docs.append(broadcast.to_doc() if broadcast else None)
    return json.dumps(docs, ensure_ascii=False).lower()


# ---- ForgetRecipient -------------------------------------------------------------------------


def test_forget_recipient_erases_references_content_and_addresses(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    adele = make_user()
    other = make_user("Other Person", "other@contoso.example")
    _install(live, connector, adele)
    _install(live, connector, other)
    live.activity(act.teams_copilot_message(adele, connector.service_url("a"), "hi from copilot chat"))
    sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "TEXT-forget-me"})
    card = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.aad_object_id, "card": CARD})
    kept = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": other.upn, "text": "TEXT-keep-me"})
    broadcast = live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [adele.upn, other.upn], "text": "TEXT-broadcast"}
    ).json()
    for response in (sent, card, kept):
        final_delivery(live, response.json()["id"])
    finished_broadcast(live, broadcast["id"])
    # A broadcast that only skipped her (she had opted out): its skip report names her, no delivery does.
    assert live.activity(act.message(adele, connector.service_url("a"), "stop")).status_code == 200
    skipping = live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [other.upn, adele.upn], "text": "TEXT-later"}
    ).json()
    finished_broadcast(live, skipping["id"])
    report = live.api("GET", f"/api/v1/broadcasts/{skipping['id']}", API_KEY).json()
    assert [f["recipient"] for f in report["failures"]] == [adele.upn]
    before = _dump(live)
    assert "text-forget-me" in before and adele.upn in before and adele.aad_object_id in before

    response = live.api("DELETE", f"/api/v1/recipients/{adele.upn}", API_KEY)
    assert response.status_code == 204, response.text

    after = _dump(live)
    for secret in ("text-forget-me", CARD_SECRET.lower(), adele.upn, adele.aad_object_id, adele.user_id.lower()):
        assert secret not in after, secret
    # Other people's data is untouched; the deliveries themselves still answer status queries.
    assert "text-keep-me" in after and other.upn in after
    status = live.api("GET", f"/api/v1/messages/{sent.json()['id']}", API_KEY).json()
    assert status["status"] == "delivered" and status["recipient"] == "(forgotten)"
    assert live.api("GET", f"/api/v1/recipients/{adele.upn}", API_KEY).status_code == 404
    assert live.api("GET", f"/api/v1/recipients/{other.upn}", API_KEY).json()["reachable"] is True
    # Sending to a forgotten person is like sending to someone never seen.
    again = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "x"})
    assert again.status_code == 404 and again.json()["error"]["code"] == "RecipientNotFound"


def test_forget_recipient_scrubs_a_pending_delivery_so_it_is_never_sent(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    adele = make_user()
    _install(live, connector, adele)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    later = live.api(
        "POST",
        "/api/v1/messages",
        API_KEY,
        json={"recipient": adele.upn, "text": "TEXT-scheduled", "deliverAt": due.isoformat()},
    ).json()
    assert later["status"] == "scheduled"
    assert live.api("DELETE", f"/api/v1/recipients/{adele.upn}", API_KEY).status_code == 204
    assert "text-scheduled" not in _dump(live)
    # When it falls due it fails (cancelled: nothing left to send); nothing, least of all an empty
    # message, goes to Teams.
    final = final_delivery(live, later["id"])
    assert final["status"] == "failed" and final["error"]["code"] in ("Cancelled", "RecipientNotFound"), final
    assert [r.activity.get("text") for r in connector.sent(adele.conversation_id)][1:] == []


# ---- DELETE_ON_UNINSTALL ---------------------------------------------------------------------


@pytest.mark.parametrize("delete_on_uninstall", [True, False])
def test_uninstall_erases_the_person_only_when_delete_on_uninstall_is_on(
    app_env: dict[str, str], connector: FakeConnector, make_user, delete_on_uninstall: bool
) -> None:
    env = {**app_env, "DELETE_ON_UNINSTALL": "true" if delete_on_uninstall else "false"}
    with LiveApp(env) as live:
        adele = make_user()
        _install(live, connector, adele)
        sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "TEXT-uninstall"})
        final_delivery(live, sent.json()["id"])
        assert live.activity(act.uninstall(adele, connector.service_url("a"))).status_code == 200
        if delete_on_uninstall:
            # The turn only queues the erasure; the dispatcher's housekeeping does it, off the turn.
            _until_erasures_done(live)
        dump = _dump(live)
        recipient = live.api("GET", f"/api/v1/recipients/{adele.upn}", API_KEY)
        if delete_on_uninstall:
            assert all_references(live) == []
            assert "text-uninstall" not in dump and adele.upn not in dump
            assert recipient.status_code == 404
        else:
            assert recipient.json()["status"] == "uninstalled"
            assert "text-uninstall" in dump


def _until_erasures_done(live: LiveApp) -> None:
    store = live.runtime.store
    deadline = time.monotonic() + 30
    while live.runtime.call(store.erasures.pending(10)):
        assert time.monotonic() < deadline, "the queued erasure was never done"
        time.sleep(POLL_SECONDS)


# ---- logs ------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    """Every record, formatted with its exception and any ``extra=`` fields, as one searchable text."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        extras = {k: v for k, v in vars(record).items() if k not in self._standard}
        self.lines.append(f"{self.format(record)} {extras!r}")

    def text(self, *, excluding_client_of: str | None = None) -> str:
        """All lines; without those the test's own HTTP client (urllib3) logs about its calls to
        ``excluding_client_of``, which name what the test asked for, not what the server logged."""
        return "\n".join(
            line
            for line in self.lines
            if not (excluding_client_of and line.startswith("urllib3.") and f"{excluding_client_of} " in line)
        )


@pytest.fixture
def captured() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _assert_absent(text: str, secrets: dict[str, str]) -> None:
    assert text, "nothing was logged: the capture is not working"
    leaked = {name: value for name, value in secrets.items() if value and value in text}
    lines = [line[:300] for line in text.splitlines() if any(v in line for v in leaked.values())]
    assert not leaked, f"logged: {sorted(leaked)}: {lines[:5]}"


def test_logs_never_hold_bodies_keys_tokens_or_cards(
    app_env: dict[str, str], connector: FakeConnector, make_user, captured: _Capture
) -> None:
    with LocalTokenIssuer() as issuer:
        env = {
            **app_env,
            "CONNECTOR_AUTH": "apikey,entra",
            "ENTRA_AUDIENCE": "api://teams-proactive",
            "ENTRA_METADATA_URL": issuer.base_url + "/{tenantid}/v2.0/.well-known/openid-configuration",
        }
        with LiveApp(env) as live:
            app_url = live.url
            adele = make_user()
            tenant = adele.tenant_id
            key = create_key(live, "flow-key", scopes=["admin"])
            good_token = issuer.entra_token("api://teams-proactive", tenant, roles=["Notifications.Send"])
            bad_token = issuer.entra_token("api://teams-proactive", tenant, roles=["x"], sign_with_other_key=True)
            wrong_key = key[:-4] + "AAAA"
            secrets = {
                "bootstrap key": API_KEY,
                "created key": key,
                "created key secret": key.split("_")[2],
                "wrong key": wrong_key,
                "good token": good_token,
                "good token signature": good_token.rsplit(".", 1)[1],
                "bad token": bad_token,
                "message text": "TEXT-9d1c-quarterly-numbers",
                "summary": "SUMMARY-4b7e-preview",
                "card text": CARD_SECRET,
                "updated text": "TEXT-UPDATED-2f8a",
                "failed text": "TEXT-FAILS-6c0d",
                "broadcast text": "TEXT-BROADCAST-1e5b",
                "user's own message": "INBOUND-3a9f-my-password-is-hunter2",
                # GetRecipient and ForgetRecipient name the person in their path: the access log must not.
                "recipient in a path": adele.upn,
                "card submission": "SUBMITTED-8e2c-approve-with-comment",
            }
            _install(live, connector, adele)
            live.activity(act.message(adele, connector.service_url("a"), secrets["user's own message"]))
            live.activity(act.card_submit(adele, connector.service_url("a"), {"comment": secrets["card submission"]}))

            sent = live.api(
                "POST",
                "/api/v1/messages",
                key,
                json={"recipient": adele.upn, "text": secrets["message text"], "summary": secrets["summary"]},
            ).json()
            final_delivery(live, sent["id"])
            card = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "card": CARD}).json()
            final_delivery(live, card["id"])
            live.api("PUT", f"/api/v1/messages/{sent['id']}", key, json={"text": secrets["updated text"]})
            live.api("DELETE", f"/api/v1/messages/{card['id']}", key)
            # A send Teams refuses for good, and one it fails then accepts.
            connector.fail_next(1, Scripted(403, "Forbidden", "The bot is not part of the conversation roster."))
            failed = live.api(
                "POST", "/api/v1/messages", key, json={"recipient": adele.upn, "text": secrets["failed text"]}
            )
            assert final_delivery(live, failed.json()["id"])["status"] == "failed"
            connector.fail_next(1, Scripted(503, "ServiceUnavailable", "try later", retry_after=0))
            retried = live.api(
                "POST", "/api/v1/messages", key, json={"recipient": adele.upn, "text": secrets["failed text"]}
            )
            final_delivery(live, retried.json()["id"])
            started = live.api(
                "POST",
                "/api/v1/broadcasts",
                key,
                json={"recipients": [adele.upn, "nobody@x.example"], "text": secrets["broadcast text"]},
            ).json()
            finished_broadcast(live, started["id"])
            # Refused callers: a wrong key, a badly signed token; an accepted token.
            assert live.api("GET", f"/api/v1/recipients/{adele.upn}", wrong_key).status_code == 401
            bad = live.api("GET", f"/api/v1/recipients/{adele.upn}", headers={"Authorization": f"Bearer {bad_token}"})
            assert bad.status_code == 401
            good = live.api("GET", f"/api/v1/recipients/{adele.upn}", headers={"Authorization": f"Bearer {good_token}"})
            assert good.status_code == 200, good.text
            assert live.api("DELETE", f"/api/v1/recipients/{adele.upn}", key).status_code == 204
    _assert_absent(captured.text(excluding_client_of=app_url), secrets)


def test_inbound_auth_logs_never_hold_tokens_or_the_bot_secret(
    app_env: dict[str, str], connector: FakeConnector, make_user, captured: _Capture, local_ca_trusted: None
) -> None:
    app_id, password = "9a8b7c6d-0000-4000-8000-000000000001", "BOT-PASSWORD-5e6f-never-log-me"
    with LocalTokenIssuer(tls=True) as issuer:
        env = {
            **app_env,
            "MicrosoftAppId": app_id,
            "MicrosoftAppPassword": password,
            "BotOpenIdMetadata": issuer.bot_framework_metadata_url,
        }
        try:
            with LiveApp(env) as live:
                adele = make_user()
                url = connector.service_url("a")
                good = issuer.bot_framework_token(app_id, url)
                expired = issuer.bot_framework_token(app_id, url, expires_in=-900)
                forged = issuer.bot_framework_token(app_id, url, sign_with_other_key=True)
                # An install runs the turn, whose welcome needs an outbound token: it fails offline
                # (no Entra ID here), which is a failure path worth scanning too.
                for token, status in ((good, 200), (expired, 401), (forged, 401)):
                    response = live.activity(act.install(adele, url), headers={"Authorization": f"Bearer {token}"})
                    assert response.status_code == status, response.text
        finally:
            ChannelValidation.open_id_metadata_endpoint = None
    secrets = {
        "bot password": password,
        "good token": good,
        "good token signature": good.rsplit(".", 1)[1],
        "expired token": expired,
        "forged token": forged,
    }
    _assert_absent(captured.text(), secrets)
