"""A Microsoft key endpoint that never answers stalls nothing: /api/messages answers 503, the API keeps answering.

The SDK alone fetches the channel's OpenID metadata with a blocking call without a time limit on the
bot's event loop; one unauthenticated request then froze the whole API. These tests hold the
metadata connection open (``StalledListener``) and decide themselves when it ends, so no test depends
on how long anything takes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from teams_proactive.bot.signing_keys import SigningKeys, SigningKeysUnavailable

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.live_app import LiveApp
from tests.support.stalled_listener import StalledListener
from tests.support.token_issuer import LocalTokenIssuer

APP_ID = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"


@pytest.fixture
def stalled() -> Iterator[StalledListener]:
    with StalledListener() as listener:
        yield listener


@pytest.fixture
def app(stalled: StalledListener, tmp_path: Path) -> Iterator[LiveApp]:
    env = {
        "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": "unused-test-secret",
        # https (the setting refuses anything else): the TLS handshake with the silent listener stalls too.
        "BotOpenIdMetadata": stalled.url.replace("http://", "https://") + "/v1/.well-known/openidconfiguration",
        # Long enough that only the test's release() ends the wait.
        "BOT_METADATA_TIMEOUT_SECONDS": "120",
    }
    with LiveApp(env) as live:
        yield live


def test_the_api_answers_while_the_key_endpoint_stalls_and_the_bot_endpoint_answers_503(
    app: LiveApp, stalled: StalledListener
) -> None:
    user = act.TeamsUser(name="Lee Gu", upn="lee@contoso.example")
    activity = act.uninstall(user, "https://smba.trafficmanager.net/emea/")
    with LocalTokenIssuer() as issuer:  # a well-formed token: its keys are to be fetched from the stalled URL
        header = issuer.bot_framework_auth_header(APP_ID, activity["serviceUrl"])
    answers: list[requests.Response] = []
    pending = threading.Thread(
        target=lambda: answers.append(app.activity(activity, headers={"Authorization": header})), daemon=True
    )
    pending.start()
    assert stalled.first_connection.wait(timeout=60), "the key fetch never started"

    # The bot loop is free: the connector API, which runs its work on that loop, answers as usual.
    for _ in range(3):
        listing = app.api("GET", "/api/v1/recipients", key=API_KEY)
        assert listing.status_code == 200, listing.text
        assert listing.json()["value"] == []
    assert pending.is_alive() and not answers, "the activity must still be waiting on the stalled endpoint"

    stalled.release()  # the endpoint hangs up without an answer
    pending.join(timeout=60)
    assert len(answers) == 1
    refused = answers[0]
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "ServiceUnavailable"
    assert int(refused.headers["Retry-After"]) > 0

    # The failure is remembered for a moment: the next activity is answered 503 without another fetch.
    seen = stalled.accepted
    again = app.activity(activity, headers={"Authorization": header})
    assert again.status_code == 503
    assert stalled.accepted == seen
    stored = app.runtime.call(app.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower()))
    assert stored == []


def test_a_key_fetch_gives_up_after_its_time_limit(stalled: StalledListener) -> None:
    keys = SigningKeys(stalled.url + "/v1/.well-known/openidconfiguration", timeout_seconds=0.2)

    async def fetch_twice() -> list[Any]:
        outcomes: list[Any] = []
        for _ in range(2):
            try:
                outcomes.append(await keys.get("some-kid"))
            except SigningKeysUnavailable as exc:
                outcomes.append(exc)
        return outcomes

    outcomes = asyncio.run(fetch_twice())
    assert all(isinstance(outcome, SigningKeysUnavailable) for outcome in outcomes)
    assert stalled.accepted == 1  # the second call used the remembered failure


def test_keys_already_known_keep_working_when_a_refresh_fails(stalled: StalledListener) -> None:
    with LocalTokenIssuer() as issuer:
        keys = SigningKeys(issuer.bot_framework_metadata_url, timeout_seconds=5)
        kid = issuer.bot_framework_key.kid
        first = asyncio.run(keys.get(kid))
    assert first is not None
    # The issuer is gone; a refresh (forced by age) fails, and the key fetched before still serves.
    keys.fetched_at = float("-inf")
    keys.url = stalled.url + "/gone"
    keys.timeout_seconds = 0.2
    again = asyncio.run(keys.get(kid))
    assert again is not None and again.endorsements == first.endorsements
    with pytest.raises(PermissionError):
        asyncio.run(keys.get("a-key-nobody-published"))
