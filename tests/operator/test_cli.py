"""Every ``teams-proactive`` command, run as ``teams_proactive.connector.cli.main([...])`` against the real store, and
the console script itself in a subprocess."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from teams_proactive.connector.app_package import validate_package
from teams_proactive.connector.cli import main
from teams_proactive.connector.cli.broadcast import ProgressBar, progress_line, read_recipients

from tests.conftest import API_KEY
from tests.support.fake_connector import FakeConnector, free_port
from tests.support.live_app import LiveApp


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- keys -----------------------------------------------------------------------------------------
def test_keys_create_list_revoke_and_the_api_honours_them(
    cli_env: dict[str, str], live: LiveApp, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "keys", "create", "--name", "ops", "--scopes", "send,admin")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("tpk_") and "shown only now" in err

    code, out, _ = run(capsys, "keys", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "ops", "id": key.split("_")[1], "scopes": ["admin", "send"], "tenant": None, "revoked": False}
    ]
    code, out, _ = run(capsys, "keys", "list")
    assert "ops" in out and "active" in out and key not in out  # the secret is never shown again

    # The running service (same store) accepts the key at once.
    assert live.api("GET", "/api/v1/recipients", key).status_code == 200

    code, _, err = run(capsys, "keys", "create", "--name", "ops")
    assert code == 2 and "exists already" in err
    code, _, err = run(capsys, "keys", "create", "--name", "bad", "--scopes", "everything")
    assert code == 2 and "scopes must be among" in err

    code, out, _ = run(capsys, "keys", "revoke", "ops")
    assert code == 0 and "revoked" in out
    assert live.api("GET", "/api/v1/recipients", key).status_code == 401
    code, out, _ = run(capsys, "keys", "list", "--json")
    assert json.loads(out)[0]["revoked"] is True
    code, _, err = run(capsys, "keys", "revoke", "ops")
    assert code == 2 and "no active key" in err


def test_keys_list_says_how_to_start_when_empty(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and "keys create --name" in out


# ---- export-connector -----------------------------------------------------------------------------
def test_export_connector_writes_the_three_files(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "openapi"
    code, out, err = run(capsys, "export-connector", "--out", str(out_dir), "--host", "notify.contoso.example")
    assert code == 0, err
    names = {p.name for p in out_dir.iterdir()}
    assert {"apiDefinition.swagger.json", "apiProperties.json", "icon.png"} <= names
    definition = json.loads((out_dir / "apiDefinition.swagger.json").read_text())
    assert definition["swagger"] == "2.0" and definition["host"] == "notify.contoso.example"
    assert (out_dir / "icon.png").read_bytes().startswith(b"\x89PNG")
    assert str(out_dir / "apiDefinition.swagger.json") in out


# ---- send -----------------------------------------------------------------------------------------
def test_send_delivers_one_message_to_the_teams_chat(
    cli_env: dict[str, str], live: LiveApp, connector: FakeConnector, installed, capsys: pytest.CaptureFixture[str]
) -> None:
    user = installed("Adele Vance", "adele@contoso.example")
    code, out, err = run(capsys, "send", "--to", user.upn, "--text", "Build **42** failed")
    assert code == 0, err
    assert out.startswith("delivered (message id ")
    assert connector.sent(user.conversation_id)[-1].activity["text"] == "Build **42** failed"

    code, _, err = run(capsys, "send", "--to", "nobody@contoso.example", "--text", "hi")
    assert code == 1 and "RecipientNotFound" in err
    code, _, err = run(capsys, "send", "--to", user.upn)
    assert code == 2 and "--text" in err


# ---- broadcast ------------------------------------------------------------------------------------
def _people_csv(path: Path, *upns: str) -> Path:
    path.write_text("Name,UPN,Team\n" + "".join(f"Person {i},{upn},Ops\n" for i, upn in enumerate(upns)))
    return path


def test_broadcast_from_csv_shows_progress_and_the_outcome(
    cli_env: dict[str, str],
    live: LiveApp,
    connector: FakeConnector,
    installed,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    adele = installed("Adele Vance", "adele@contoso.example")
    megan = installed("Megan Bowen", "megan@contoso.example")
    people = _people_csv(tmp_path / "people.csv", adele.upn, megan.upn, "stranger@contoso.example")
    failures = tmp_path / "failures.csv"

    argv = ["broadcast", "--csv", str(people), "--text", "Office closed Friday", "--poll-seconds", "0.1"]
    code, out, err = run(capsys, *argv, "--failures-csv", str(failures))
    assert code == 0, err
    assert "done: 2 delivered, 0 failed, 1 skipped" in out
    assert "stranger@contoso.example: RecipientNotFound" in out
    # Not a terminal: one progress line per change, ending at 100 %.
    bars = [line for line in err.splitlines() if line.startswith("[")]
    assert bars and "100.0%" in bars[-1] and "delivered 2" in bars[-1]
    percents = [float(line.split("]")[1].split("%")[0]) for line in bars]
    assert percents == sorted(percents)
    for user in (adele, megan):
        assert [r.activity["text"] for r in connector.sent(user.conversation_id)][-1] == "Office closed Friday"
    assert failures.read_text().splitlines()[1].startswith("stranger@contoso.example,RecipientNotFound,")

    # The same command again follows the first broadcast: nobody gets the message twice.
    sent_before = len(connector.sent())
    code, out, err = run(capsys, *argv)
    assert code == 0 and "started before" in err and "done: 2 delivered" in out
    assert len(connector.sent()) == sent_before


def test_broadcast_through_a_deployed_service_api(
    cli_env: dict[str, str],
    live: LiveApp,
    connector: FakeConnector,
    installed,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    adele = installed("Adele Vance", "adele@contoso.example")
    people = _people_csv(tmp_path / "people.csv", adele.upn)
    argv = ["broadcast", "--csv", str(people), "--text", "Via the API", "--url", live.url, "--poll-seconds", "0.1"]
    code, out, err = run(capsys, *argv, "--api-key", API_KEY)
    assert code == 0, err
    assert "done: 1 delivered, 0 failed, 0 skipped" in out
    assert connector.sent(adele.conversation_id)[-1].activity["text"] == "Via the API"

    code, _, err = run(capsys, *argv, "--api-key", "wrong-key", "--idempotency-key", "other")
    assert code == 1 and "Unauthorized" in err


def test_broadcast_no_wait_prints_the_id(
    cli_env: dict[str, str], live: LiveApp, installed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adele = installed("Adele Vance", "adele@contoso.example")
    people = _people_csv(tmp_path / "people.csv", adele.upn)
    code, out, err = run(capsys, "broadcast", "--csv", str(people), "--text", "later", "--no-wait")
    assert code == 0, err
    broadcast_id = out.strip()
    assert live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()["id"] == broadcast_id


def test_broadcast_refuses_empty_or_missing_input(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("UPN\n")
    code, _, err = run(capsys, "broadcast", "--csv", str(empty), "--text", "x")
    assert code == 2 and "no recipients" in err
    code, _, err = run(capsys, "broadcast", "--csv", str(tmp_path / "missing.csv"), "--text", "x")
    assert code == 2 and "missing.csv" in err
    code, _, err = run(capsys, "broadcast", "--csv", str(empty))
    assert code == 2 and "--text" in err


def test_read_recipients_finds_the_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("\ufeffDisplay name,Mail\nAdele,adele@contoso.example\n\nMegan,megan@contoso.example\n")
    assert read_recipients(path) == ["adele@contoso.example", "megan@contoso.example"]
    path.write_text("adele@contoso.example\nmegan@contoso.example\n")  # no header at all
    assert read_recipients(path) == ["adele@contoso.example", "megan@contoso.example"]
    path.write_text("who,backup\nadele@contoso.example,megan@contoso.example\n")
    assert read_recipients(path, "backup") == ["megan@contoso.example"]
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_recipients(path, "nope")


def test_progress_bar_redraws_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = ProgressBar(stream)
    report = {"total": 4, "progress": 50.0, "counts": {"delivered": 2, "failed": 0, "skipped": 0, "queued": 2}}
    bar.show(progress_line(report))
    bar.show(progress_line(report))  # unchanged: not written again
    bar.show(progress_line(report | {"progress": 100.0}))
    bar.done()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[" + "#" * 15 + "." * 15 + "]  50.0%" in text


# ---- the console script ---------------------------------------------------------------------------
def _console_script() -> str:
    script = Path(sys.executable).with_name("teams-proactive")
    return str(script) if script.exists() else shutil.which("teams-proactive") or "teams-proactive"


def test_console_script_lists_every_command_and_builds_a_package(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "PUBLIC_BASE_URL"))}
    help_text = subprocess.run(
        [_console_script(), "--help"], capture_output=True, text=True, timeout=60, check=True, env=env
    ).stdout
    for command in ("serve", "keys", "export-connector", "app-package", "send", "broadcast", "doctor"):
        assert command in help_text

    env |= {"MicrosoftAppId": "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b", "PUBLIC_BASE_URL": "https://notify.contoso.example"}
    out = tmp_path / "app.zip"
    result = subprocess.run(
        [_console_script(), "app-package", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert validate_package(out.read_bytes()) == []


def test_serve_answers_on_its_port_and_logs_json_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "PUBLIC_BASE_URL"))}
    env |= {"STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "CONNECTOR_API_KEY": API_KEY}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [_console_script(), "serve", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(url + "/readyz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)  # polling for start-up with a deadline
        answer = requests.get(url + "/api/v1/recipients", headers={"X-API-Key": API_KEY, "X-Request-Id": "cli-serve-1"})
        assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "cli-serve-1"
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "teams_proactive.access"]
    assert any(line["requestId"] == "cli-serve-1" and line["path"] == "/api/v1/recipients" for line in access)
