"""``teams-proactive quarantine list|clear``: records a loop could not read or process, moved aside (docs/operations.md)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys

from teams_proactive.bot.store.base import QUARANTINE_KINDS, Store
from teams_proactive.connector.cli.common import Subcommands, with_store


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    """Records a loop could not read or process (kind, id, reason, when); never their content."""
    records = asyncio.run(with_store(lambda s: s.quarantine.list(kind=args.kind, limit=args.limit)))
    rows = [r.to_doc() for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("Nothing in quarantine.")
    else:
        for r in records:
            when = dt.datetime.fromtimestamp(r.quarantined_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            print(f"{r.kind:<13} {r.record_id:<40} {when}  {r.reason}")
    return 0


def cmd_quarantine_clear(args: argparse.Namespace) -> int:
    """Delete quarantined records for good: one (KIND ID) or, with --all, every one listed."""
    if args.all == bool(args.record_id):
        print("error: name one record (KIND ID) or pass --all", file=sys.stderr)
        return 2

    async def clear(store: Store) -> int:
        if not args.all:
            return int(await store.quarantine.remove(args.kind, args.record_id))
        removed = 0
        while batch := await store.quarantine.list(kind=args.kind, limit=500):
            removed += sum([await store.quarantine.remove(r.kind, r.record_id) for r in batch])
        return removed

    removed = asyncio.run(with_store(clear))
    if not args.all and not removed:
        print(f"error: no {args.kind} {args.record_id} in quarantine", file=sys.stderr)
        return 2
    print(f"Removed {removed} record(s) from quarantine.")
    return 0


def add_quarantine(sub: Subcommands) -> None:
    """quarantine and its two subcommands."""
    quarantine = sub.add_parser(
        "quarantine", help="list or clear records a loop could not read or process (moved aside, see docs/operations.md)"
    )
    quarantine_sub = quarantine.add_subparsers(dest="quarantine_command", required=True)
    q_list = quarantine_sub.add_parser("list", help="kind, id, when and why; never the record's content")
    q_list.add_argument("--kind", choices=QUARANTINE_KINDS, default=None)
    q_list.add_argument("--limit", type=int, default=100)
    q_list.add_argument("--json", action="store_true")
    q_list.set_defaults(func=cmd_quarantine_list)
    q_clear = quarantine_sub.add_parser("clear", help="delete quarantined records for good")
    q_clear.add_argument("kind", nargs="?", choices=QUARANTINE_KINDS, default=None)
    q_clear.add_argument("record_id", nargs="?", default=None)
    q_clear.add_argument("--all", action="store_true", help="every record (of KIND, when given)")
    q_clear.set_defaults(func=cmd_quarantine_clear)
