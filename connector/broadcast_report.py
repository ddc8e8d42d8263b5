"""The per-person broadcast report as CSV (CLI ``broadcast-report`` and the dashboard download).

One row per recipient: the broadcast's deliveries, then the recipients it skipped. ``readState`` is
``answered``, ``read``, ``noReceipt`` or ``notDelivered``; ``noReceipt`` means no read receipt came,
which people can turn off: such a person may well have read it. The summary line says "read at least".
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from teams_proactive.bot.delivery.engagement import PAGE, read_state, report_row, skipped_row
from teams_proactive.bot.model import Broadcast, DeliveryStatus
from teams_proactive.bot.store.base import Store

COLUMNS = [
    "recipient", "status", "readState", "deliveredAt", "readAt", "answeredAt", "recalledAt", "revision",
    "errorCode", "messageId",
]  # fmt: skip


async def rows(store: Store, broadcast: Broadcast) -> AsyncIterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = await store.outbox.page(broadcast_id=broadcast.id, limit=PAGE, token=token)
        for d in page.items:
            yield report_row(d)
        token = page.next_token
        if not token:
            break
    for skip in broadcast.skipped:
        yield skipped_row(skip)


async def collect(store: Store, broadcast: Broadcast) -> list[dict[str, Any]]:
    return [row async for row in rows(store, broadcast)]


def summary(report_rows: list[dict[str, Any]]) -> str:
    """One line a communications team can quote: reads are a lower bound."""
    states = [r["readState"] for r in report_rows]
    statuses = [r["status"] for r in report_rows]
    delivered = sum(1 for r in report_rows if r["deliveredAt"])
    read = states.count("read") + states.count("answered")
    return (
        f"{len(states)} recipients: {delivered} delivered, at least {read} read"
        f" ({states.count('answered')} answered), {states.count('noReceipt')} without a read receipt"
        f" (receipts can be turned off, so they may have read it), {statuses.count(DeliveryStatus.FAILED)} failed,"
        f" {statuses.count('skipped')} skipped, {statuses.count(DeliveryStatus.RECALLED)} recalled."
    )


def cell(value: Any) -> str:
    """Recipients are typed by people: a leading = + - @ would run as a formula in Excel, so quote it."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(report_rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in report_rows:
        writer.writerow([cell(row[c]) for c in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


__all__ = ["COLUMNS", "collect", "csv_lines", "read_state", "rows", "summary"]
