"""StartBroadcast, GetBroadcast, UpdateBroadcast, RecallBroadcast, ListBroadcastRecipients, and GetBroadcastStatus
(the internal status link of a waited-for broadcast)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from teams_proactive.bot.delivery import campaigns
from teams_proactive.bot.delivery.engagement import recipient_rows, report_row
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.presenters import iso
from teams_proactive.connector.schemas import (
    BroadcastRecipientPageSchema,
    BroadcastRecipientQuerySchema,
    BroadcastSchema,
    StartBroadcastSchema,
    UpdateBroadcastSchema,
)
from teams_proactive.connector.views.common import absolute_url, run, runtime

blp = Blueprint("broadcasts", __name__, url_prefix="/api/v1/broadcasts", description="One message to many people")

RETRY_AFTER_SECONDS = 10
# An answer must stay far below Copilot Studio's 500 KB limit for a tool's response: 250 failures of
# at most ~800 bytes each is ~200 KB. counts.failed and counts.skipped always give the totals.
MAX_LISTED_FAILURES = 250


def present(report: dict[str, Any]) -> dict[str, Any]:
    broadcast = report["broadcast"]
    engagement = report["engagement"]
    counts = dict(report["counts"], read=engagement.read, answered=engagement.answered)
    body = {
        "id": broadcast.id,
        "status": broadcast.status,
        "total": broadcast.total,
        "progress": report["progress"],
        "counts": counts,
        "failures": report["failures"][:MAX_LISTED_FAILURES],
        "cardType": broadcast.card_type,
        "createdAt": iso(broadcast.created_at),
        "completedAt": iso(broadcast.completed_at),
        "engagement": {
            "read": engagement.read,
            "answered": engagement.answered,
            "firstReadAt": iso(engagement.first_read_at),
            "lastReadAt": iso(engagement.last_read_at),
            "readTimeline": [{"at": iso(at), "reads": n} for at, n in engagement.timeline],
        },
        "update": _change(report.get("update")),
        "recall": _change(report.get("recall")),
        "expanded": broadcast.expanded,
    }
    if broadcast.install_if_missing:
        body["installs"] = installs_body(report.get("installs") or {})
    return body


def _change(progress: dict[str, Any] | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return dict(progress, requestedAt=iso(progress["requestedAt"]), completedAt=iso(progress["completedAt"]))


def _pending(report: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    location = absolute_url(f"/api/v1/broadcasts/{report['broadcast'].id}/status")
    return present(report), 202, {"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}


def installs_body(outcomes: dict[str, int]) -> dict[str, Any]:
    """Install outcomes of a broadcast's deliveries, as GetBroadcast shows them."""
    failures = {code: n for code, n in outcomes.items() if code not in ("installed", "alreadyInstalled")}
    return {
        "installed": outcomes.get("installed", 0),
        "alreadyInstalled": outcomes.get("alreadyInstalled", 0),
        "failed": sum(failures.values()),
        "failures": [{"code": code, "count": n} for code, n in sorted(failures.items())],
    }


@blp.route("")
class Broadcasts(MethodView):
    @blp.arguments(StartBroadcastSchema)
    @blp.response(200, BroadcastSchema)
    @blp.alt_response(
        202, schema=BroadcastSchema, description="waitForCompletion: the flow engine polls the Location until done."
    )
    def post(self, args: dict[str, Any]) -> Any:
        """Send one message to many people

        Sends the same text and/or Adaptive Card to a list of people (or everyone in the tenant who can be
        reached), as fast as Teams allows. Answers at once with the broadcast's ID and progress; with
        waitForCompletion the action waits until every message is done. Use it instead of a loop past a
        few hundred people.
        """
        caller = current_caller("broadcast")
        content = {k: args[k] for k in ("text", "card", "summary") if k in args}
        service = runtime().broadcasts
        broadcast, _ = run(
            service.start_broadcast(
                caller,
                content=content,
                recipients=args.get("recipients") if not args.get("allActiveUsers") else None,
                tenant_id=args.get("tenantId"),
                idempotency_key=args.get("idempotencyKey"),
                card_type=args.get("cardType"),
                groups=args.get("groups"),
                teams=args.get("teams"),
                include_guests=bool(args.get("includeGuests")),
                install_if_missing=bool(args.get("installIfMissing")),
            )
        )
        report = run(service.report(caller, broadcast.id))
        if args.get("waitForCompletion") and report["broadcast"].status != "completed":
            return _pending(report)
        return present(report)


@blp.route("/<string:broadcast_id>")
class Broadcast(MethodView):
    @blp.response(200, BroadcastSchema)
    def get(self, broadcast_id: str) -> Any:
        """Get the progress of a broadcast

        Reports how many people got the broadcast, how many are still queued, and who did not get it and
        why. Always answers at once, also while the broadcast runs: look at the status and progress fields.
        """
        caller = current_caller("broadcast")
        return present(run(runtime().broadcasts.report(caller, broadcast_id)))

    @blp.arguments(UpdateBroadcastSchema)
    @blp.response(200, BroadcastSchema)
    def put(self, args: dict[str, Any], broadcast_id: str) -> Any:
        """Change the message of a broadcast

        Replaces the text and/or Adaptive Card for everyone in the broadcast: messages already delivered
        are changed in each person's chat, and those still waiting go out with the new text. Runs in the
        background at the same pace as sending; Get the progress of a broadcast shows how far it got.
        """
        caller = current_caller("broadcast")
        content = {k: args[k] for k in ("text", "card", "summary") if k in args}
        service = runtime().broadcasts
        run(
            campaigns.update_broadcast(
                runtime().store, caller, broadcast_id, content, max_message_kb=service.max_message_kb
            )
        )
        service.wake()
        return present(run(service.report(caller, broadcast_id)))

    @blp.response(200, BroadcastSchema)
    def delete(self, broadcast_id: str) -> Any:
        """Recall a broadcast

        Withdraws a broadcast from everyone: messages still waiting are never sent, and delivered ones are
        deleted from each person's chat, in the background at the same pace as sending. Recalled messages
        are counted apart from failed ones, and a person who already read it shows both.
        """
        caller = current_caller("broadcast")
        service = runtime().broadcasts
        run(campaigns.recall_broadcast(runtime().store, caller, broadcast_id))
        service.wake()
        return present(run(service.report(caller, broadcast_id)))


@blp.route("/<string:broadcast_id>/recipients")
class BroadcastRecipients(MethodView):
    @blp.arguments(BroadcastRecipientQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, BroadcastRecipientPageSchema)
    def get(self, args: dict[str, Any], broadcast_id: str) -> Any:
        """List the people of a broadcast and what they did

        Lists each person of a broadcast page by page: whether the message was delivered, read, answered
        or recalled. Read receipts can be turned off, so noReceipt means "no receipt yet", not unread.
        """
        caller = current_caller("broadcast")
        service = runtime().broadcasts
        run(service.visible(caller, broadcast_id))
        size = args.get("pageSize", 100)
        page = run(
            recipient_rows(
                runtime().store,
                broadcast_id,
                state=args.get("readState"),
                limit=size,
                token=args.get("skipToken"),
            )
        )
        next_link = None
        if page.next_token:
            query = {k: v for k, v in args.items() if k != "skipToken"} | {"skipToken": page.next_token}
            next_link = absolute_url(f"/api/v1/broadcasts/{broadcast_id}/recipients?" + urlencode(query))
        return {"value": [report_row(d) for d in page.items], "nextLink": next_link}



@blp.route("/<string:broadcast_id>/status")
class BroadcastStatus(MethodView):
    @blp.response(200, BroadcastSchema)
    @blp.alt_response(202, schema=BroadcastSchema, description="Still running; poll again after Retry-After.")
    def get(self, broadcast_id: str) -> Any:
        """Wait for a broadcast to complete

        The status link of Send one message to many people with waitForCompletion: answers 202 while the
        broadcast runs and 200 with its report once every message is delivered, failed or skipped.
        """
        caller = current_caller("broadcast")
        report = run(runtime().broadcasts.report(caller, broadcast_id))
        return present(report) if report["broadcast"].status == "completed" else _pending(report)
