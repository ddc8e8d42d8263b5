"""Two real server processes share one Cosmos DB store: a 1,000-recipient broadcast reaches every
person exactly once (no duplicate, no loss).

Both processes take install activities; one starts the broadcast, the other reports on it. Only the
process holding the dispatcher's leader lease expands and sends (bot/delivery/dispatcher.py); the
other stands by. What the local server cannot show: Cosmos DB's own throughput limits (429s).
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support import activities as act
from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.fake_connector import FakeConnector, Member
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.cosmos, pytest.mark.slow]

API_KEY = "two-process-bootstrap-key-0123456789"
PEOPLE = 1000
TEXT = "Quarterly all-hands starts in 10 minutes"


def test_two_processes_broadcast_to_1000_people_exactly_once(
    cosmos_target: CosmosTarget, cosmos_database: str, tmp_path: Path
) -> None:
    env = {
        **cosmos_target.env(cosmos_database),
        "CONNECTOR_API_KEY": API_KEY,
        "SEND_RATE_PER_TENANT": "5000",  # the fake has no cap; Teams' pacing is tested elsewhere
        "SEND_CONCURRENCY": "64",
        "RATE_LIMIT_PER_MINUTE": "0",  # the per-key API limit is not under test
        "SERVER_CWD": str(tmp_path),  # no stray .env
    }
    users = [act.TeamsUser(name=f"Person {i}", upn=f"person{i:04d}@contoso.example") for i in range(PEOPLE)]
    with FakeConnector() as fake:
        for user in users:
            fake.add_member(Member(user.user_id, user.name, user.aad_object_id, user.upn, user.upn, user.tenant_id))
        with ServerProcess(env, log_path=tmp_path / "a.log") as a, ServerProcess(env, log_path=tmp_path / "b.log") as b:
            sessions = threading.local()

            def install(index: int) -> int:
                if not hasattr(sessions, "http"):
                    sessions.http = requests.Session()
                    sessions.http.trust_env = False
                server = (a, b)[index % 2]
                activity = act.install(users[index], fake.service_url())
                return int(sessions.http.post(server.url + "/api/messages", json=activity, timeout=60).status_code)

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=16) as pool:
                statuses = list(pool.map(install, range(PEOPLE)))
            installed_in = time.monotonic() - started
            assert collections.Counter(statuses) == {200: PEOPLE}, (a.log_tail(), b.log_tail())
            assert len(fake.sent()) == PEOPLE  # one welcome each

            started = time.monotonic()
            response = a.api(
                "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [u.upn for u in users], "text": TEXT}
            )
            assert response.status_code == 200, response.text
            location = f"/api/v1/broadcasts/{response.json()['id']}"
            deadline = time.monotonic() + (90 if cosmos_target.local else 600)  # a remote account is slower
            while True:
                report = b.api("GET", location, API_KEY)  # the other process sees the same store
                if report.json().get("status") == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)  # polling the report, with a deadline
            broadcast_in = time.monotonic() - started
            assert report.status_code == 200, (report.text, a.log_tail(), b.log_tail())
            body = report.json()
            assert body["total"] == PEOPLE
            assert body["counts"] == {
                "queued": 0,
                "sending": 0,
                "delivered": PEOPLE,
                "failed": 0,
                "skipped": 0,
                "recalled": 0,
                "read": 0,
                "answered": 0,
            }

    received = collections.Counter(r.conversation_id for r in fake.sent() if r.activity.get("text") == TEXT)
    duplicates = {cid: n for cid, n in received.items() if n > 1}
    missing = {u.conversation_id for u in users} - set(received)
    assert duplicates == {} and missing == set()
    print(f"\n{PEOPLE} installs over 2 processes: {installed_in:.1f} s; broadcast to {PEOPLE}: {broadcast_in:.1f} s")
