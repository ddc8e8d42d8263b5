"""Records no codec of ours can read, written straight into a store's database (SQLite through sqlite3 on
the file, Cosmos DB through the azure-cosmos SDK), the way an older release, another writer or a damaged
disk could leave them: what the quarantine must move aside."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from teams_proactive.bot.store.base import Store

# What the SQLite store held before issue 24 when a caller sent a lone surrogate: Python's json wrote
# the escape, and orjson refuses to read it back ("no low surrogate").
LONE_SURROGATE = "\ud800"
SECRET = "alice@contoso.example private words"  # must never show in a reason, a log line or /metrics


def delivery_doc(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "owner": "key-a",
        "tenant_id": "t1",
        "user_key": "u-planted",
        "recipient": SECRET,
        "content": {"text": SECRET},
        "status": "queued",
        "not_before": 0.0,
        "expires_at": None,
        **fields,
    }


def broadcast_doc(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "owner": "key-a",
        "tenant_id": "t1",
        "content": {"text": SECRET},
        "recipients": [SECRET],
        "status": "preparing",
        "expires_at": None,
        **fields,
    }


def notification_doc(record_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "subscription_id": "s1",
        "body": {"text": SECRET},
        "due": 0.0,
        "expires_at": None,
        **fields,
    }


def reference_doc(record_id: str, **fields: Any) -> dict[str, Any]:
    """``record_id`` is ``tenant|user key|surface``, as Reference.doc_id."""
    tenant_id, user_key, surface = record_id.split("|")
    return {
        "id": surface,
        "pk": f"{tenant_id}|{user_key}",
        "rid": record_id,
        "tenant_id": tenant_id,
        "user_key": user_key,
        "surface": surface,
        "status": "active",
        "upn": SECRET,
        "expires_at": None,
        **fields,
    }


def sqlite_plant(path: str, kind: str, record_id: str, body: str) -> None:
    """Write ``body`` (any text) as the stored JSON of a due record of ``kind``."""
    statements = {
        "delivery": (
            "INSERT INTO deliveries (id, status, not_before, lease_until, broadcast_id, tenant_id, user_key,"
            " expires_at, etag, body) VALUES (?, 'queued', 0, NULL, NULL, 't1', 'u-planted', NULL, 'planted', ?)"
        ),
        "broadcast": "INSERT INTO broadcasts (id, status, expires_at, etag, body) VALUES (?, 'preparing', NULL, 'planted', ?)",
        "notification": (
            "INSERT INTO notifications (id, due, tenant_id, user_key, expires_at, etag, body)"
            " VALUES (?, 0, 't1', 'u-planted', NULL, 'planted', ?)"
        ),
        "reference": (
            "INSERT INTO refs (id, tenant_id, user_key, surface, status, expires_at, etag, body)"
            " VALUES (?, 't1', 'u-planted', 'teams', 'active', NULL, 'planted', ?)"
        ),
    }
    with sqlite3.connect(path) as conn:
        conn.execute(statements[kind], (record_id, body))
    conn.close()


def undecodable_sqlite_body(doc: dict[str, Any]) -> str:
    """``doc`` as Python's json writes it with a lone surrogate in it: valid JSON text orjson cannot read."""
    return json.dumps({**doc, "card_type": LONE_SURROGATE})


CONTAINERS = {
    "delivery": "deliveries",
    "broadcast": "broadcasts",
    "notification": "notifications",
    "reference": "references",
}


async def cosmos_plant(store: Store, kind: str, doc: dict[str, Any]) -> None:
    """Write ``doc`` as it is through the azure-cosmos SDK (no codec of ours in between)."""
    containers = store.containers  # type: ignore[attr-defined]
    if kind == "delivery":
        doc = {"due_at": 0.0, "due_rank": 0.0, **doc}
    await containers[CONTAINERS[kind]].upsert_item(doc)


def without_required_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """A document our model cannot be built from (its required fields gone): undecodable on any backend."""
    keep = ("id", "pk", "rid", "tenant_id", "status", "due", "due_at", "due_rank", "not_before", "expires_at")
    return {k: v for k, v in doc.items() if k in keep}


async def plant_undecodable(store: Store, backend: str, kind: str, record_id: str) -> None:
    """An undecodable due record of ``kind`` in the SQLite or Cosmos DB store."""
    makers = {
        "delivery": delivery_doc,
        "broadcast": broadcast_doc,
        "notification": notification_doc,
        "reference": reference_doc,
    }
    doc = makers[kind](record_id)
    if backend == "sqlite":
        sqlite_plant(store.path, kind, record_id, undecodable_sqlite_body(doc))  # type: ignore[attr-defined]
    elif backend == "cosmos":
        await cosmos_plant(store, kind, without_required_fields(doc))
    else:
        raise ValueError(f"nothing can be planted in the {backend} store")
