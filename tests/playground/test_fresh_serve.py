"""`teams-proactive serve` with no configuration at all answers /healthz and accepts a playground install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.playground import Playground
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.playground


def test_serve_with_no_configuration_accepts_a_playground_install(tmp_path: Path) -> None:
    # Only what any shell has: no STORE_URL, no bot identity, no API key, no .env.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SERVER_CWD": str(tmp_path)}
    with ServerProcess(env, inherit_env=False, log_path=tmp_path / "serve.log") as server:
        assert server.api("GET", "/healthz").json() == {"status": "ok"}
        assert server.api("GET", "/readyz").json()["status"] == "ready"
        with Playground(f"{server.url}/api/messages") as playground:
            deliveries = playground.install()
            assert deliveries and all(d.ok for d in deliveries), [d.status for d in deliveries]
            welcome = playground.wait_for_bot_message(lambda m: "stop" in (m.text or ""), timeout=15)
            assert welcome.conversation_id == playground.conversation_id
    # The embedded SQLite store is the default, in the working directory.
    assert (tmp_path / "teams-proactive.db").exists()
