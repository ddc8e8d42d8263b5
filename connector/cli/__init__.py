"""The ``teams-proactive`` command line (DESIGN.md section 4): ``main`` here, one module per command group."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from teams_proactive.bot.store.base import StoreTooNew
from teams_proactive.connector.cli import (
    broadcast,
    broadcast_report,
    doctor,
    export,
    keys,
    quarantine,
    references,
    send,
    serve,
)
from teams_proactive.connector.cli.common import unreadable_argument

# Every command, in the order ``teams-proactive --help`` lists them; each adds its parser and handler.
COMMANDS = (
    serve.add_serve,
    keys.add_keys,
    quarantine.add_quarantine,
    export.add_export_connector,
    export.add_export_solution,
    send.add_send,
    export.add_app_package,
    broadcast.add_broadcast,
    broadcast_report.add_broadcast_report,
    references.add_import_references,
    doctor.add_doctor,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teams-proactive", description="Proactive Teams messages for flows and agents."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    refused = unreadable_argument(args)
    if refused is not None:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # configuration mistakes: say what is wrong, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreTooNew as exc:  # a newer release's store: nothing was written; say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
