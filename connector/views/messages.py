"""SendMessage, GetMessage, UpdateMessage, DeleteMessage, and GetMessageStatus (the internal status link)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from teams_proactive.bot.cardwait import KIND as CARD_WAIT
from teams_proactive.connector import presenters
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.message_requests import message_request
from teams_proactive.connector.schemas.messages import DeliverySchema, SendMessageSchema, UpdateMessageSchema
from teams_proactive.connector.views.common import absolute_url, run, runtime

blp = Blueprint("messages", __name__, url_prefix="/api/v1/messages", description="Messages to one person")

RETRY_AFTER_SECONDS = 5


def _present(delivery: Any) -> dict[str, Any]:
    return presenters.delivery(delivery, runtime().settings.app_id)


def _pending(delivery: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """202 + the internal status link (DESIGN.md section 6: only work the caller chose to wait for)."""
    location = absolute_url(f"/api/v1/messages/{delivery.id}/status")
    return _present(delivery), 202, {"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}


@blp.route("")
class Messages(MethodView):
    @blp.arguments(SendMessageSchema)
    @blp.response(200, DeliverySchema)
    @blp.alt_response(202, schema=DeliverySchema, description="The wait ran out; the flow engine polls the Location.")
    def post(self, args: dict[str, Any]) -> Any:
        """Send a message to a person

        Sends a text (markdown) and/or Adaptive Card message to one person's personal chat with the bot,
        found by user principal name, email or Microsoft Entra object ID. Answers once Teams accepted it;
        with wait 0, deliverAt or deliverAtLocalTime it answers at once with status queued or scheduled.
        """
        caller = current_caller("send")
        settings = current_app.extensions["teams_proactive.connector_settings"]
        wait = min(float(args.get("wait", settings.default_wait_seconds)), settings.max_wait_seconds)
        request = message_request(args)
        delivery = run(runtime().deliveries.send(caller, request, wait), timeout=wait + 30)
        # A scheduled message, or one the caller chose not to wait for, is a final answer for the flow
        # (and for a Copilot Studio tool, which cannot follow a 202).
        if delivery.is_final or wait <= 0 or delivery.deliver_at:
            return _present(delivery)
        return _pending(delivery)


@blp.route("/<string:message_id>")
class Message(MethodView):
    @blp.response(200, DeliverySchema)
    def get(self, message_id: str) -> Any:
        """Get the status of a message

        Tells whether a message sent with Send a message was delivered, is still queued or scheduled, or
        failed and why. Always answers at once: look at the status field.
        """
        caller = current_caller("send")
        return _present(run(runtime().deliveries.get(caller, message_id)))

    @blp.arguments(UpdateMessageSchema)
    @blp.response(200, DeliverySchema)
    def put(self, args: dict[str, Any], message_id: str) -> Any:
        """Update a message

        Replaces the text and/or card of a message the bot sent, in place in the person's chat (for
        example to show that a task was completed). A message still queued is changed before it leaves.
        """
        caller = current_caller("send")
        content = {k: args[k] for k in ("text", "card", "summary") if k in args}
        return _present(run(runtime().deliveries.update(caller, message_id, content)))

    @blp.response(200, DeliverySchema)
    def delete(self, message_id: str) -> Any:
        """Delete a message

        Removes a message the bot sent from the person's chat, or cancels it if it has not been sent yet.
        """
        caller = current_caller("send")
        deleted = run(runtime().deliveries.delete(caller, message_id))
        if deleted.kind == CARD_WAIT and deleted.responded_at is None and deleted.callback_id is None:
            run(runtime().cards.finished(deleted))  # the flow waiting for it hears "cancelled" now
        return _present(deleted)


@blp.route("/<string:message_id>/status")
class MessageStatus(MethodView):
    @blp.response(200, DeliverySchema)
    @blp.alt_response(202, schema=DeliverySchema, description="Still on its way; poll again after Retry-After.")
    def get(self, message_id: str) -> Any:
        """Wait for a message to be delivered

        The status link of Send a message when its wait ran out: answers 202 while the message is on its
        way and 200 with the message once it was delivered or failed. The flow engine polls it by itself.
        """
        caller = current_caller("send")
        delivery = run(runtime().deliveries.get(caller, message_id))
        return _present(delivery) if delivery.is_final else _pending(delivery)
