"""``teams-proactive send``: one message from the shell, through this process's bot runtime."""

from __future__ import annotations

import argparse
import sys

from teams_proactive.connector.cli.common import Subcommands, card_file, settings


def cmd_send(args: argparse.Namespace) -> int:
    from teams_proactive.bot.delivery.service import Caller, MessageRequest
    from teams_proactive.bot.errors import Rejected
    from teams_proactive.bot.runtime import BotRuntime

    if not args.text and not args.card:
        print("error: give --text, --card, or both", file=sys.stderr)
        return 2
    card = card_file(args.card) if args.card else None
    runtime = BotRuntime(settings()).start()
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


def add_send(sub: Subcommands) -> None:
    """send: recipient, text or card, and how long to wait."""
    send = sub.add_parser("send", help="send one message from the shell")
    send.add_argument("--to", required=True, help="UPN, email or Entra object ID")
    send.add_argument("--text")
    send.add_argument("--card", help="path to an Adaptive Card JSON file")
    send.add_argument("--tenant", default=None)
    send.add_argument("--wait", type=float, default=15.0, help="seconds to wait for delivery")
    send.set_defaults(func=cmd_send)
