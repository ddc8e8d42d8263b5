"""Local mode only on purpose: without MicrosoftAppId, ``serve`` on a non-loopback host and gunicorn
refuse to start (before binding) with a message saying what to set; LOCAL_MODE=true lets them start.

Nothing here listens on a non-loopback address: the refused starts stop before binding, and the
started ones bind 127.0.0.1 (gunicorn's ``-b`` overrides the 0.0.0.0 of deploy/gunicorn.conf.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from teams_proactive.bot.settings import BotSettings
from teams_proactive.connector.local_mode import LocalModeRefused, check_bind, check_wsgi, is_loopback

from tests.conftest import API_KEY
from tests.support.fake_connector import free_port
from tests.support.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("teams-proactive")
GUNICORN = Path(sys.executable).with_name("gunicorn")
MESSAGE = "MicrosoftAppId is not set"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The parent's environment (PATH, PYTHONPATH) without any bot identity or local-mode switch."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("Microsoft", "LOCAL_MODE", "PUBLIC_BASE_URL", "SECRET_KEY", "PROMETHEUS"))
    }
    return env | {"STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "CONNECTOR_API_KEY": API_KEY, **extra}


def nothing_listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_bind_rule() -> None:
    local = BotSettings.from_env({})
    for host in ("127.0.0.1", "127.0.0.5", "localhost", "::1", "[::1]"):
        assert is_loopback(host), host
        check_bind(local, host)  # the quick start needs nothing
    for host in ("0.0.0.0", "::", "10.0.0.4", "notify.contoso.example"):
        with pytest.raises(LocalModeRefused, match="LOCAL_MODE=true"):
            check_bind(local, host)
    with pytest.raises(LocalModeRefused, match=MESSAGE):
        check_wsgi(local)
    # Asked for on purpose, or a real identity: no refusal anywhere.
    check_bind(BotSettings.from_env({"LOCAL_MODE": "true"}), "0.0.0.0")
    check_wsgi(BotSettings.from_env({"LOCAL_MODE": "true"}))
    check_wsgi(BotSettings.from_env({"MicrosoftAppId": "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b"}))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "notify.contoso.example"])
def test_serve_on_a_public_host_without_an_identity_exits_before_binding(tmp_path: Path, host: str) -> None:
    port = free_port()
    result = subprocess.run(
        [str(SCRIPT), "serve", "--host", host, "--port", str(port)],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert MESSAGE in result.stderr and "LOCAL_MODE=true" in result.stderr
    assert "listening" not in result.stdout
    assert nothing_listens(port)


def test_serve_starts_on_loopback_with_nothing_set_and_with_local_mode_asked_for(tmp_path: Path) -> None:
    for extra in ({}, {"LOCAL_MODE": "true"}):
        with ServerProcess(clean_env(tmp_path, **extra), inherit_env=False) as server:
            assert server.http.get(server.url + "/healthz", timeout=10).status_code == 200


def gunicorn(tmp_path: Path, port: int, *, config: bool, **extra: str) -> subprocess.Popen[str]:
    command = [str(GUNICORN), "-b", f"127.0.0.1:{port}", "-w", "1", "teams_proactive.connector.wsgi:app"]
    if config:
        command[1:1] = ["-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    env = clean_env(tmp_path, PORT=str(port), GUNICORN_WORKERS="1", GUNICORN_THREADS="2", **extra)
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("config", [True, False], ids=["deploy-config", "bare-wsgi"])
def test_gunicorn_without_an_identity_refuses_to_start(tmp_path: Path, config: bool) -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    process = gunicorn(tmp_path, port, config=config)
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0, output
    assert MESSAGE in output and "LOCAL_MODE=true" in output, output
    assert nothing_listens(port)


@pytest.mark.slow
def test_gunicorn_starts_with_local_mode_asked_for(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    process = gunicorn(tmp_path, port, config=True, LOCAL_MODE="true")
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)  # polling the child's port for start-up, with a deadline
    finally:
        process.terminate()
        process.communicate(timeout=60)
