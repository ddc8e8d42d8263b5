"""StartBroadcast, GetBroadcast, and GetBroadcastStatus (the internal status link of a waited-for broadcast)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from connector.auth import current_caller
from connector.presenters import iso
from connector.schemas import BroadcastSchema, StartBroadcastSchema
from connector.views.common import absolute_url, run, runtime

blp = Blueprint("broadcasts", __name__, url_prefix="/api/v1/broadcasts", description="One message to many people")

RETRY_AFTER_SECONDS = 10


def present(report: dict[str, Any]) -> dict[str, Any]:
    broadcast = report["broadcast"]
    return {
        "id": broadcast.id,
        "status": broadcast.status,
        "total": broadcast.total,
        "progress": report["progress"],
        "counts": report["counts"],
        "failures": report["failures"],
        "cardType": broadcast.card_type,
        "createdAt": iso(broadcast.created_at),
        "completedAt": iso(broadcast.completed_at),
    }


def _pending(report: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    location = absolute_url(f"/api/v1/broadcasts/{report['broadcast'].id}/status")
    return present(report), 202, {"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}


@blp.route("")
class Broadcasts(MethodView):
    @blp.arguments(StartBroadcastSchema)
    @blp.response(200, BroadcastSchema)
    @blp.alt_response(
        202, schema=BroadcastSchema, description="waitForCompletion: Power Automate polls the Location until done."
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
