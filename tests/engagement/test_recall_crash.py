"""SIGKILL the real server in the middle of a recall, restart it on the same store: the recall resumes.

Every delivered message ends up deleted, at most the deletes in flight at the kill (the dispatcher's
concurrency) are made twice, nothing is sent again, and the report says every message was recalled.
"""

from __future__ import annotations

import collections
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually
from tests.support.fake_connector import FakeConnector
from tests.support.people import people, seed_sqlite
from tests.support.server_process import ServerProcess

PEOPLE = 600
CONCURRENCY = 16


def _report(server: ServerProcess, broadcast_id: str) -> dict[str, Any]:
    answer = server.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    return dict(answer.json())


@pytest.mark.slow
def test_sigkill_mid_recall_resumes_after_restart(tmp_path: Path) -> None:
    with FakeConnector(latency=(0.02, 0.06)) as connector:
        db = tmp_path / "store.db"
        crowd = people(PEOPLE, tenant_id="tenant-recall")
        seed_sqlite(str(db), crowd, connector.service_url("recall"))
        env = {
            "STORE_URL": f"sqlite:///{db}",
            "CONNECTOR_API_KEY": API_KEY,
            "SEND_RATE_PER_TENANT": "120",
            "SEND_CONCURRENCY": str(CONCURRENCY),
            # A killed dispatcher's leases lapse after 4 s, so the restarted one takes over quickly.
            "SEND_LEASE_SECONDS": "4",
            "SEND_TIMEOUT_SECONDS": "2",
            "RATE_LIMIT_PER_MINUTE": "0",
            "SERVER_CWD": str(tmp_path),
        }
        server = ServerProcess(env, log_path=tmp_path / "server.log")
        with server:
            started = server.api(
                "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [p.upn for p in crowd], "text": "oops"}
            )
            assert started.status_code in (200, 202), started.text
            broadcast_id = started.json()["id"]
            eventually(lambda: _report(server, broadcast_id)["status"] == "completed", timeout=120, every=0.2)
            posted = collections.Counter((r.conversation_id, r.activity_id) for r in connector.sent())
            assert len(posted) == PEOPLE and set(posted.values()) == {1}

            recall = server.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
            assert recall.status_code == 200, recall.text
            eventually(lambda: len(connector.changes("DELETE")) >= 150, timeout=60)
            server.kill(signal.SIGKILL)
            deleted_before_restart = len(connector.changes("DELETE"))
            assert deleted_before_restart < PEOPLE, "the recall finished before the kill"

            server.start()
            done = eventually(
                lambda: (r := _report(server, broadcast_id))["recall"]["status"] == r["status"] == "completed" and r,
                timeout=180,
                every=0.5,
            )

        deleted = collections.Counter((r.conversation_id, r.activity_id) for r in connector.changes("DELETE"))
        assert set(deleted) == set(posted)  # every delivered message is gone from its chat
        repeats = sum(n - 1 for n in deleted.values())
        assert repeats <= CONCURRENCY, f"{repeats} repeated deletes ({deleted_before_restart} before the kill)"
        assert len(connector.sent()) == PEOPLE  # nothing was sent again
        assert done["counts"]["recalled"] == PEOPLE and done["counts"]["delivered"] == 0
        assert done["recall"]["changed"] == PEOPLE and done["recall"]["pending"] == 0
        assert done["status"] == "completed"
