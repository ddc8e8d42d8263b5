"""The ``teams-proactive`` command line (DESIGN.md section 4)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from dotenv import load_dotenv
from teams_proactive.bot import text
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import create_store
from teams_proactive.bot.store.base import Store, StoreTooNew

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
    from teams_proactive.connector import create_app
    from teams_proactive.connector.heap import freeze_startup_heap
    from teams_proactive.connector.local_mode import LocalModeRefused, check_bind
    from teams_proactive.connector.logs import configure_logging
    from waitress import serve

    try:
        # Before anything binds: a non-loopback listener without a bot identity is refused outright.
        check_bind(_settings(), args.host)
    except LocalModeRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, logging.DEBUG if args.verbose else logging.INFO)
    app = create_app()
    freeze_startup_heap()
    print(f"teams-proactive listening on http://{args.host}:{args.port} (bot endpoint /api/messages)", flush=True)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="teams-proactive")
    return 0


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
    records = asyncio.run(_with_store(lambda s: s.keys.list_all()))
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
        asyncio.run(_with_store(lambda s: revoke(s, args.name)))
    except KeyError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Key '{args.name}' revoked: requests with it are refused from now on.")
    return 0


def cmd_export_connector(args: argparse.Namespace) -> int:
    from teams_proactive.connector.export import (
        ENTRA_CLIENT_ID_PLACEHOLDER,
        ENTRA_RESOURCE_PLACEHOLDER,
        export_connector,
    )

    host = (args.host or "").strip()
    if host and ("://" in host or "/" in host):
        # Power Platform wants a bare host name ("notify.contoso.com"), the scheme goes in "schemes".
        print("error: --host takes a bare host name such as notify.contoso.com (no https://, no path)", file=sys.stderr)
        return 2
    written = export_connector(
        Path(args.out),
        host=host or None,
        entra_client_id=args.entra_client_id or ENTRA_CLIENT_ID_PLACEHOLDER,
        entra_resource=args.entra_resource or ENTRA_RESOURCE_PLACEHOLDER,
        mcp=args.mcp,
    )
    for path in written:
        print(path)
    return 0


def cmd_export_solution(args: argparse.Namespace) -> int:
    from teams_proactive.connector.export import ENTRA_CLIENT_ID_PLACEHOLDER, ENTRA_RESOURCE_PLACEHOLDER
    from teams_proactive.connector.solution import SolutionError, export_solution

    host = (args.host or "").strip()
    if host and ("://" in host or "/" in host):
        print("error: --host takes a bare host name such as notify.contoso.com (no https://, no path)", file=sys.stderr)
        return 2
    if args.out.lower().endswith(".zip"):
        print(
            "error: --out is a folder: export-solution writes two zips (the connector, then the samples)",
            file=sys.stderr,
        )
        return 2
    if args.auth != "entra" and (args.entra_client_id or args.entra_resource):
        print("error: --entra-client-id and --entra-resource go with --auth entra", file=sys.stderr)
        return 2
    try:
        written = export_solution(
            Path(args.out),
            host or None,
            auth=args.auth,
            entra_client_id=args.entra_client_id or ENTRA_CLIENT_ID_PLACEHOLDER,
            entra_resource=args.entra_resource or ENTRA_RESOURCE_PLACEHOLDER,
        )
    except SolutionError as exc:
        print(f"error: {exc} Nothing was written.", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    if args.auth == "entra" and not args.entra_client_id:
        print(
            "note: the connector has a placeholder client ID; give --entra-client-id and --entra-resource",
            file=sys.stderr,
        )
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from teams_proactive.bot.delivery.service import Caller, MessageRequest
    from teams_proactive.bot.errors import Rejected
    from teams_proactive.bot.runtime import BotRuntime

    if not args.text and not args.card:
        print("error: give --text, --card, or both", file=sys.stderr)
        return 2
    card = _card_file(args.card) if args.card else None
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
        importer = ReferenceImporter(store, tenant_id=args.tenant, only_tenant=bool(args.tenant), progress=progress)
        return await importer.run(items)

    try:
        report = asyncio.run(_with_store(run))
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


def cmd_app_package(args: argparse.Namespace) -> int:
    from teams_proactive.connector.app_package import (
        AppPackageError,
        AppPackageOptions,
        build_package,
        domain_of,
        next_version,
        validate_package,
    )

    settings = _settings()
    bot_id = args.bot_id or settings.app_id
    if not bot_id:
        print(
            "error: the app package needs the bot's Microsoft App ID: set MicrosoftAppId (from the Azure Bot"
            " resource) or pass --bot-id",
            file=sys.stderr,
        )
        return 2
    public = os.environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    website = args.website_url or (public if public.startswith("https://") else "")
    if not website:
        print(
            "error: Teams wants an https website for the app: set PUBLIC_BASE_URL=https://your-host or pass"
            " --website-url",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    try:
        domains = list(dict.fromkeys(args.domain or ([domain_of(public)] if public else [])))
        options = AppPackageOptions(
            bot_id=bot_id,
            app_id=args.app_id,
            version=next_version(out, args.version),
            name=args.name or settings.bot_name,
            developer_name=args.developer_name,
            website_url=website,
            privacy_url=args.privacy_url or website,
            terms_url=args.terms_url or website,
            valid_domains=domains,
            color_icon=Path(args.color_icon).read_bytes() if args.color_icon else None,
            outline_icon=Path(args.outline_icon).read_bytes() if args.outline_icon else None,
        )
    except (AppPackageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    package = build_package(options)
    problems = validate_package(package)
    if problems:
        print("error: the package would be refused by Teams:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(package)
    print(f"{out} (version {options.version}, bot {bot_id}, domains: {', '.join(domains) or 'none'})")
    print(
        "Upload it in Teams (Apps > Manage your apps > Upload an app) or in the Teams admin center."
        " Run this command again for an update: the version goes up by one.",
        file=sys.stderr,
    )
    return 0


# ---- broadcast ----------------------------------------------------------------------------------
RECIPIENT_COLUMNS = ("upn", "userprincipalname", "email", "mail", "recipient", "aadobjectid", "objectid", "id")
_LOOKS_LIKE_RECIPIENT = re.compile(r"@|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-")


def read_recipients(path: Path, column: str | None = None) -> list[str]:
    """Recipients from a CSV: the named column, else a column called upn/email/recipient/..., else the
    first one. A first row that already holds a UPN, email or GUID is data, not a header."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    index = 0
    if column:
        if column.lower() not in header:
            raise ValueError(f"{path} has no column '{column}' (columns: {', '.join(rows[0])})")
        index, rows = header.index(column.lower()), rows[1:]
    elif not _LOOKS_LIKE_RECIPIENT.search(rows[0][0]):
        index = next((header.index(name) for name in RECIPIENT_COLUMNS if name in header), 0)
        rows = rows[1:]
    found = [row[index].strip() for row in rows if len(row) > index and row[index].strip()]
    text.check(found, "--csv")  # a NUL in the file: refused as the API would refuse it
    return found


class BroadcastClient(Protocol):
    def start(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    def report(self, broadcast_id: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalBroadcasts:
    """Runs the broadcast through this process's own bot runtime, on the configured store."""

    def __init__(self) -> None:
        from teams_proactive.bot.delivery.service import Caller
        from teams_proactive.bot.runtime import BotRuntime

        self.runtime = BotRuntime(_settings()).start()
        # The operator at the shell holds the store itself: installIfMissing is theirs to choose.
        self.caller = Caller(name="cli", scopes=frozenset({"broadcast", "install"}))

    def start(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        content = {k: body[k] for k in ("text", "card", "summary") if body.get(k) is not None}
        broadcast, created = self.runtime.call(
            self.runtime.broadcasts.start_broadcast(
                self.caller,
                content=content,
                recipients=body.get("recipients"),
                tenant_id=body.get("tenantId"),
                idempotency_key=body.get("idempotencyKey"),
                groups=body.get("groups"),
                teams=body.get("teams"),
                include_guests=bool(body.get("includeGuests")),
                install_if_missing=bool(body.get("installIfMissing")),
            )
        )
        return self.report(broadcast.id), created

    def report(self, broadcast_id: str) -> dict[str, Any]:
        from teams_proactive.connector.presenters import iso

        report = self.runtime.call(self.runtime.broadcasts.report(self.caller, broadcast_id))
        broadcast = report["broadcast"]
        return {
            "id": broadcast.id,
            "status": broadcast.status,
            "total": broadcast.total,
            "progress": report["progress"],
            "counts": report["counts"],
            "failures": report["failures"],
            "createdAt": iso(broadcast.created_at),
        }

    def close(self) -> None:
        self.runtime.stop()


class RemoteBroadcasts:
    """Runs the broadcast through a deployed service's API (StartBroadcast, then GetBroadcast)."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("X-API-Key", self.api_key)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read() or b"{}").get("error", {})
            except json.JSONDecodeError:
                error = {}
            raise RuntimeError(f"{error.get('code', exc.code)}: {error.get('message', exc.reason)}") from exc

    def start(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        asked_at = time.time()
        _, answer = self._call("POST", "/api/v1/broadcasts", body)
        # The API answers an idempotent repeat with the first broadcast; its age tells them apart
        # (with a margin for the two machines' clocks).
        try:
            created_at = dt.datetime.fromisoformat(str(answer.get("createdAt")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return answer, True
        return answer, created_at > asked_at - 120

    def report(self, broadcast_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/broadcasts/{broadcast_id}")[1]

    def close(self) -> None:
        pass


def progress_line(report: dict[str, Any], width: int = 30) -> str:
    counts = report.get("counts", {})
    progress = float(report.get("progress") or 0.0)
    filled = max(0, min(width, int(width * progress / 100)))
    waiting = counts.get("queued", 0) + counts.get("sending", 0)
    total = report.get("total") or "?"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress:5.1f}%  delivered {counts.get('delivered', 0)}"
        f"  failed {counts.get('failed', 0)}  skipped {counts.get('skipped', 0)}  waiting {waiting}  of {total}"
    )


class ProgressBar:
    """Redraws one line on a terminal; elsewhere (logs, CI) prints a line only when the numbers change."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def show(self, line: str) -> None:
        if line == self.last:
            return
        self.last = line
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()


def cmd_broadcast(args: argparse.Namespace) -> int:
    if not args.text and not args.card:
        print("error: give --text, --card, or both", file=sys.stderr)
        return 2
    groups, teams = args.group or [], args.team or []
    if not args.csv and not groups and not teams:
        print("error: give --csv FILE, --group ENTRA_GROUP_ID or --team TEAM_ID (any mix)", file=sys.stderr)
        return 2
    recipients: list[str] = []
    if args.csv:
        try:
            recipients = read_recipients(Path(args.csv), args.column)
        except (OSError, ValueError, csv.Error) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not recipients:
            print(f"error: {args.csv} holds no recipients", file=sys.stderr)
            return 2
    card = _card_file(args.card) if args.card else None
    body: dict[str, Any] = {"recipients": recipients or None, "text": args.text, "card": card, "summary": args.summary}
    if groups:
        body["groups"] = groups
    if teams:
        body["teams"] = teams
    if args.include_guests:
        body["includeGuests"] = True
    if args.install_if_missing:
        body["installIfMissing"] = True
    if args.tenant:
        body["tenantId"] = args.tenant
    # The same list and message give the same key: running the command again follows the first
    # broadcast instead of messaging everyone twice. --idempotency-key with a new value sends again.
    audience: list[Any] = [recipients, args.text, card, args.summary, args.tenant]
    if groups or teams or args.include_guests or args.install_if_missing:
        audience += [sorted(groups), sorted(teams), args.include_guests, args.install_if_missing]
    fingerprint = json.dumps(audience, sort_keys=True)
    body["idempotencyKey"] = args.idempotency_key or "cli-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    body = {k: v for k, v in body.items() if v is not None}

    client: BroadcastClient
    if args.url:
        api_key = args.api_key or os.environ.get("TEAMS_PROACTIVE_API_KEY") or os.environ.get("CONNECTOR_API_KEY")
        if not api_key:
            print("error: --url needs --api-key (or TEAMS_PROACTIVE_API_KEY) with the broadcast scope", file=sys.stderr)
            return 2
        client = RemoteBroadcasts(args.url, api_key)
    else:
        client = LocalBroadcasts()
    bar = ProgressBar(sys.stderr)
    try:
        try:
            report, created = client.start(body)
        except Exception as exc:
            print(f"error: {_refusal(exc)}", file=sys.stderr)
            return 1
        if not created:
            print(
                f"This broadcast was started before (id {report['id']}, {report.get('createdAt')}); following it."
                " Pass a new --idempotency-key to send it again.",
                file=sys.stderr,
            )
        audience = f"{len(recipients)} recipients"
        if groups or teams:
            audience += f", {len(groups)} groups and {len(teams)} teams (expanded by the service)"
        print(f"broadcast {report['id']}: {audience}", file=sys.stderr)
        if args.no_wait:
            print(report["id"])
            return 0
        while True:
            bar.show(progress_line(report))
            if report.get("status") == "completed":
                break
            time.sleep(args.poll_seconds)  # an operator's polling interval, not synchronisation
            report = client.report(report["id"])
        bar.done()
    except KeyboardInterrupt:
        bar.done()
        print(
            f"\nStopped watching. The broadcast {report['id']} goes on wherever the service runs"
            " (teams-proactive serve, or your deployment).",
            file=sys.stderr,
        )
        return 130
    finally:
        client.close()
    failures = report.get("failures") or []
    counts = report.get("counts", {})
    print(
        f"done: {counts.get('delivered', 0)} delivered, {counts.get('failed', 0)} failed,"
        f" {counts.get('skipped', 0)} skipped (broadcast {report['id']})"
    )
    for failure in failures[: args.show_failures]:
        print(f"  {failure.get('recipient')}: {failure.get('code')}: {failure.get('message')}")
    if len(failures) > args.show_failures:
        print(f"  ... and {len(failures) - args.show_failures} more (use --failures-csv FILE for all)")
    if args.failures_csv:
        with open(args.failures_csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["recipient", "code", "message"])
            for failure in failures:
                writer.writerow([failure.get("recipient"), failure.get("code"), failure.get("message")])
    return 0


def cmd_broadcast_report(args: argparse.Namespace) -> int:
    """Write one row per recipient of a broadcast (delivered, read, answered, recalled) to a CSV file."""
    from teams_proactive.connector import broadcast_report

    async def build(store: Store) -> list[dict[str, Any]] | None:
        broadcast = await store.broadcasts.get(args.broadcast_id)
        if broadcast is None or (args.tenant and broadcast.tenant_id != args.tenant):
            return None
        return await broadcast_report.collect(store, broadcast)

    report_rows = asyncio.run(_with_store(build))
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


def _refusal(exc: Exception) -> str:
    from teams_proactive.bot.errors import Rejected

    if isinstance(exc, Rejected):
        return f"{exc.code}: {exc.message}"
    return str(exc) or type(exc).__name__


def cmd_doctor(args: argparse.Namespace) -> int:
    from teams_proactive.connector.doctor import FAIL, diagnose, render

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    findings = diagnose(os.environ, online=args.online)
    if args.json:
        print(json.dumps([{"level": f.level, "topic": f.topic, "text": f.text} for f in findings], indent=2))
    else:
        print("teams-proactive doctor\n" + render(findings))
    return 1 if any(f.level == FAIL for f in findings) else 0


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
    serve.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get("LOG_FORMAT", "json"),
        help="json (one object per line, default; LOG_FORMAT) or text",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="create, list and revoke connector API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", default=None, help="limit the key to one Entra tenant ID")
    create.add_argument(
        "--scopes", default=None, help="comma-separated: send,broadcast,admin,install (default send; install: may use installIfMissing)"
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

    export = sub.add_parser("export-connector", help="write the custom connector files")
    export.add_argument("--out", default="openapi/")
    export.add_argument(
        "--host", default=None, help="the public host name of the service (no scheme; default: a placeholder)"
    )
    export.add_argument("--entra-client-id", default=None, help="Entra variant: the connector's app (client) ID")
    export.add_argument("--entra-resource", default=None, help="Entra variant: the API's app ID URI (ENTRA_AUDIENCE)")
    export.add_argument(
        "--mcp", action="store_true", help="write the MCP connector variant for Copilot Studio (into OUT/mcp/)"
    )
    export.set_defaults(func=cmd_export_connector)

    solution = sub.add_parser(
        "export-solution",
        help="write two importable Power Platform solutions: the connector, then the sample flows that use it",
    )
    solution.add_argument("--out", required=True, help="the folder to write both zips into")
    solution.add_argument(
        "--host", default=None, help="the public host name of the service (no scheme; each connection can set it)"
    )
    solution.add_argument("--auth", choices=("apikey", "entra"), default="apikey", help="how connections sign in")
    solution.add_argument("--entra-client-id", default=None, help="--auth entra: the connector's app (client) ID")
    solution.add_argument("--entra-resource", default=None, help="--auth entra: the API's app ID URI (ENTRA_AUDIENCE)")
    solution.set_defaults(func=cmd_export_solution)

    send = sub.add_parser("send", help="send one message from the shell")
    send.add_argument("--to", required=True, help="UPN, email or Entra object ID")
    send.add_argument("--text")
    send.add_argument("--card", help="path to an Adaptive Card JSON file")
    send.add_argument("--tenant", default=None)
    send.add_argument("--wait", type=float, default=15.0, help="seconds to wait for delivery")
    send.set_defaults(func=cmd_send)

    package = sub.add_parser("app-package", help="write the Teams app package (manifest + icons) for the bot")
    package.add_argument("--out", default="app.zip", help="the zip to write (default app.zip)")
    package.add_argument(
        "--version", help="app version MAJOR.MINOR.PATCH (default: one above the package already at --out, else 1.0.0)"
    )
    package.add_argument("--bot-id", help="the bot's Microsoft App ID (default MicrosoftAppId)")
    package.add_argument("--app-id", help="the Teams app ID (default: the bot's ID)")
    package.add_argument("--name", help="the app's short name, up to 30 characters (default BOT_NAME)")
    package.add_argument("--developer-name", default="Your organisation", help="shown on the app's details page")
    package.add_argument("--website-url", help="https URL (default PUBLIC_BASE_URL)")
    package.add_argument("--privacy-url", help="https URL (default: the website URL)")
    package.add_argument("--terms-url", help="https URL (default: the website URL)")
    package.add_argument(
        "--domain", action="append", help="a valid domain (repeatable; default: the host of PUBLIC_BASE_URL)"
    )
    package.add_argument("--color-icon", help="your own 192x192 PNG instead of the drawn one")
    package.add_argument("--outline-icon", help="your own 32x32 white-on-transparent PNG")
    package.set_defaults(func=cmd_app_package)

    broadcast = sub.add_parser(
        "broadcast", help="send one message to everyone in a CSV file, Entra groups or teams, with progress"
    )
    broadcast.add_argument("--csv", help="CSV of UPNs, emails or Entra object IDs (one per row)")
    broadcast.add_argument(
        "--group", action="append", metavar="ENTRA_GROUP_ID", help="an Entra group (nested groups included); repeatable"
    )
    broadcast.add_argument("--team", action="append", metavar="TEAM_ID", help="a team's members; repeatable")
    broadcast.add_argument("--include-guests", action="store_true", help="also message guests of groups and teams")
    broadcast.add_argument(
        "--install-if-missing", action="store_true", help="install the app through Graph for people who lack it"
    )
    broadcast.add_argument("--column", help="the CSV column to read (default: upn/email/recipient, else the first)")
    broadcast.add_argument("--text")
    broadcast.add_argument("--card", help="path to an Adaptive Card JSON file")
    broadcast.add_argument("--summary", help="the notification preview text")
    broadcast.add_argument("--tenant", default=None)
    broadcast.add_argument("--idempotency-key", help="default: derived from the list and the message")
    broadcast.add_argument("--no-wait", action="store_true", help="print the broadcast id and return at once")
    broadcast.add_argument("--poll-seconds", type=float, default=2.0, help="how often to refresh the progress")
    broadcast.add_argument("--show-failures", type=int, default=20, help="failures to list at the end")
    broadcast.add_argument("--failures-csv", help="write every failure (recipient, code, message) to this CSV")
    broadcast.add_argument("--url", help="a deployed service's base URL: go through its API instead of the store")
    broadcast.add_argument("--api-key", help="API key for --url (default TEAMS_PROACTIVE_API_KEY)")
    broadcast.set_defaults(func=cmd_broadcast)

    report = sub.add_parser(
        "broadcast-report", help="write who got a broadcast, read it (at least), answered or had it recalled, as CSV"
    )
    report.add_argument("broadcast_id", metavar="ID", help="the broadcast's id")
    report.add_argument("--out", required=True, help="the CSV file to write")
    report.add_argument("--tenant", default=None, help="refuse a broadcast of another tenant")
    report.set_defaults(func=cmd_broadcast_report)

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

    doctor = sub.add_parser("doctor", help="check the configuration, store, credentials and public URL")
    doctor.add_argument("--online", action="store_true", help="also fetch PUBLIC_BASE_URL/healthz")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def _unreadable_argument(args: argparse.Namespace) -> str | None:
    """A refusal naming the option whose value is not valid text (a non-UTF-8 byte in the shell's argument
    arrives as a lone surrogate, which the store could not read back); None when every value is."""
    for name, value in vars(args).items():
        bad = text.find(value, "--" + name.replace("_", "-"))
        if bad is not None:
            return str(bad)
    return None


def _card_file(path: str) -> Any:
    """An Adaptive Card read from a JSON file; its strings are checked as the API checks a body's."""
    card = json.loads(Path(path).read_text(encoding="utf-8"))
    text.check(card, "--card")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    refused = _unreadable_argument(args)
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


if __name__ == "__main__":
    raise SystemExit(main())
