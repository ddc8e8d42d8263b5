"""``teams-proactive keys create|list|revoke``: the connector's API keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from teams_proactive.connector.cli.common import Subcommands, with_store


def cmd_keys_create(args: argparse.Namespace) -> int:
    from teams_proactive.connector.keys import KeyError_, create_key

    if args.for_samples and args.scopes:
        print("error: give --scopes or --for-samples, not both", file=sys.stderr)
        return 2
    if args.for_samples:
        from teams_proactive.connector.solution import sample_scopes

        scopes = sample_scopes()  # what the samples' one connection reference needs, from their sample.json
    else:
        scopes = [s.strip() for s in (args.scopes or "send").split(",") if s.strip()]
    try:
        record, plaintext = asyncio.run(
            with_store(lambda s: create_key(s, args.name, tenant_id=args.tenant, scopes=scopes))
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
    records = asyncio.run(with_store(lambda s: s.keys.list_all()))
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
    from teams_proactive.connector.keys import KeyError_, revoke

    try:
        asyncio.run(with_store(lambda s: revoke(s, args.name)))
    except KeyError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Key '{args.name}' revoked: requests with it are refused from now on.")
    return 0


def add_keys(sub: Subcommands) -> None:
    """keys and its three subcommands."""
    keys = sub.add_parser("keys", help="create, list and revoke connector API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default=None, help="limit the key to one Entra tenant ID")
    create.add_argument(
        "--scopes",
        default=None,
        help="comma-separated: send,broadcast,admin,install (default send; install: may use installIfMissing)",
    )
    create.add_argument(
        "--for-samples",
        action="store_true",
        help="the scopes every sample flow needs (their one connection shares this key): send,broadcast,admin",
    )
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_keys_revoke)
