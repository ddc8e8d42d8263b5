"""``teams-proactive broadcast``: one message to a CSV's people, groups or teams, with progress."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol, TextIO

from teams_proactive.bot import text
from teams_proactive.connector.cli.common import Subcommands, card_file, settings

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

        self.runtime = BotRuntime(settings()).start()
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
    card = card_file(args.card) if args.card else None
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


def _refusal(exc: Exception) -> str:
    from teams_proactive.bot.errors import Rejected

    if isinstance(exc, Rejected):
        return f"{exc.code}: {exc.message}"
    return str(exc) or type(exc).__name__


def add_broadcast(sub: Subcommands) -> None:
    """broadcast: the audience, the message, and how to follow it."""
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
