"""ListReachablePeople: the recipient picker's choices (an internal operation the designer calls)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from teams_proactive.bot.model import ReferenceStatus, Surface
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.schemas.people import PeoplePageSchema, PeopleQuerySchema
from teams_proactive.connector.views.common import run, runtime

blp = Blueprint("people", __name__, url_prefix="/api/v1/people", description="The recipient picker")

# A picker is read by a person: the first few hundred matches are plenty, and the scan stays bounded.
MAX_CHOICES = 200
MAX_SCANNED = 5000
PAGE = 500


@blp.route("")
class People(MethodView):
    @blp.arguments(PeopleQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, PeoplePageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List people the bot can message

        Lists people who have the bot in Teams and can be messaged now (display name and user principal
        name), for the Recipient field's picker; a typed address or dynamic content stays allowed.
        """
        caller = current_caller("send")
        needle = (args.get("search") or "").strip().lower()
        store = runtime().store
        choices: list[dict[str, Any]] = []
        token: str | None = None
        scanned = 0
        while len(choices) < MAX_CHOICES and scanned < MAX_SCANNED:
            page = run(
                store.references.page(
                    tenant_id=caller.tenant_id,
                    status=ReferenceStatus.ACTIVE,
                    surface=Surface.TEAMS,
                    limit=PAGE,
                    token=token,
                )
            )
            scanned += len(page.items)
            for ref in page.items:
                value = ref.upn or ref.email or ref.aad_object_id
                if ref.opted_out or not value:
                    continue
                text = " ".join(filter(None, (ref.name, ref.upn, ref.email))).lower()
                if needle and needle not in text:
                    continue
                label = f"{ref.name} ({value})" if ref.name else value
                choices.append({"upn": value, "name": ref.name, "label": label})
            token = page.next_token
            if not token:
                break
        choices.sort(key=lambda c: c["label"].lower())
        return {"value": choices[:MAX_CHOICES]}
