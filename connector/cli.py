"""The ``teams-proactive`` command line (DESIGN.md section 4)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from bot.settings import BotSettings
from bot.store import create_store
from bot.store.base import Store

log = logging.getLogger("teams_proactive")


def _settings() -> BotSettings:
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    return BotSettings.from_env()


async def _with_store(action: Any) -> Any:
    store: Store = create_store(_settings())
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from waitress import serve

    from connector import create_app

    app = create_app()
    print(f"teams-proactive listening on http://{args.host}:{args.port} (bot endpoint /api/messages)", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="teams-proactive")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from connector.keys import KeyError_, create_key

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    try:
        record, plaintext = asyncio.run(
            _with_store(lambda s: create_key(s, args.name, tenant_id=args.tenant, scopes=scopes))
        )
    except KeyError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plaintext)
    print(
        f"Key '{record.name}' created (scopes: {', '.join(record.scopes)}; tenant: {record.tenant_id or 'any'})."
        " It is shown only now: store it in the connector connection.",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    records = asyncio.run(_with_store(lambda s: s.list_api_keys()))
    rows = [
        {
            "name": r.name,
            "id": r.id,
            "scopes": r.scopes,
            "tenant": r.tenant_id,
            "revoked": r.revoked_at is not None,
        }
        for r in records
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No API keys yet. Create one with: teams-proactive keys create --name NAME")
    else:
        for row in rows:
            state = "revoked" if row["revoked"] else "active"
            print(f"{row['name']:<24} {state:<8} scopes={','.join(row['scopes'])} tenant={row['tenant'] or 'any'}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from connector.keys import KeyError_, revoke

    try:
        asyncio.run(_with_store(lambda s: revoke(s, args.name)))
    except KeyError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Key '{args.name}' revoked: requests with it are refused from now on.")
    return 0


def cmd_export_connector(args: argparse.Namespace) -> int:
    from connector.export import export_connector

    written = export_connector(Path(args.out), host=args.host)
    for path in written:
        print(path)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from bot.delivery.service import Caller, MessageRequest
    from bot.errors import Rejected
    from bot.runtime import BotRuntime

    if not args.text and not args.card:
        print("error: give --text, --card, or both", file=sys.stderr)
        return 2
    card = json.loads(Path(args.card).read_text()) if args.card else None
    runtime = BotRuntime(_settings()).start()
    try:
        request = MessageRequest(recipient=args.to, text=args.text, card=card, tenant_id=args.tenant)
        caller = Caller(name="cli", scopes=frozenset({"send"}))
        delivery, _ = runtime.call(runtime.deliveries.submit(caller, request))
        delivery = runtime.call(runtime.deliveries.wait(delivery, args.wait), timeout=args.wait + 30)
    except Rejected as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        runtime.stop()
    if delivery.status == "delivered":
        print(f"delivered (message id {delivery.message_id})")
        return 0
    if delivery.status == "failed":
        print(f"failed: {(delivery.error or {}).get('message')}", file=sys.stderr)
        return 1
    print(f"{delivery.status}: still queued; the service delivers it when it runs (id {delivery.id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teams-proactive", description="Proactive Teams messages for flows and agents."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bot endpoint and the connector API on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3978)
    serve.add_argument("--threads", type=int, default=32, help="request threads (default 32)")
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="create, list and revoke connector API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default=None, help="limit the key to one Entra tenant ID")
    create.add_argument("--scopes", default="send", help="comma-separated: send,broadcast,admin (default send)")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_keys_revoke)

    export = sub.add_parser("export-connector", help="write the custom connector files")
    export.add_argument("--out", default="openapi/")
    export.add_argument("--host", default=None, help="the public host name of the service (no scheme)")
    export.set_defaults(func=cmd_export_connector)

    send = sub.add_parser("send", help="send one message from the shell")
    send.add_argument("--to", required=True, help="UPN, email or Entra object ID")
    send.add_argument("--text")
    send.add_argument("--card", help="path to an Adaptive Card JSON file")
    send.add_argument("--tenant", default=None)
    send.add_argument("--wait", type=float, default=15.0, help="seconds to wait for delivery")
    send.set_defaults(func=cmd_send)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # configuration mistakes: say what is wrong, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
