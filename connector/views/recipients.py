"""GetRecipient, ListRecipients, ForgetRecipient."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from teams_proactive.bot.model import Surface
from teams_proactive.bot.recipients import Person, find_person, forget
from teams_proactive.connector import presenters
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.schemas.recipients import (
    MAX_PAGE_SIZE,
    RecipientPageSchema,
    RecipientQuerySchema,
    RecipientSchema,
)
from teams_proactive.connector.views.common import absolute_url, run, runtime

blp = Blueprint("recipients", __name__, url_prefix="/api/v1/recipients", description="People the bot can reach")


@blp.route("")
class Recipients(MethodView):
    # webargs ignores unknown query parameters by default; a mistyped filter must not silently list everyone.
    @blp.arguments(RecipientQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, RecipientPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List people and whether they can be reached

        Lists the people who have a Teams chat with the bot, page by page, optionally only those with a
        given status, for example everyone who blocked or uninstalled the bot.
        """
        caller = current_caller("admin")
        tenant = args.get("tenantId")
        if caller.tenant_id and tenant and tenant != caller.tenant_id:
            # As StartBroadcast and Subscribe answer a key that names another tenant.
            raise ApiError("Forbidden", "This API key is limited to another tenant.", "tenantId")
        tenant = tenant or caller.tenant_id
        size = args.get("pageSize", MAX_PAGE_SIZE)
        store = runtime().store
        page = run(
            store.references.page(
                tenant_id=tenant,
                status=args.get("status"),
                surface=Surface.TEAMS,
                limit=size,
                token=args.get("skipToken"),
            )
        )
        people = []
        for ref in page.items:
            refs = run(store.references.of_person(ref.tenant_id, ref.user_key)) or [ref]
            label = ref.upn or ref.email or ref.aad_object_id or ref.user_id
            people.append(presenters.person(label, Person(key=_key(ref), references=refs)))
        next_link = None
        if page.next_token:
            query = {k: v for k, v in args.items() if k != "skipToken"} | {"skipToken": page.next_token}
            next_link = absolute_url("/api/v1/recipients?" + urlencode(query))
        return {"value": people, "nextLink": next_link}


@blp.route("/<string:recipient>")
class Recipient(MethodView):
    @blp.response(200, RecipientSchema)
    def get(self, recipient: str) -> Any:
        """Check whether a person can be reached

        Tells whether the bot can message this person now (they installed it, did not block it and did not
        opt out), where they use it, and when they last did.
        """
        caller = current_caller("send")
        # Someone known only by object id (e.g. from Microsoft 365 Copilot) is found by UPN through Graph.
        person = run(runtime().deliveries.find(recipient, caller.tenant_id))
        return presenters.person(recipient, person)

    @blp.response(204)
    def delete(self, recipient: str) -> Any:
        """Forget a person

        Erases everything kept about a person: their conversation references and the content of the
        messages sent to them. The bot learns about them again only if they use it again.
        """
        caller = current_caller("admin")
        person = run(find_person(runtime().store, recipient, caller.tenant_id))
        run(forget(runtime().store, person.key))
        return "", 204


def _key(ref: Any) -> Any:
    from teams_proactive.bot.store.base import PersonKey

    return PersonKey(ref.tenant_id, ref.user_key)


__all__ = ["ApiError", "blp"]
