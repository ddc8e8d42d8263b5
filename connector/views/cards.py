"""SendCardAndWait (a webhook action), GetCardResponse, CancelCardWait and GetCardAnswerSchema.

SendCardAndWait follows the webhook-action shape of Microsoft's certified connectors in
microsoft/PowerPlatformConnectors: ``certified-connectors/CompanyConnect`` (ConfirmPrompt,
ChoicePrompt: a body property ``x-ms-notification-url: true`` with ``x-ms-visibility: internal``, the
answer posted to it) and ``certified-connectors/CyberProof`` (CPCreateWebhookExecution: the same
property, a 201, and the callback's schema in ``x-ms-notification-content`` on the path item with
``x-ms-dynamic-schema``), and Microsoft's description of webhook actions in "Subscribe and wait for
events to run workflows using HTTP webhooks in Azure Logic Apps"
(learn.microsoft.com/azure/connectors/connectors-native-webhook: the action registers the run's
callback URL, the run waits without polling until the service calls it, and the engine unsubscribes
when the run is cancelled) and "x-ms-notification-url" in "Create a custom connector with an OpenAPI
extension" (learn.microsoft.com/connectors/custom-connectors/openapi-extensions). The subscribe call
answers 201 with a ``Location`` whose ``DELETE`` is the unsubscribe (as for webhook triggers).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from teams_proactive.bot.cardtags import input_ids
from teams_proactive.bot.cardwait import CardWaitRequest, present
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.schemas.cards import (
    CardAnswerSchemaRequestSchema,
    CardAnswerSchemaResponseSchema,
    CardResponseSchema,
    SendCardAndWaitSchema,
)
from teams_proactive.connector.views.common import absolute_url, run, runtime

blp = Blueprint("cards", __name__, url_prefix="/api/v1/cards", description="Adaptive Cards that wait for an answer")

# The path item's x-ms-notification-content names the callback's schema (read by connector.definition.paths).
WAIT_PATH = "/api/v1/cards/wait"


@blp.route("/wait")
class CardsWait(MethodView):
    @blp.arguments(SendCardAndWaitSchema)
    @blp.response(201, CardResponseSchema, description="Sent; the answer is posted to the callback URL.")
    def post(self, args: dict[str, Any]) -> Any:
        """Send a card and wait for a response

        Posts an Adaptive Card with buttons to one person's Teams chat with the bot and waits, without
        polling, until they answer it; the flow then continues with what they submitted, which button
        they pressed and who answered, and the card in the chat shows the answer. For approvals and
        questions in flows, not for agents.
        """
        caller = current_caller("send")
        request = CardWaitRequest(
            recipient=args["recipient"],
            card=args["card"],
            callback_url=args["notificationUrl"],
            text=args.get("text"),
            summary=args.get("summary"),
            tenant_id=args.get("tenantId"),
            idempotency_key=args.get("idempotencyKey"),
            timeout_minutes=args.get("timeoutMinutes"),
            card_type=args.get("cardType"),
            install_if_missing=bool(args.get("installIfMissing")),
        )
        card = run(runtime().cards.start(caller, request))
        return present(card), 201, {"Location": absolute_url(f"{WAIT_PATH}/{card.id}")}


@blp.route("/wait/<string:card_id>")
class CardWait(MethodView):
    @blp.response(200, CardResponseSchema)
    def get(self, card_id: str) -> Any:
        """Get the response to a card

        Tells whether the person answered a card sent with Send a card and wait for a response, and
        returns the answer once they have. Always answers at once: look at the status field.
        """
        caller = current_caller("send")
        return present(run(runtime().cards.get(caller, card_id)))

    @blp.response(200, CardResponseSchema)
    def delete(self, card_id: str) -> Any:
        """Stop waiting for a response to a card

        Ends the wait of Send a card and wait for a response: its answer is no longer posted to the
        flow. The flow engine calls it by itself when the flow run is cancelled.
        """
        caller = current_caller("send")
        return present(run(runtime().cards.cancel(caller, card_id)))


@blp.route("/answer-schema")
class CardAnswerSchema(MethodView):
    @blp.arguments(CardAnswerSchemaRequestSchema)
    @blp.response(200, CardAnswerSchemaResponseSchema)
    def post(self, args: dict[str, Any]) -> Any:
        """Get the fields of a card answer

        Reads an Adaptive Card and returns the JSON schema of the values a person submits with it: one
        property per input id. The designer calls it to show the card's inputs as outputs.
        """
        current_caller("send")
        return {"schema": answer_schema(args.get("card") or {})}


def answer_schema(card: dict[str, Any]) -> dict[str, Any]:
    """One property per ``Input.*`` id: Toggle values are "true"/"false" strings and Number a number
    only when typed so (Teams posts every input value as the string the card holds)."""
    properties: dict[str, Any] = {}
    for element in input_ids(card):
        label = element.get("label") or element.get("title") or element.get("placeholder") or element["id"]
        properties[element["id"]] = {
            "type": "string",
            "x-ms-summary": str(label),
            "description": f"What the person entered in '{label}' ({element.get('type')}).",
        }
    return {"type": "object", "properties": properties}
