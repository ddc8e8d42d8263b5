"""SIGKILL the real server in the middle of a 2,000-recipient broadcast, restart it on the same store.

Every deliverable recipient ends up with the message, at most the sends in flight at the kill (the
dispatcher's concurrency) arrive twice, and the broadcast report is complete.
"""

from __future__ import annotations

import asyncio
import collections
import signal
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.bot.model import ReferenceStatus
from teams_proactive.bot.store.sqlite import SqliteStore

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually
from tests.support.fake_connector import FakeConnector
from tests.support.people import people, reference
from tests.support.server_process import ServerProcess

CONCURRENCY = 32
DELIVERABLE = 1990


def _seed(path: Path, connector: FakeConnector) -> list[str]:
    """1,990 reachable people, 5 who uninstalled the bot, and 5 addresses nobody has: 2,000 recipients."""
    crowd = people(DELIVERABLE + 5, tenant_id="tenant-crash")

    async def write() -> None:
        store = SqliteStore(str(path))
        await store.open()
        for i, person in enumerate(crowd):
            status = ReferenceStatus.ACTIVE if i < DELIVERABLE else ReferenceStatus.UNINSTALLED
            await store.references.write(reference(person, connector.service_url("crash"), status=status), None)
        await store.close()

    asyncio.run(write())
    return [p.upn for p in crowd] + [f"stranger{i}@tenant-crash.example" for i in range(5)]


def _copies(connector: FakeConnector) -> collections.Counter[str]:
    return collections.Counter(r.conversation_id for r in connector.sent() if r.activity.get("text") == "evacuate")


@pytest.mark.slow
@pytest.mark.parametrize("kill_when", ["expanding", "sending"])
def test_sigkill_mid_broadcast_loses_nothing(tmp_path: Path, kill_when: str) -> None:
    with FakeConnector(latency=(0.02, 0.06)) as connector:
        db = tmp_path / "store.db"
        recipients = _seed(db, connector)
        env = {
            "STORE_URL": f"sqlite:///{db}",
            "CONNECTOR_API_KEY": API_KEY,
            "SEND_RATE_PER_TENANT": "200",
            "SEND_CONCURRENCY": str(CONCURRENCY),
            # A killed dispatcher's leases lapse after 4 s, so the restarted one takes over quickly.
            "SEND_LEASE_SECONDS": "4",
            "SEND_TIMEOUT_SECONDS": "2",
            "RATE_LIMIT_PER_MINUTE": "0",
            "SERVER_CWD": str(tmp_path),
        }
        server = ServerProcess(env, log_path=tmp_path / "server.log")
        with server:
            response = server.api(
                "POST",
                "/api/v1/broadcasts",
                API_KEY,
                json={"recipients": recipients, "text": "evacuate", "waitForCompletion": True},
            )
            assert response.status_code == 202, response.text
            location = response.headers["Location"]
            if kill_when == "sending":
                eventually(lambda: sum(_copies(connector).values()) >= 600, timeout=60)
            server.kill(signal.SIGKILL)
            sent_before_restart = sum(_copies(connector).values())
            assert sent_before_restart < DELIVERABLE, "the broadcast finished before the kill"

            server.start()

            def report() -> dict[str, Any] | None:
                answer = server.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
                assert answer.status_code in (200, 202), answer.text
                return answer.json() if answer.status_code == 200 else None

            done = eventually(report, timeout=180, every=0.5)

        copies = _copies(connector)
        assert len(copies) == DELIVERABLE  # every deliverable recipient has the message
        duplicates = sum(c - 1 for c in copies.values())
        assert duplicates <= CONCURRENCY, f"{duplicates} duplicates ({sent_before_restart} sent before the kill)"
        assert done["status"] == "completed"
        assert done["total"] == 2000 and done["progress"] == 100.0
        assert done["counts"] == {
            "queued": 0,
            "sending": 0,
            "delivered": DELIVERABLE,
            "failed": 0,
            "skipped": 10,
            "recalled": 0,
            "read": 0,
            "answered": 0,
        }
        reasons = collections.Counter(f["code"] for f in done["failures"])
        assert reasons == {"RecipientUnreachable": 5, "RecipientNotFound": 5}
