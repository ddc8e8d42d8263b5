"""Upgrades keep data: a store file of the release before schema versions opens with every record,
an older file is migrated once (even by several processes at once), a newer one is refused.

``tests/fixtures/stores/store_v0.db`` was written by commit 88c6d01 (``make_store_v0.py`` beside it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.bot.model import DeliveryStatus, Reference, Surface
from teams_proactive.bot.store.base import PersonKey, StoreTooNew
from teams_proactive.bot.store.sqlite import SqliteStore
from teams_proactive.bot.store.sqlite.schema import SCHEMA_VERSION, migrate, user_version
from teams_proactive.connector import cli, doctor
from teams_proactive.connector.keys import verify

from tests.delivery.conftest import FAST, eventually
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

ALL_STEPS = list(range(1, SCHEMA_VERSION + 1))  # an old file takes every step, once
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores"
FACTS = json.loads((FIXTURES / "store_v0.json").read_text())
TENANT = FACTS["tenant_id"]
ADELE, ALEX, MEGAN = (f"0b6c9d0e-1111-4c4c-8a8a-00000000000{n}" for n in (1, 2, 3))


def old_store(tmp_path: Path) -> Path:
    """A private copy of the committed file (opening it migrates it)."""
    copy = tmp_path / "store.db"
    shutil.copyfile(FIXTURES / "store_v0.db", copy)
    return copy


def test_the_committed_file_predates_versions() -> None:
    with sqlite3.connect(FIXTURES / "store_v0.db") as conn:
        assert user_version(conn) == 0
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='schema_history'").fetchall() == []


async def test_an_old_store_opens_with_every_record(tmp_path: Path) -> None:
    path = old_store(tmp_path)
    store = SqliteStore(str(path))
    await store.open()
    try:
        surfaces = {
            user: [r.surface for r in await store.references.of_person(TENANT, user)] for user in (ADELE, ALEX, MEGAN)
        }
        assert surfaces == {
            ADELE: [Surface.M365_COPILOT, Surface.TEAMS],
            ALEX: [Surface.TEAMS, Surface.TEAMS_COPILOT],
            MEGAN: [Surface.TEAMS],
        }
        assert await store.references.resolve("ADELE@contoso.example", TENANT) == [PersonKey(TENANT, ADELE)]
        page = await store.references.page(tenant_id=TENANT, status=None, surface=None, limit=100, token=None)
        assert len(page.items) == 5 and page.next_token is None

        queued = await store.outbox.get("fixture-queued")
        assert queued is not None and queued.status == DeliveryStatus.QUEUED
        assert queued.content == {"text": "Queued before the upgrade"} and queued.idempotency_key == "fixture-queued-1"
        delivered = await store.outbox.get("fixture-delivered")
        assert delivered is not None and delivered.status == DeliveryStatus.DELIVERED
        assert delivered.message_id == "1700000000001"
        assert await store.outbox.count("fixture-broadcast") == {DeliveryStatus.DELIVERED: 3}

        broadcast = await store.broadcasts.get("fixture-broadcast")
        assert broadcast is not None and broadcast.status == "completed" and broadcast.recipient_chunks == 2
        assert await store.broadcasts.read_chunk("fixture-broadcast", 0) == [
            "adele@contoso.example",
            "alex@contoso.example",
        ]
        assert await store.broadcasts.read_chunk("fixture-broadcast", 1) == ["megan@contoso.example"]
        assert await store.broadcasts.indexed([f"{TENANT}:megan@contoso.example"]) == ["fixture-broadcast"]

        key = await verify(store, FACTS["api_key"])
        assert key is not None and key.id == FACTS["api_key_id"] and key.scopes == ["broadcast", "send"]
        assert [s.id for s in await store.subscriptions.list_all("userMessage")] == ["fixture-subscription"]
        assert await store.leases.read_state("pacing") == {"fixture": True}
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert user_version(conn) == SCHEMA_VERSION
        assert [row[0] for row in conn.execute("SELECT version FROM schema_history")] == ALL_STEPS


def point_at(connector: FakeConnector, path: Path) -> None:
    """The fixture's references name Teams' service URL: point them at the fake Bot Connector."""

    async def repoint() -> None:
        store = SqliteStore(str(path))
        await store.open()

        def moved(ref: Reference) -> Reference:
            ref.service_url = connector.service_url()
            ref.conversation_reference["serviceUrl"] = connector.service_url()
            return ref

        for user in (ADELE, ALEX, MEGAN):
            await store.references.update_person(TENANT, user, moved)
        await store.close()

    asyncio.run(repoint())


def test_a_message_queued_before_the_upgrade_is_sent_after_it(
    tmp_path: Path, app_env: dict[str, str], connector: FakeConnector
) -> None:
    path = old_store(tmp_path)
    point_at(connector, path)
    env = {**app_env, "STORE_URL": f"sqlite:///{path}"}
    with LiveApp(env, runtime_kwargs={"dispatcher_settings": FAST}) as live:

        def status() -> dict[str, Any] | None:
            body = live.api("GET", "/api/v1/messages/fixture-queued", FACTS["api_key"]).json()
            return body if body["status"] in ("delivered", "failed") else None

        final = eventually(status)
        assert final["status"] == "delivered", final
        conversation = f"a:1fixture-teams-{ADELE[-4:]}"
        assert [r.activity.get("text") for r in connector.sent(conversation)] == ["Queued before the upgrade"]

        before = live.api("GET", "/api/v1/messages/fixture-delivered", FACTS["api_key"])
        assert before.status_code == 200 and before.json()["status"] == "delivered"
        report = live.api("GET", "/api/v1/broadcasts/fixture-broadcast", FACTS["api_key"])
        assert report.status_code == 200, report.text
        assert report.json()["counts"]["delivered"] == 3


def newer_store(tmp_path: Path) -> Path:
    path = old_store(tmp_path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()  # the last connection out checkpoints the WAL into the file
    assert wal_bytes(path) == 0
    return path


def wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_store_of_a_newer_release_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = newer_store(tmp_path)
    before = digest(path)
    store = SqliteStore(str(path))
    with pytest.raises(StoreTooNew, match=rf"schema version {SCHEMA_VERSION + 1}, written by a newer release.*does not write to it"):
        await store.open()
    await store.close()
    assert digest(path) == before
    assert wal_bytes(path) == 0


def test_serve_and_doctor_show_the_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = newer_store(tmp_path)
    env = {"STORE_URL": f"sqlite:///{path}"}
    findings = [f for f in doctor.diagnose(env) if "newer release" in f.text]
    assert [f.level for f in findings] == ["FAIL"], doctor.render(doctor.diagnose(env))
    assert "StoreTooNew" in findings[0].text

    monkeypatch.setenv("STORE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("CONNECTOR_API_KEY", "test-bootstrap-key-0123456789")
    # serve opens the store before it listens: the refusal is the last word, no traceback.
    monkeypatch.setattr("waitress.serve", lambda *a, **k: pytest.fail("serve must not listen"))
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "error: The SQLite store" in err and "newer release" in err and "Traceback" not in err


def open_together(path: str, barrier: Any, results: Any) -> None:
    """One process of several starting at once: connect as the store does, then migrate."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    barrier.wait()
    try:
        results.put(migrate(conn, path))
    except Exception as exc:  # reported to the test, which fails on it
        results.put(repr(exc))
    finally:
        conn.close()


def test_migrations_run_once_when_several_processes_open_an_old_store(tmp_path: Path) -> None:
    path = old_store(tmp_path)
    spawn = multiprocessing.get_context("spawn")
    count = 4
    barrier = spawn.Barrier(count)
    results = spawn.Queue()
    workers = [spawn.Process(target=open_together, args=(str(path), barrier, results)) for _ in range(count)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(60)
    assert sorted(outcomes, key=len) == [[], [], [], ALL_STEPS]
    with sqlite3.connect(path) as conn:
        assert user_version(conn) == SCHEMA_VERSION
        assert [v for (v,) in conn.execute("SELECT version FROM schema_history")] == ALL_STEPS
        assert conn.execute("SELECT count(*) FROM refs").fetchone() == (5,)
