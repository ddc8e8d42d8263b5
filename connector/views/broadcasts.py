"""StartBroadcast, GetBroadcast."""

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


def _answer(report: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    broadcast = report["broadcast"]
    body = {
        "id": broadcast.id,
        "status": broadcast.status,
        "total": broadcast.total,
        "progress": report["progress"],
        "counts": report["counts"],
        "failures": report["failures"],
        "createdAt": iso(broadcast.created_at),
        "completedAt": iso(broadcast.completed_at),
        "expanded": broadcast.expanded,
    }
    if broadcast.install_if_missing:
        body["installs"] = installs_body(report.get("installs") or {})
    if broadcast.status == "completed":
        return body, 200, {}
    location = absolute_url(f"/api/v1/broadcasts/{broadcast.id}")
    return body, 202, {"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}


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
    @blp.response(202, BroadcastSchema)
    def post(self, args: dict[str, Any]) -> Any:
        """Send one message to many people

        Sends the same text and/or Adaptive Card to a list of people (or everyone in the tenant who can be
        reached), as fast as Teams allows. Answers at once with a status link that reports progress and,
        at the end, who did not get the message and why. Use it instead of a loop past a few hundred people.
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
                groups=args.get("groups"),
                teams=args.get("teams"),
                include_guests=bool(args.get("includeGuests")),
                install_if_missing=bool(args.get("installIfMissing")),
            )
        )
        return _answer(run(service.report(caller, broadcast.id)))


@blp.route("/<string:broadcast_id>")
class Broadcast(MethodView):
    @blp.response(200, BroadcastSchema)
    @blp.alt_response(202, schema=BroadcastSchema, description="Still running; poll again after Retry-After.")
    def get(self, broadcast_id: str) -> Any:
        """Get the progress of a broadcast

        Reports how many people got the broadcast, how many are still queued, and who did not get it and
        why. Answers 202 while it runs and 200 once every message is delivered or failed.
        """
        caller = current_caller("broadcast")
        return _answer(run(runtime().broadcasts.report(caller, broadcast_id)))
