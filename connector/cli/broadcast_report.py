"""``teams-proactive broadcast-report``: one CSV row per recipient of a broadcast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from teams_proactive.bot.store.base import Store
from teams_proactive.connector.cli.common import Subcommands, with_store


def cmd_broadcast_report(args: argparse.Namespace) -> int:
    """Write one row per recipient of a broadcast (delivered, read, answered, recalled) to a CSV file."""
    from teams_proactive.connector import broadcast_report

    async def build(store: Store) -> list[dict[str, Any]] | None:
        broadcast = await store.broadcasts.get(args.broadcast_id)
        if broadcast is None or (args.tenant and broadcast.tenant_id != args.tenant):
            return None
        return await broadcast_report.collect(store, broadcast)

    report_rows = asyncio.run(with_store(build))
    if report_rows is None:
        print(f"error: no broadcast with id '{args.broadcast_id}' in this store", file=sys.stderr)
        return 1
    try:
        with open(args.out, "w", newline="", encoding="utf-8") as handle:
            handle.writelines(broadcast_report.csv_lines(report_rows))
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(broadcast_report.summary(report_rows), file=sys.stderr)
    print(f"wrote {len(report_rows)} rows to {args.out}", file=sys.stderr)
    return 0


def add_broadcast_report(sub: Subcommands) -> None:
    """broadcast-report: the broadcast and the CSV to write."""
    report = sub.add_parser(
        "broadcast-report", help="write who got a broadcast, read it (at least), answered or had it recalled, as CSV"
    )
    report.add_argument("broadcast_id", metavar="ID", help="the broadcast's id")
    report.add_argument("--out", required=True, help="the CSV file to write")
    report.add_argument("--tenant", default=None, help="refuse a broadcast of another tenant")
    report.set_defaults(func=cmd_broadcast_report)
