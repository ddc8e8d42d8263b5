"""The webhook triggers: what a flow subscribes with, and the events posted to it."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from teams_proactive.connector.schemas.common import (
    DATE_TIME,
    SUBMITTED_VALUE,
    SURFACE_NAMES,
    DeliveryErrorSchema,
    StrictSchema,
    meta,
    notification_url,
)

EVENT_NAMES = ["userMessage", "cardSubmitted", "installationChanged", "deliveryFailed", "messageRead"]


class TriggerSubscriptionSchema(StrictSchema):
    notificationUrl = notification_url(
        "Notification URL", "The callback URL the flow engine creates for the flow; filled in automatically."
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta(
            "Tenant ID", "Only events of this Microsoft Entra tenant (default: all the key may see).", "advanced"
        ),
    )


class CardTriggerSubscriptionSchema(TriggerSubscriptionSchema):
    cardType = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata=meta(
            "Card Type",
            "Only cards sent with this card type (set on Send a message, Send a card and wait for a response or"
            " a broadcast). Default: every card.",
            "important",
        ),
    )


class SubscribeSchema(TriggerSubscriptionSchema):
    event = fields.String(
        required=True,
        validate=validate.OneOf([*EVENT_NAMES, "any"]),
        metadata=meta(
            "Event",
            "userMessage, cardSubmitted, installationChanged, deliveryFailed, messageRead, or any for all of"
            " them except messageRead.",
            "important",
        ),
    )


class SubscriptionSchema(Schema):
    id = fields.String(required=True, metadata=meta("Subscription ID", "The ID of the webhook subscription."))
    event = fields.String(metadata=meta("Event", "The event the subscription is for."))
    tenantId = fields.String(allow_none=True, metadata=meta("Tenant ID", "The tenant whose events are sent."))
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "Only cards of this type (card trigger)."))
    createdAt = fields.String(
        metadata=meta("Created At", "When the subscription was made (UTC, ISO 8601).", **DATE_TIME)
    )


class EventUserSchema(Schema):
    # Shown under their parent "User": the designer writes "User Name", "User Principal Name".
    id = fields.String(allow_none=True, metadata=meta("Teams ID", "The person's Teams user ID (29:...)."))
    name = fields.String(allow_none=True, metadata=meta("Name", "The person's display name."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("Entra Object ID", "The person's Microsoft Entra object ID.")
    )
    upn = fields.String(allow_none=True, metadata=meta("Principal Name", "The person's sign-in name."))
    email = fields.String(allow_none=True, metadata=meta("Email", "The person's email address."))


class EventEnvelopeSchema(Schema):
    event = fields.String(
        required=True, metadata=meta("Event", "What happened: " + ", ".join(EVENT_NAMES) + ".", enum=EVENT_NAMES)
    )
    eventId = fields.String(
        required=True, metadata=meta("Event ID", "Unique per event and subscription; the same on a retried callback.")
    )
    subscriptionId = fields.String(metadata=meta("Subscription ID", "The subscription this callback is for."))
    occurredAt = fields.String(metadata=meta("Occurred At", "When the event happened (UTC, ISO 8601).", **DATE_TIME))
    tenantId = fields.String(allow_none=True, metadata=meta("Tenant ID", "The Microsoft Entra tenant of the event."))


class PersonEventSchema(EventEnvelopeSchema):
    user = fields.Nested(EventUserSchema, metadata=meta("User", "The person who acted."))
    surface = fields.String(
        allow_none=True,
        metadata=meta("Surface", "Where it happened: teams, teams-copilot or m365-copilot.", enum=SURFACE_NAMES),
    )
    conversationId = fields.String(
        allow_none=True, metadata=meta("Conversation ID", "The conversation it happened in.")
    )
    timestamp = fields.String(
        allow_none=True, metadata=meta("Timestamp", "The activity's own time stamp.", **DATE_TIME)
    )


class UserMessageEventSchema(PersonEventSchema):
    text = fields.String(metadata=meta("Message Text", "What the person wrote to the bot."))


class CardSubmittedEventSchema(PersonEventSchema):
    messageId = fields.String(
        allow_none=True,
        metadata=meta(
            "Message ID",
            "The ID of the message that carried the card (from Send a message, a broadcast or Send a card and wait).",
        ),
    )
    cardId = fields.String(
        allow_none=True,
        metadata=meta("Card ID", "Set when the card came from Send a card and wait for a response: its card ID."),
    )
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "The card type given when sending."))
    broadcastId = fields.String(allow_none=True, metadata=meta("Broadcast ID", "The broadcast the card was part of."))
    teamsMessageId = fields.String(
        allow_none=True, metadata=meta("Teams Activity ID", "Teams' own ID of the card's message.")
    )
    actionTitle = fields.String(
        allow_none=True, metadata=meta("Button", "The title of the button the person pressed, e.g. Approve.")
    )
    verb = fields.String(allow_none=True, metadata=meta("Button Verb", "The verb of an Action.Execute button."))
    values = fields.Dict(
        metadata=meta(
            "Values",
            "What the person submitted: one entry per card input ID, plus the button's data.",
            **SUBMITTED_VALUE,
        )
    )
    data = fields.Dict(
        metadata=meta(
            "Submitted Data",
            "The card's input values and the button's data as Teams posted them (with the bot's own ids).",
            **SUBMITTED_VALUE,
        )
    )
    handledByCardWait = fields.Boolean(
        metadata=meta("Answered a Waiting Card", "True when this answered a card sent with Send a card and wait.")
    )


class InstallationEventSchema(PersonEventSchema):
    action = fields.String(metadata=meta("Action", "installed or uninstalled.", enum=["installed", "uninstalled"]))


class DeliveryFailedEventSchema(EventEnvelopeSchema):
    id = fields.String(metadata=meta("Message ID", "The ID of the message that failed."))
    recipient = fields.String(metadata=meta("Recipient", "The recipient as the sender wrote it."))
    broadcastId = fields.String(
        allow_none=True, metadata=meta("Broadcast ID", "The broadcast the message belongs to, if any.")
    )
    error = fields.Nested(DeliveryErrorSchema, metadata=meta("Error", "Why the message was not delivered."))


class MessageReadEventSchema(EventEnvelopeSchema):
    id = fields.String(metadata=meta("Message ID", "The ID of the message that was read."))
    recipient = fields.String(metadata=meta("Recipient", "The recipient as the sender wrote it."))
    broadcastId = fields.String(
        allow_none=True, metadata=meta("Broadcast ID", "The broadcast the message belongs to, if any.")
    )
    teamsMessageId = fields.String(
        allow_none=True,
        metadata=meta("Teams Activity ID", "Teams' own ID of the message that was read (its activity ID)."),
    )
    conversationId = fields.String(allow_none=True, metadata=meta("Conversation ID", "The chat it was read in."))
    deliveredAt = fields.String(
        allow_none=True, metadata=meta("Delivered At", "When it reached the person's chat (UTC).", **DATE_TIME)
    )
    readAt = fields.String(metadata=meta("Read At", "When the read receipt arrived (UTC).", **DATE_TIME))


class BotEventSchema(PersonEventSchema):
    """Every field any event may carry (the payload of the trigger for all events)."""

    text = fields.String(metadata=meta("Message Text", "userMessage: what the person wrote to the bot."))
    data = fields.Dict(
        metadata=meta("Submitted Data", "cardSubmitted: the card's input values and button data.", **SUBMITTED_VALUE)
    )
    values = fields.Dict(
        metadata=meta("Values", "cardSubmitted: what the person submitted, without the bot's ids.", **SUBMITTED_VALUE)
    )
    messageId = fields.String(allow_none=True, metadata=meta("Card Message ID", "cardSubmitted: the card's message."))
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "cardSubmitted: the card type given."))
    actionTitle = fields.String(allow_none=True, metadata=meta("Button", "cardSubmitted: the button's title."))
    handledByCardWait = fields.Boolean(
        metadata=meta("Answered a Waiting Card", "cardSubmitted: true when it answered Send a card and wait.")
    )
    action = fields.String(
        metadata=meta("Action", "installationChanged: installed or uninstalled.", enum=["installed", "uninstalled"])
    )
    id = fields.String(metadata=meta("Message ID", "deliveryFailed: the ID of the message that failed."))
    recipient = fields.String(metadata=meta("Recipient", "deliveryFailed: the recipient as written."))
    broadcastId = fields.String(allow_none=True, metadata=meta("Broadcast ID", "deliveryFailed: its broadcast."))
    error = fields.Nested(DeliveryErrorSchema, metadata=meta("Error", "deliveryFailed: why it failed."))
