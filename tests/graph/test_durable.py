"""A crash in the middle of an install loses nothing: the restarted service finds the app installed
(409) and delivers the message once."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, texts_in
from tests.graph.conftest import TENANT
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.fake_graph import FakeGraph, Fault, GraphUser
from tests.support.server_process import ServerProcess


@pytest.mark.slow
def test_sigkill_mid_install_resumes_and_delivers_once(tmp_path: Path, connector: FakeConnector) -> None:
    with FakeGraph(tmp_path) as graph:
        env = {
            "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "CONNECTOR_API_KEY": API_KEY,
            "SEND_LEASE_SECONDS": "4",
            "SEND_TIMEOUT_SECONDS": "2",
            "RATE_LIMIT_PER_MINUTE": "0",
            "SERVER_CWD": str(tmp_path),
            **graph.env(),
        }
        megan = act.TeamsUser(name="Megan Bowen", upn="megan@contoso.example", tenant_id=TENANT)
        adele = graph.add_user(TENANT, GraphUser("Adele Vance", "adele@contoso.example"))
        # The app gets installed, then reading its chat hangs: the process dies right there.
        graph.fail_next(r"^GET .*/chat$", Fault(503, "ServiceUnavailable", hang=True), count=20)
        server = ServerProcess(env, log_path=tmp_path / "server.log")
        with server:
            assert server.activity(act.install(megan, connector.service_url("a"))).status_code == 200
            response = server.api("POST", "/api/v1/messages", API_KEY, json={
                "recipient": adele.upn, "text": "You have mail", "installIfMissing": True, "tenantId": TENANT,
                "wait": 0})  # fmt: skip
            assert response.status_code in (200, 202), response.text
            delivery_id = response.json()["id"]
            eventually(lambda: graph.calls_matching(r"^GET .*/chat$"), timeout=30)
            assert (TENANT, adele.id) in graph.installations
            server.kill(signal.SIGKILL)
            graph.clear_faults()
            graph.release_hung()

            server.start()

            def final() -> dict[str, Any] | None:
                # GetMessage always answers 200 (a read); its status says whether the message is final.
                answer = server.api("GET", f"/api/v1/messages/{delivery_id}", API_KEY)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                return body if body["status"] in ("delivered", "failed") else None

            delivery = eventually(final, timeout=60, every=0.2)
        assert delivery["status"] == "delivered", delivery
        assert delivery["reachedBy"] == "installed"
        assert delivery["installOutcome"] == "alreadyInstalled"  # the first process had installed it
        assert texts_in(connector, graph.chat_id(adele.id), "You have mail") == 1
        assert len(graph.calls_matching(r"^POST .*/installedApps")) == 2
