"""``teams-proactive doctor`` finds what is wrong and says it in plain words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from teams_proactive.connector.cli import main

from tests.support.fake_connector import free_port
from tests.support.live_app import LiveApp

APP_ID = "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b"
TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def doctor(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[dict[str, str]]]:
    code = main(["doctor", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_healthy_setup_passes_with_the_service_reachable(
    cli_env: dict[str, str], live: LiveApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": "s3cr~et-value-from-the-portal-0123456789",
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppTenantId": TENANT,
        "PUBLIC_BASE_URL": live.url,
        "SECRET_KEY": "x" * 64,
    }.items():
        monkeypatch.setenv(name, value)
    code, findings = doctor(capsys, "--online")
    assert code == 0, findings
    assert {f["level"] for f in findings} == {"ok"}
    topics = {f["topic"]: f["text"] for f in findings}
    assert "SingleTenant bot" in topics["Bot credentials"]
    assert "answers" in topics["Store"]
    assert "reachable" in topics["Public URL"]

    code = main(["doctor"])  # the human-readable form
    out = capsys.readouterr().out
    assert code == 0 and "Everything checked looks right." in out


def test_doctor_names_each_problem_and_how_to_fix_it(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "store-is-a-folder.db").mkdir()
    for name, value in {
        "MicrosoftAppId": "my-bot",
        "MicrosoftAppType": "SingleTenant",
        "STORE_URL": f"sqlite:///{tmp_path / 'store-is-a-folder.db'}",
        "PUBLIC_BASE_URL": "http://notify.contoso.example/api/messages",
        "CONNECTOR_API_KEY": "short",
    }.items():
        monkeypatch.setenv(name, value)
    code, findings = doctor(capsys)
    assert code == 1
    text = "\n".join(f"{f['level']} {f['topic']}: {f['text']}" for f in findings)
    assert "FAIL Bot credentials: MicrosoftAppId should be a GUID" in text
    assert "FAIL Bot credentials: MicrosoftAppType is SingleTenant, which needs MicrosoftAppTenantId" in text
    assert "FAIL Bot credentials: MicrosoftAppPassword is empty" in text
    assert "FAIL Store: SQLite file" in text and "could not be opened" in text
    assert "FAIL Public URL: PUBLIC_BASE_URL ends with /api/messages" in text
    assert "warn API keys: CONNECTOR_API_KEY is only 5 characters" in text
    assert "warn Dashboard: SECRET_KEY is not set" in text


def test_doctor_spots_common_mix_ups(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MicrosoftAppId", APP_ID)
    monkeypatch.setenv("MicrosoftAppPassword", TENANT)  # the secret's ID pasted instead of its value
    monkeypatch.setenv("PUBLIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, findings = doctor(capsys, "--online")
    text = "\n".join(f"{f['level']} {f['topic']}: {f['text']}" for f in findings)
    assert code == 1
    assert "warn Bot credentials: MicrosoftAppPassword looks like a GUID" in text
    assert "FAIL Public URL:" in text and "cannot be reached" in text

    monkeypatch.setenv("PUBLIC_BASE_URL", "http://notify.contoso.example")
    code, findings = doctor(capsys)
    assert code == 1 and any("must use https" in f["text"] for f in findings)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://notify.contoso.example")
    code, findings = doctor(capsys)
    assert code == 0
    assert any(f["topic"] == "Metrics" and "METRICS_TOKEN" in f["text"] for f in findings)


def test_doctor_stops_at_settings_that_do_not_parse(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEND_RATE_PER_TENANT", "fast")
    code, findings = doctor(capsys)
    assert code == 1
    assert findings == [
        {
            "level": "FAIL",
            "topic": "Configuration",
            "text": "SEND_RATE_PER_TENANT must be a number, not 'fast'. Nothing else can be checked until this is fixed.",
        }
    ]


def test_doctor_reads_the_dot_env_file(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".env").write_text(f"MicrosoftAppId={APP_ID}\nMicrosoftAppPassword=\n")
    for name in ("MicrosoftAppId", "MicrosoftAppPassword"):
        # Recorded as absent, so what load_dotenv writes into os.environ is removed after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    code, findings = doctor(capsys)
    assert code == 1 and any("MicrosoftAppPassword is empty" in f["text"] for f in findings)


def test_doctor_fails_on_local_mode_unless_it_is_asked_for(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = doctor(capsys)
    assert code == 1
    credentials = [f for f in findings if f["topic"] == "Bot credentials"]
    assert credentials[0]["level"] == "FAIL" and "MicrosoftAppId is not set" in credentials[0]["text"]
    assert "LOCAL_MODE=true" in credentials[0]["text"]

    monkeypatch.setenv("LOCAL_MODE", "true")
    code, findings = doctor(capsys)
    credentials = [f for f in findings if f["topic"] == "Bot credentials"]
    assert credentials[0]["level"] == "warn" and "LOCAL_MODE=true" in credentials[0]["text"]
    assert code == 0, findings


def test_doctor_warns_about_settings_that_open_too_much(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_MODE", "true")
    monkeypatch.setenv("CALLBACK_ALLOWED_NETWORKS", "10.0.0.0/8, 0.0.0.0/0")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://notify-contoso.azurewebsites.net")
    _, findings = doctor(capsys)
    text = "\n".join(f"{f['level']} {f['topic']}: {f['text']}" for f in findings)
    assert "warn Callbacks: CALLBACK_ALLOWED_NETWORKS contains 0.0.0.0/0" in text
    assert "warn Client addresses:" in text and "TRUSTED_PROXY_HOPS=1" in text
    monkeypatch.setenv("CALLBACK_ALLOWED_NETWORKS", "10.0.0.0/8")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    _, findings = doctor(capsys)
    assert not [f for f in findings if f["topic"] in {"Callbacks", "Client addresses"}]
