"""SendCardAndWait and its status link (the Power Automate asynchronous pattern)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from bot.cardwait import CardWaitRequest
from bot.model import Delivery, DeliveryStatus
from connector.auth import current_caller
from connector.errors import ApiError
from connector.presenters import iso
from connector.schemas import CardResponseSchema, SendCardAndWaitSchema
from connector.views.common import absolute_url, run, runtime

blp = Blueprint("cards", __name__, url_prefix="/api/v1/cards", description="Adaptive Cards that wait for an answer")

# Power Automate polls every 20 s without it; a person answers in minutes, so there is no hurry.
RETRY_AFTER_SECONDS = 15


def present(d: Delivery) -> dict[str, Any]:
    response = d.response or {}
    if d.responded_at is not None:
        status = "responded"
    elif d.status == DeliveryStatus.DELIVERED:
        status = "waiting"
    else:
        status = "sending"
    return {
        "id": d.id,
        "status": status,
        "recipient": d.recipient,
        "response": response.get("values") if d.responded_at is not None else None,
        "action": response.get("action"),
        "verb": response.get("verb"),
        "respondedBy": d.responded_by,
        "respondedAt": iso(d.responded_at),
        "conversationId": d.conversation_id,
        "messageId": d.message_id,
        "createdAt": iso(d.created_at),
    }


def _answer(d: Delivery) -> tuple[dict[str, Any], int, dict[str, str]]:
    if d.responded_at is not None:
        return present(d), 200, {}
    if d.deleted_at is not None:
        raise ApiError("MessageNotDelivered", "The card was deleted before anyone answered it.", "id")
    if d.status == DeliveryStatus.FAILED:
        reason = (d.error or {}).get("message") or "Teams did not accept it."
        raise ApiError("MessageNotDelivered", f"The card could not be delivered: {reason}", "recipient")
    location = absolute_url(f"/api/v1/cards/wait/{d.id}")
    return present(d), 202, {"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}


@blp.route("/wait")
class CardsWait(MethodView):
    @blp.arguments(SendCardAndWaitSchema)
    @blp.response(200, CardResponseSchema)
    @blp.alt_response(202, description="Sent; waiting for the person to answer. Power Automate polls the Location.")
    def post(self, args: dict[str, Any]) -> Any:
        """Send a card and wait for a response

        Posts an Adaptive Card with buttons to one person's Teams chat with the bot and waits until they
        answer it, then returns what they submitted, which button they pressed and who answered; the card
        in the chat then shows the answer. For approvals and questions in flows, not for agents.
        """
        caller = current_caller("send")
        request = CardWaitRequest(
            recipient=args["recipient"],
            card=args["card"],
            text=args.get("text"),
            summary=args.get("summary"),
            tenant_id=args.get("tenantId"),
            idempotency_key=args.get("idempotencyKey"),
            install_if_missing=bool(args.get("installIfMissing")),
        )
        return _answer(run(runtime().cards.start(caller, request)))


@blp.route("/wait/<string:card_id>")
class CardWait(MethodView):
    @blp.response(200, CardResponseSchema)
    @blp.alt_response(202, description="No answer yet; poll again after Retry-After.")
    def get(self, card_id: str) -> Any:
        """Get the response to a card

        Tells whether the person answered a card sent with Send a card and wait for a response, and
        returns the answer: 202 while nobody has answered, 200 with the submitted values once they have.
        """
        caller = current_caller("send")
        return _answer(run(runtime().cards.get(caller, card_id)))
