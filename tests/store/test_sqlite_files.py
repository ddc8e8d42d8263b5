"""SQLite: what is purged or erased is gone from the bytes of every file of the store, and older files open.

These read the database, its WAL and its shared-memory file as raw bytes: a row that is deleted but
whose text still sits in a free page or an old WAL frame is not gone.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from teams_proactive.bot.model import now
from teams_proactive.bot.recipients import forget, index_keys
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.sqlite import SqliteStore
from teams_proactive.bot.store.sqlite.schema import SCHEMA

from tests.store.conformance.factories import make_broadcast, make_delivery, make_notification, make_ref, write_new


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _holding(folder: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return sorted(name for name, data in _files(folder).items() if needle in data or needle.lower() in data.lower())


async def test_purge_leaves_no_byte_of_expired_rows_in_any_file(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    await store.open()
    t = now()
    secrets = {
        "delivery text": "PURGED-TEXT-4f1e0b",
        "card wait text": "PURGED-CARD-9a2c7d",
        "address": "expired.person@contoso.example",
        "broadcast text": "PURGED-BROADCAST-5d3e",
        "event text": "PURGED-EVENT-2b8f",
    }
    await write_new(store, make_ref(user="gone", upn=secrets["address"], expires_at=t - 1))
    await write_new(store, make_ref(user="kept", upn="kept@contoso.example"))
    await store.outbox.create(
        make_delivery("d1", recipient=secrets["address"], content={"text": secrets["delivery text"]}, expires_at=t - 1)
    )
    await store.outbox.create(make_delivery("w1", kind="cardWait", content={"text": secrets["card wait text"]}))
    # The card wait finished (answered) and its retention ran out since.
    await store.outbox.update("w1", lambda d: setattr(d, "expires_at", t - 1) or d)
    await store.broadcasts.create(make_broadcast("b1", content={"text": secrets["broadcast text"]}, expires_at=t - 1))
    await store.subscriptions.create_notifications([make_notification("n1", body={"text": secrets["event text"]}, expires_at=t - 1)])
    await store.outbox.create(make_delivery("d-kept", content={"text": "KEPT-TEXT"}))
    for secret in secrets.values():
        assert _holding(tmp_path, secret), f"{secret} was never written: the test proves nothing"

    counts = await store.purge_expired(now())
    await store.compact()
    # Gone while the store is still open (the WAL is cut to nothing, not only at the last close)...
    for name, secret in secrets.items():
        assert _holding(tmp_path, secret) == [], f"{name} is still in {_holding(tmp_path, secret)} (store open)"
    await store.close()
    # ...and after a clean stop.

    assert counts["deliveries"] == 2 and counts["references"] == 1 and counts["broadcasts"] == 1
    for name, secret in secrets.items():
        assert _holding(tmp_path, secret) == [], f"{name} is still in {_holding(tmp_path, secret)}"
    assert _holding(tmp_path, "KEPT-TEXT") == ["store.db"]
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM refs").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM broadcasts").fetchone()[0] == 0
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] >= 0


async def test_forget_leaves_no_byte_of_the_person_in_any_file(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    await store.open()
    upn, aad, text = "forget.me@contoso.example", "0f9e8d7c-1111-4222-8333-444455556666", "FORGET-TEXT-7c1d"
    await write_new(store, make_ref(user=aad, upn=upn, email=upn, aad_object_id=aad, name="Forget Me"))
    for n in range(40):  # enough rows for several pages, some overflowing
        await store.outbox.create(
            make_delivery(f"d{n}", user_key=aad, recipient=upn, content={"text": f"{text} {n} " + "x" * 3000})
        )
    await store.broadcasts.create(make_broadcast("b1", recipients=[upn, "someone@contoso.example"]))
    await store.broadcasts.index("b1", index_keys("t1", [upn]), None)
    assert _holding(tmp_path, text) and _holding(tmp_path, upn)

    result = await forget(store, PersonKey("t1", aad))
    for secret in (text, upn, aad, "Forget Me"):  # forget compacts: gone while the store is open
        assert _holding(tmp_path, secret) == [], f"{secret} is still in {_holding(tmp_path, secret)} (store open)"
    await store.close()

    assert result["references"] == 1 and result["deliveries"] == 40 and result["broadcasts"] == 1
    for secret in (text, upn, aad, "Forget Me"):
        assert _holding(tmp_path, secret) == [], f"{secret} is still in {_holding(tmp_path, secret)}"
    assert _holding(tmp_path, "someone@contoso.example") == ["store.db"]


async def test_a_database_of_the_previous_version_opens_and_gains_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    previous = SCHEMA.split("CREATE INDEX IF NOT EXISTS refs_expiry")[0]
    with sqlite3.connect(path) as conn:
        conn.executescript(previous)
    old = SqliteStore(str(path))
    await old.open()
    await write_new(old, make_ref(upn="old@contoso.example"))
    await old.close()
    with sqlite3.connect(path) as conn:
        for table in ("broadcast_index", "erasures"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX refs_expiry")
        conn.execute("DROP INDEX deliveries_expiry")

    store = SqliteStore(str(path))
    await store.open()
    try:
        assert [p.user_key for p in await store.references.resolve("old@contoso.example", None)] == ["u1"]
        await store.erasures.queue(PersonKey("t1", "u1"))
        assert await store.erasures.pending(5) == [PersonKey("t1", "u1")]
        assert await store.purge_expired(now()) == {
            "references": 0, "deliveries": 0, "broadcasts": 0, "notifications": 0, "broadcastIndex": 0, "leases": 0,
            "quarantine": 0,
        }  # fmt: skip
    finally:
        await store.close()
