"""``teams-proactive serve``: the bot endpoint and the connector API on one port."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from teams_proactive.connector.cli.common import Subcommands, settings


def cmd_serve(args: argparse.Namespace) -> int:
    from teams_proactive.connector import create_app
    from teams_proactive.connector.heap import freeze_startup_heap
    from teams_proactive.connector.local_mode import LocalModeRefused, check_bind
    from teams_proactive.connector.logs import configure_logging
    from waitress import serve

    try:
        # Before anything binds: a non-loopback listener without a bot identity is refused outright.
        check_bind(settings(), args.host)
    except LocalModeRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    app = create_app()
    freeze_startup_heap()
    print(f"teams-proactive listening on http://{args.host}:{args.port} (bot endpoint /api/messages)", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="teams-proactive")
    return 0


def add_serve(sub: Subcommands) -> None:
    """serve: its options (host, port, threads, log format)."""
    serve = sub.add_parser("serve", help="run the bot endpoint and the connector API on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3978)
    serve.add_argument("--threads", type=int, default=32, help="request threads (default 32)")
    serve.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get("LOG_FORMAT", "json"),
        help="json (one object per line, default; LOG_FORMAT) or text",
    )
    serve.set_defaults(func=cmd_serve)
