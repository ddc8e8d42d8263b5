"""Retention that deletes (expired rows purged from SQLite by the running app) and erasure queued off the bot turn.

The purge runs in the dispatcher's loop on its schedule (PURGE_INTERVAL_SECONDS); the test only
waits (with a deadline) until the rows are physically gone, read with a separate connection.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from teams_proactive.bot.delivery.service import Caller, MessageRequest

from tests.conftest import API_KEY
from tests.security.conftest import POLL_SECONDS, final_delivery, finished_broadcast
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_expired_deliveries_broadcasts_and_references_are_physically_purged(
    tmp_path: Path, app_env: dict[str, str], connector: FakeConnector, make_user
) -> None:
    db = tmp_path / "store.db"
    env = {
        **app_env,
        "STORE_URL": f"sqlite:///{db}",
        # Six seconds of retention for deliveries, broadcasts and references (long enough for the
        # checks below that the rows were written; the purge then has to remove them).
        "DELIVERY_RETENTION_DAYS": str(6 / 86400),
        "REFERENCE_TTL_DAYS": str(6 / 86400),
        "PURGE_INTERVAL_SECONDS": "0.5",
    }
    with LiveApp(env) as live:
        adele = make_user()
        assert live.activity(act.install(adele, connector.service_url("a"))).status_code == 200
        sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "PURGE-ME-7a1b"})
        final_delivery(live, sent.json()["id"])
        started = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [adele.upn], "text": "ALL-3c"})
        finished_broadcast(live, started.json()["id"])
        assert _count(db, "deliveries") == 2 and _count(db, "broadcasts") == 1 and _count(db, "refs") == 1

        deadline = time.monotonic() + 30
        while any(_count(db, t) for t in ("deliveries", "broadcasts", "refs", "broadcast_index")):
            assert time.monotonic() < deadline, "the purge never removed the expired rows"
            time.sleep(POLL_SECONDS)
        assert live.runtime.housekeeper.stats["purged"] >= 4
        # Gone from the file's bytes too, while the app runs: the purge compacts after deleting (the
        # WAL still holds the old pages between the two steps, so wait for the compaction).
        secrets = (b"PURGE-ME-7a1b", adele.upn.encode())
        while leftovers := [
            (path.name, secret)
            for path in tmp_path.iterdir()
            if path.name.startswith("store.db")
            for secret in secrets
            if secret in path.read_bytes()
        ]:
            assert time.monotonic() < deadline, f"still in the file's bytes: {leftovers}"
            time.sleep(POLL_SECONDS)
        assert live.api("GET", f"/api/v1/messages/{sent.json()['id']}", API_KEY).status_code == 404


def test_delete_on_uninstall_is_queued_off_the_turn_and_done_by_whichever_dispatcher_runs_next(
    tmp_path: Path, app_env: dict[str, str], connector: FakeConnector, make_user
) -> None:
    env = {**app_env, "DELETE_ON_UNINSTALL": "true"}
    adele = make_user()
    # A process without a dispatcher (a web-only instance): the turn answers, the erasure waits.
    with LiveApp(env, runtime_kwargs={"run_dispatcher": False}) as web_only:
        assert web_only.activity(act.install(adele, connector.service_url("a"))).status_code == 200
        store = web_only.runtime.store
        delivery, _ = web_only.runtime.call(
            web_only.runtime.deliveries.submit(
                Caller(name="cli"), MessageRequest(recipient=adele.upn, text="TEXT-QUEUED-UNINSTALL")
            )
        )
        assert web_only.activity(act.uninstall(adele, connector.service_url("a"))).status_code == 200
        pending = web_only.runtime.call(store.erasures.pending(10))
        assert [p.user_key for p in pending] == [adele.aad_object_id.lower()]
        # Meanwhile nothing more is sent to them: their records say uninstalled.
        refused = web_only.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "x"})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "RecipientUnreachable"
    # The next process with a dispatcher does the erasure from the store.
    with LiveApp(env) as worker:
        store = worker.runtime.store
        deadline = time.monotonic() + 30
        while worker.runtime.call(store.erasures.pending(10)):
            assert time.monotonic() < deadline, "the queued erasure was never done"
            time.sleep(POLL_SECONDS)
        assert worker.api("GET", f"/api/v1/recipients/{adele.upn}", API_KEY).status_code == 404
        erased = worker.runtime.call(store.outbox.get(delivery.id))
        assert erased is not None and erased.content == {} and erased.recipient == "(forgotten)"
        assert worker.runtime.housekeeper.stats["erased"] == 1
