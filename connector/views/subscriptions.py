"""The webhook triggers: Subscribe (any event), one subscribe operation per trigger, and Unsubscribe.

Power Automate calls a trigger's subscribe operation when a flow is saved or turned on, with the
flow's callback URL in ``notificationUrl``; it deletes the ``Location`` it got back when the flow is
deleted or turned off. Each trigger has its own path because the payload schema
(``x-ms-notification-content``) belongs to the path item (see ``TRIGGER_PATHS``).
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from teams_proactive.bot.events import BotEvent
from teams_proactive.bot.model import Subscription
from teams_proactive.bot.webhooks import subscribe, unsubscribe
from teams_proactive.connector.auth import current_caller
from teams_proactive.connector.presenters import iso
from teams_proactive.connector.schemas.subscriptions import (
    CardTriggerSubscriptionSchema,
    SubscribeSchema,
    SubscriptionSchema,
    TriggerSubscriptionSchema,
)
from teams_proactive.connector.views.common import absolute_url, run, runtime

PREFIX = "/api/v1/subscriptions"
blp = Blueprint("subscriptions", __name__, url_prefix=PREFIX, description="Webhook triggers")

# Path -> the event schema posted to its subscribers (read by connector.definition.paths).
TRIGGER_PATHS = {
    PREFIX: "BotEvent",
    f"{PREFIX}/user-messages": "UserMessageEvent",
    f"{PREFIX}/card-submissions": "CardSubmittedEvent",
    f"{PREFIX}/installations": "InstallationEvent",
    f"{PREFIX}/delivery-failures": "DeliveryFailedEvent",
    f"{PREFIX}/message-reads": "MessageReadEvent",
}
TRIGGER = {"x-ms-trigger": "single"}


def present(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "event": s.event,
        "tenantId": s.tenant_id,
        "cardType": s.card_type,
        "createdAt": iso(s.created_at),
    }


def _subscribe(event: str, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    caller = current_caller("send")
    subscription = run(
        subscribe(
            runtime().store,
            caller,
            event=event,
            callback_url=args["notificationUrl"],
            tenant_id=args.get("tenantId"),
            policy=runtime().settings.callback_policy,
            card_type=args.get("cardType"),
        )
    )
    return present(subscription), 201, {"Location": absolute_url(f"{PREFIX}/{subscription.id}")}


@blp.route("")
class Subscriptions(MethodView):
    @blp.arguments(SubscribeSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When a bot event happens

        Starts the flow for the chosen kind of bot event (a message to the bot, a card answer, an install
        or removal, a failed delivery) or for any of them, with the event's details.
        """
        return _subscribe(args["event"], args)


@blp.route("/user-messages")
class UserMessages(MethodView):
    @blp.arguments(TriggerSubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When a user sends the bot a message

        Starts the flow when a person writes to the bot in Teams (other than the stop, start and help
        commands), with the text and who wrote it, so the flow can answer or route the request.
        """
        return _subscribe(BotEvent.USER_MESSAGE, args)


@blp.route("/card-submissions")
class CardSubmissions(MethodView):
    @blp.arguments(CardTriggerSubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When a user submits a card

        Starts the flow when a person presses a submit button on an Adaptive Card the bot sent (only cards
        of the chosen card type, if one is given), with the message, the button, the values and who they are.
        """
        return _subscribe(BotEvent.CARD_SUBMITTED, args)


@blp.route("/installations")
class Installations(MethodView):
    @blp.arguments(TriggerSubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When the app is installed or removed

        Starts the flow when a person installs the bot's app in Teams or removes it, for example to
        welcome them or to stop sending them notifications.
        """
        return _subscribe(BotEvent.INSTALLATION, args)


@blp.route("/delivery-failures")
class DeliveryFailures(MethodView):
    @blp.arguments(TriggerSubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When a delivery fails

        Starts the flow when a message could not be delivered after its retries, with the recipient and
        the reason, so someone can follow up another way.
        """
        return _subscribe(BotEvent.DELIVERY_FAILED, args)


@blp.route("/message-reads")
class MessageReads(MethodView):
    @blp.arguments(TriggerSubscriptionSchema)
    @blp.response(201, SubscriptionSchema)
    @blp.doc(**TRIGGER)
    def post(self, args: dict[str, Any]) -> Any:
        """When a person reads a message

        Starts the flow when a read receipt shows that a person read a message the bot sent them, for
        example to stop chasing them. People can turn read receipts off, so some reads are never reported.
        """
        return _subscribe(BotEvent.MESSAGE_READ, args)


@blp.route("/<string:subscription_id>")
class SubscriptionItem(MethodView):
    @blp.response(204)
    def delete(self, subscription_id: str) -> Any:
        """Stop a webhook trigger

        Removes a trigger subscription; the flow engine calls it by itself when the flow is deleted or
        turned off.
        """
        caller = current_caller("send")
        run(unsubscribe(runtime().store, caller, subscription_id))
        return "", 204
