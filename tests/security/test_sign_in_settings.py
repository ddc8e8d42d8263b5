"""LOGIN_URL and BOT_OPENID_METADATA_URL: where every token is asked for and where inbound keys come from.

Both are for tests and for private or sovereign deployments; both must be https, and anything else stops
``serve`` and ``doctor`` at start with a message naming the setting (an http sign-in host would otherwise
fail every Graph call as an "unexpected error", retried for ever)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from teams_proactive.bot.bot_tokens import BotTokenProvider
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.settings import BotSettings

from tests.support.fake_connector import free_port
from tests.support.server_process import SCRIPT

APP_ID = "3c9e2f14-6b7a-4d80-9e1f-2a3b4c5d6e7f"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BAD = ["http://127.0.0.1:8443", "ftp://login.example", "login.example", "https://", "https://login.example/?x=1"]
NAMES = {"LOGIN_URL": "LOGIN_URL", "BOT_OPENID_METADATA_URL": "BOT_OPENID_METADATA_URL",
         "BotOpenIdMetadata": "BOT_OPENID_METADATA_URL"}  # fmt: skip


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = (
        [str(SCRIPT), *args] if SCRIPT.exists() else [sys.executable, "-m", "teams_proactive.connector.cli", *args]
    )
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("setting", sorted(NAMES))
@pytest.mark.parametrize("value", BAD)
def test_anything_but_https_is_refused_naming_the_setting(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match=NAMES[setting]) as refused:
        BotSettings.from_env({"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x", setting: value})
    assert "https://" in str(refused.value)
    if setting == "LOGIN_URL":  # Graph reads it too, with the same refusal
        with pytest.raises(ValueError, match="LOGIN_URL"):
            GraphSettings.from_env({"LOGIN_URL": value}, BotSettings.from_env({}))


@pytest.mark.parametrize("setting", ["LOGIN_URL", "BOT_OPENID_METADATA_URL"])
def test_serve_and_doctor_exit_non_zero_and_say_which_setting(setting: str, tmp_path: Path) -> None:
    import os

    env = {"PATH": os.environ.get("PATH", ""), "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
           "CONNECTOR_API_KEY": "k" * 32, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x",
           setting: "http://127.0.0.1:9/"}  # fmt: skip
    serve = _cli("serve", "--host", "127.0.0.1", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert serve.returncode != 0 and setting in serve.stderr, serve.stderr
    doctor = _cli("doctor", env=env, cwd=tmp_path)
    assert doctor.returncode != 0 and setting in doctor.stdout + doctor.stderr, doctor.stdout


def test_every_token_is_asked_for_at_login_url() -> None:
    base = {"MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "x", "LOGIN_URL": "https://login.sovereign.example/"}
    single = BotSettings.from_env({**base, "MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": TENANT})
    multi = BotSettings.from_env(base)
    # The bot's own token: its tenant when single-tenant, the Bot Framework's tenant when multi-tenant.
    assert BotTokenProvider(single).authority == f"https://login.sovereign.example/{TENANT}"
    assert BotTokenProvider(multi).authority == "https://login.sovereign.example/botframework.com"
    assert BotTokenProvider(multi).scope == "https://api.botframework.com"  # the audience does not move
    # Graph's tokens: the same host.
    assert GraphSettings.from_env(base, multi).login_url == "https://login.sovereign.example"
    # Without it, each cloud's own host.
    assert BotTokenProvider(BotSettings.from_env({"MicrosoftAppId": APP_ID})).authority == (
        "https://login.microsoftonline.com/botframework.com"
    )
    assert BotSettings.from_env({"MicrosoftAppId": APP_ID, "TEAMS_CLOUD": "gcch"}).bot_login_url == (
        "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us"
    )


def test_bot_openid_metadata_url_replaces_where_inbound_keys_come_from() -> None:
    url = "https://keys.sovereign.example/v1/.well-known/openidconfiguration"
    assert BotSettings.from_env({"BOT_OPENID_METADATA_URL": url}).channel_openid_metadata_url == url
    # The SDK's own name still works; the documented name wins when both are set.
    assert BotSettings.from_env({"BotOpenIdMetadata": url}).channel_openid_metadata_url == url
    both = BotSettings.from_env({"BotOpenIdMetadata": "https://old.example/x", "BOT_OPENID_METADATA_URL": url})
    assert both.channel_openid_metadata_url == url
    assert BotSettings.from_env({}).channel_openid_metadata_url == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
