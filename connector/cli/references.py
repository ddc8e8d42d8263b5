"""``teams-proactive import-references``: conversation references another bot collected."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from teams_proactive.bot.store.base import Store
from teams_proactive.connector.cli.common import Subcommands, settings, with_store


def cmd_import_references(args: argparse.Namespace) -> int:
    from teams_proactive.bot.imports.importer import ImportReport, ReferenceImporter
    from teams_proactive.bot.imports.sources import blob_items, local_items

    if bool(args.source) == bool(args.blob_container_url):
        print("error: give SOURCE (a file, a folder or -) or --blob-container-url, not both", file=sys.stderr)
        return 2
    started = time.monotonic()

    def progress(report: ImportReport) -> None:
        seconds = max(time.monotonic() - started, 1e-6)
        print(
            f"{report.total:,} read: {report.counts['imported']:,} imported, {report.counts['updated']:,} updated,"
            f" {report.counts['skipped']:,} skipped ({report.total / seconds:,.0f} references/s)",
            file=sys.stderr, flush=True,
        )  # fmt: skip

    async def run(store: Store) -> ImportReport:
        items = blob_items(args.blob_container_url) if args.blob_container_url else local_items(args.source)
        importer = ReferenceImporter(
            store,
            tenant_id=args.tenant,
            only_tenant=bool(args.tenant),
            local_mode=settings().local_mode,
            progress=progress,
        )
        return await importer.run(items)

    try:
        report = asyncio.run(with_store(run))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = max(time.monotonic() - started, 1e-6)
    progress(report)
    # stdout: the counts and every item that was not imported or updated, as JSON (a script reads it).
    body = report.as_json(items=False)
    body["seconds"] = round(seconds, 3)
    body["skippedItems"] = [item for item in report.items if item["result"] == "skipped"][: args.show_skipped]
    print(json.dumps(body, indent=2))
    return 0


def add_import_references(sub: Subcommands) -> None:
    """import-references: a file, folder, stdin or blob container."""
    imports = sub.add_parser(
        "import-references", help="bring in conversation references another bot collected (file, folder, -, blobs)"
    )
    imports.add_argument(
        "source", nargs="?", metavar="SOURCE", help="a JSON or JSON Lines file, a folder of .json files, or - (stdin)"
    )
    imports.add_argument(
        "--blob-container-url",
        help="an Azure Storage blob container URL (with a SAS, or signed in with Entra ID: DefaultAzureCredential)",
    )
    imports.add_argument("--tenant", default=None, help="the tenant for references that name none; others are skipped")
    imports.add_argument("--show-skipped", type=int, default=1000, help="skipped items to list (default 1000)")
    imports.set_defaults(func=cmd_import_references)
