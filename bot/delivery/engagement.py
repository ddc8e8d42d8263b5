"""What a broadcast achieved: reads, card answers, and the progress of an update or recall, overall and per person.

Read receipts reach the bot only from people who left them on in Teams, so "read" is a lower bound:
a delivered message without a receipt is reported as ``noReceipt`` ("no receipt yet"), never as
"not seen". A card answer proves the person saw the message, receipt or not, so it counts as read.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot.delivery.campaigns import operations_key
from teams_proactive.bot.delivery.operations import RECALL_KIND, UPDATE_KIND
from teams_proactive.bot.model import Broadcast, Delivery, DeliveryStatus
from teams_proactive.bot.store.base import Page, Store

PAGE = 500  # rows per page when the report is read out (connector/broadcast_report.py)
TIMELINE_BUCKET_SECONDS = 3600  # reads per hour: what a communications team looks at
MAX_TIMELINE_POINTS = 24 * 14  # two weeks of hours; older buckets are merged into the first

# Per person: how far we know the message got. The order is the order of the report's columns.
READ_STATES = ("answered", "read", "noReceipt", "notDelivered")


def read_state(d: Delivery) -> str:
    """answered, read, noReceipt (delivered, no read receipt: receipts may be off) or notDelivered."""
    if d.responded_at is not None:
        return "answered"
    if d.read_at is not None:
        return "read"
    if d.delivered_at is not None and d.status in (DeliveryStatus.DELIVERED, DeliveryStatus.RECALLED):
        return "noReceipt"
    return "notDelivered"


def first_seen(d: Delivery) -> float | None:
    """When we first knew the person saw it: the read receipt, or the card answer if that came first."""
    times = [t for t in (d.read_at, d.responded_at) if t is not None]
    return min(times) if times else None


async def operations_progress(store: Store, broadcast: Broadcast) -> dict[str, Any]:
    """The update and recall progress shown in GetBroadcast (None for a change never asked for)."""
    result: dict[str, Any] = {"update": None, "recall": None}
    if broadcast.update_requested_at is not None:
        counts = await store.outbox.count(operations_key(broadcast.id, UPDATE_KIND, broadcast.revision))
        result["update"] = _progress(
            counts, broadcast.update_requested_at, broadcast.update_completed_at, revision=broadcast.revision
        )
    if broadcast.recall_requested_at is not None:
        counts = await store.outbox.count(operations_key(broadcast.id, RECALL_KIND))
        result["recall"] = _progress(counts, broadcast.recall_requested_at, broadcast.recall_completed_at)
    return result


def _progress(
    counts: dict[str, int], requested_at: float, completed_at: float | None, *, revision: int | None = None
) -> dict[str, Any]:
    pending = sum(counts.get(s, 0) for s in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED, DeliveryStatus.SENDING))
    progress = {
        "status": "completed" if completed_at is not None else "running",
        "changed": counts.get(DeliveryStatus.DELIVERED, 0),  # delivered messages changed in the chat
        "pending": pending,
        "failed": counts.get(DeliveryStatus.FAILED, 0),
        "requestedAt": requested_at,
        "completedAt": completed_at,
    }
    if revision is not None:
        progress["revision"] = revision
    return progress


@dataclass(slots=True)
class Engagement:
    delivered: int  # reached the chat (including messages recalled later)
    read: int  # at least this many read it (receipt or card answer)
    answered: int
    first_read_at: float | None
    last_read_at: float | None
    timeline: list[tuple[float, int]]  # (bucket start, reads first seen in it)


async def engagement(store: Store, broadcast_id: str) -> Engagement:
    """Reads and answers of the broadcast's delivered messages, counted by the store (25,000 at most)."""
    tally = await store.outbox.tally_reads(broadcast_id)
    seen = tally.seen
    buckets = Counter(int(t // TIMELINE_BUCKET_SECONDS) * TIMELINE_BUCKET_SECONDS for t in seen)
    timeline = sorted(buckets.items())
    if len(timeline) > MAX_TIMELINE_POINTS:
        head, timeline = timeline[: -MAX_TIMELINE_POINTS + 1], timeline[-MAX_TIMELINE_POINTS + 1 :]
        timeline.insert(0, (head[0][0], sum(n for _, n in head)))
    return Engagement(
        delivered=tally.delivered,
        read=len(seen),
        answered=tally.answered,
        first_read_at=min(seen) if seen else None,
        last_read_at=max(seen) if seen else None,
        timeline=[(float(at), n) for at, n in timeline],
    )


async def recipient_rows(
    store: Store, broadcast_id: str, *, state: str | None = None, limit: int = 100, token: str | None = None
) -> Page[Delivery]:
    """A page of the broadcast's deliveries, optionally only those in one read state."""
    if state is None:
        return await store.outbox.page(broadcast_id=broadcast_id, limit=limit, token=token)
    # Filtered in memory: pages stay at most ``limit`` long, and a token resumes after the last row looked at.
    items: list[Delivery] = []
    while True:
        page = await store.outbox.page(broadcast_id=broadcast_id, limit=limit, token=token)
        for index, d in enumerate(page.items):
            if read_state(d) == state:
                items.append(d)
                if len(items) == limit:
                    more = index < len(page.items) - 1 or page.next_token is not None
                    return Page(items, d.id if more else None)
        token = page.next_token
        if not token:
            return Page(items, None)


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_row(d: Delivery) -> dict[str, Any]:
    """One person's line in the broadcast report (API and CSV)."""
    return {
        "recipient": d.recipient,
        "messageId": d.id,
        "status": d.status,
        "readState": read_state(d),
        "deliveredAt": iso(d.delivered_at),
        "readAt": iso(d.read_at),
        "answeredAt": iso(d.responded_at),
        "recalledAt": iso(d.recalled_at),
        "revision": d.revision,
        "errorCode": (d.error or {}).get("code") if d.status == DeliveryStatus.FAILED else None,
    }


def skipped_row(skip: dict[str, Any]) -> dict[str, Any]:
    """A recipient the broadcast never sent to (unknown, opted out, unreachable, duplicate)."""
    return {
        "recipient": skip.get("recipient"),
        "messageId": None,
        "status": "skipped",
        "readState": "notDelivered",
        "deliveredAt": None,
        "readAt": None,
        "answeredAt": None,
        "recalledAt": None,
        "revision": None,
        "errorCode": skip.get("code"),
    }
