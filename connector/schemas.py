"""Request and response schemas: one source for validation, serialisation and the connector definition.

Field metadata carries what the Power Automate designer shows: ``x-ms-summary`` (the label),
``description`` (the help text) and ``x-ms-visibility``.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
GUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def meta(summary: str, description: str, visibility: str | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"x-ms-summary": summary, "description": description, **extra}
    if visibility:
        data["x-ms-visibility"] = visibility
    return data


def check_card(card: Any) -> None:
    if not isinstance(card, dict):
        raise ValidationError("The card must be an Adaptive Card JSON object.")
    if card.get("type") != "AdaptiveCard":
        raise ValidationError('The card must have "type": "AdaptiveCard".')
    if not isinstance(card.get("version"), str) or not card.get("version"):
        raise ValidationError('The card needs a "version", e.g. "1.5".')


class StrictSchema(Schema):
    """Unknown fields are refused (marshmallow's default), with a message naming them."""


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata=meta("Code", "Machine-readable error code, e.g. RecipientOptedOut."))
    message = fields.String(required=True, metadata=meta("Message", "What went wrong, in plain words."))
    target = fields.String(metadata=meta("Target", "The request field the error is about."))


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True, metadata=meta("Error", "The error."))


# ---- messages ---------------------------------------------------------------------------------
class MessageContentSchema(StrictSchema):
    text = fields.String(
        metadata=meta("Message", "The message text. Markdown is supported (bold, lists, links).", "important")
    )
    card = fields.Dict(
        metadata=meta(
            "Adaptive Card",
            'An Adaptive Card as a JSON object ("type": "AdaptiveCard", with a "version").',
            "advanced",
        )
    )
    summary = fields.String(
        validate=validate.Length(max=250),
        metadata=meta(
            "Notification preview", "Short text shown in the Teams notification and activity feed.", "advanced"
        ),
    )

    @validates("card")
    def _card(self, value: Any, **_: Any) -> None:
        check_card(value)


class SendMessageSchema(MessageContentSchema):
    recipient = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata=meta(
            "Recipient",
            "The person to message: their user principal name, email address or Microsoft Entra object ID.",
            "important",
        ),
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta(
            "Tenant ID", "The person's Microsoft Entra tenant, when the same address exists in several.", "advanced"
        ),
    )
    idempotencyKey = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata=meta(
            "Idempotency key",
            "Any unique text: sending again with the same key returns the first message instead of a second one.",
            "advanced",
        ),
    )
    deliverAt = fields.AwareDateTime(
        metadata=meta("Deliver at (UTC)", "Send later, at this date and time (ISO 8601 with a time zone).", "advanced")
    )
    deliverAtLocalTime = fields.String(
        metadata=meta(
            "Deliver at local time",
            "Send at the next HH:MM (24-hour) in the recipient's own time zone, e.g. 09:00.",
            "advanced",
        )
    )
    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install if missing",
            "If the person has no chat with the bot, install the app for them through Microsoft Graph first"
            " (the service's operator must allow it). Default: no.",
            "advanced",
        )
    )
    wait = fields.Float(
        validate=validate.Range(min=0, max=90),
        metadata=meta(
            "Wait (seconds)",
            "How long to wait for Teams to accept the message before answering; default 5 seconds.",
            "advanced",
        ),
    )

    @validates("deliverAtLocalTime")
    def _local_time(self, value: str, **_: Any) -> None:
        if not HHMM.match(value):
            raise ValidationError("Use HH:MM in 24-hour time, e.g. 09:00.")

    @validates_schema
    def _one_time(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("deliverAt") and data.get("deliverAtLocalTime"):
            raise ValidationError("Give deliverAt or deliverAtLocalTime, not both.", "deliverAtLocalTime")


class UpdateMessageSchema(MessageContentSchema):
    pass


class DeliveryErrorSchema(Schema):
    code = fields.String(metadata=meta("Error code", "Why the message was not delivered, as a code."))
    message = fields.String(metadata=meta("Error message", "Why the message was not delivered, in plain words."))


class DeliverySchema(Schema):
    id = fields.String(
        required=True, metadata=meta("Message ID", "The ID of this message; use it to check, change or delete it.")
    )
    status = fields.String(
        required=True,
        metadata=meta(
            "Status",
            "queued, scheduled, sending, delivered or failed.",
            enum=["queued", "scheduled", "sending", "delivered", "failed"],
        ),
    )
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    surface = fields.String(metadata=meta("Surface", "Where the message goes: teams (the bot's chat)."))
    conversationId = fields.String(
        allow_none=True, metadata=meta("Conversation ID", "The Teams chat the message went to.")
    )
    messageId = fields.String(
        allow_none=True, metadata=meta("Teams message ID", "The Teams activity ID, once delivered.")
    )
    attempts = fields.Integer(metadata=meta("Attempts", "How many times the message was sent to Teams."))
    error = fields.Nested(DeliveryErrorSchema, allow_none=True, metadata=meta("Error", "Why it failed (when failed)."))
    createdAt = fields.String(metadata=meta("Created at", "When the request was accepted (UTC, ISO 8601)."))
    deliverAt = fields.String(allow_none=True, metadata=meta("Deliver at", "When a scheduled message is due (UTC)."))
    deliveredAt = fields.String(
        allow_none=True, metadata=meta("Delivered at", "When Teams accepted the message (UTC).")
    )
    broadcastId = fields.String(
        allow_none=True, metadata=meta("Broadcast ID", "The broadcast this message belongs to.")
    )
    reachedBy = fields.String(
        allow_none=True,
        metadata=meta(
            "Reached by",
            "How the person was reached: reference (their chat with the bot), installed (the app was installed"
            " for them) or repaired (their lost chat was restored by installing again).",
        ),
    )
    installOutcome = fields.String(
        allow_none=True,
        metadata=meta(
            "Install outcome",
            "With installIfMissing: installed, alreadyInstalled, or why installing failed (AppNotInCatalog,"
            " InstallBlockedByPolicy, UserNotFound, NoTeamsLicence, ...).",
        ),
    )


# ---- recipients -------------------------------------------------------------------------------
class SurfaceSchema(Schema):
    surface = fields.String(metadata=meta("Surface", "teams, teams-copilot, m365-copilot, group or channel."))
    status = fields.String(metadata=meta("Status", "active, uninstalled, blocked, notFound or expired."))
    lastSeen = fields.String(metadata=meta("Last seen", "When the person last used the bot there (UTC)."))


class RecipientSchema(Schema):
    recipient = fields.String(metadata=meta("Recipient", "The recipient as asked for."))
    reachable = fields.Boolean(metadata=meta("Reachable", "True when a message sent now would be delivered."))
    status = fields.String(
        metadata=meta("Status", "The Teams chat's status: active, uninstalled, blocked, notFound, expired.")
    )
    reason = fields.String(
        allow_none=True, metadata=meta("Reason", "Why the person cannot be reached, in plain words.")
    )
    optedOut = fields.Boolean(metadata=meta("Opted out", "True when the person typed 'stop' to the bot."))
    name = fields.String(allow_none=True, metadata=meta("Name", "The person's display name."))
    upn = fields.String(allow_none=True, metadata=meta("User principal name", "The person's sign-in name."))
    email = fields.String(allow_none=True, metadata=meta("Email", "The person's email address."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("Entra object ID", "The person's Microsoft Entra object ID.")
    )
    tenantId = fields.String(metadata=meta("Tenant ID", "The person's Microsoft Entra tenant."))
    timezone = fields.String(
        allow_none=True, metadata=meta("Time zone", "The person's time zone as Teams reported it.")
    )
    locale = fields.String(allow_none=True, metadata=meta("Locale", "The person's language, e.g. en-US."))
    lastSeen = fields.String(allow_none=True, metadata=meta("Last seen", "When the person last used the bot (UTC)."))
    surfaces = fields.List(
        fields.Nested(SurfaceSchema), metadata=meta("Surfaces", "Where the person has used the bot.")
    )


class RecipientQuerySchema(StrictSchema):
    status = fields.String(
        validate=validate.OneOf(["active", "uninstalled", "blocked", "notFound", "expired"]),
        metadata=meta("Status", "Only people whose Teams chat has this status.", "important"),
    )
    tenantId = fields.String(metadata=meta("Tenant ID", "Only people of this tenant.", "advanced"))
    pageSize = fields.Integer(
        validate=validate.Range(min=1, max=1000),
        metadata=meta("Page size", "How many people per page (default 100).", "advanced"),
    )
    skipToken = fields.String(metadata=meta("Skip token", "Continuation token from nextLink.", "internal"))


class RecipientPageSchema(Schema):
    value = fields.List(fields.Nested(RecipientSchema), required=True, metadata=meta("People", "This page of people."))
    nextLink = fields.String(allow_none=True, metadata=meta("Next page", "The URL of the next page, if any."))


# ---- broadcasts -------------------------------------------------------------------------------
class StartBroadcastSchema(MessageContentSchema):
    recipients = fields.List(
        fields.String(validate=validate.Length(min=1, max=320)),
        validate=validate.Length(max=100_000),
        metadata=meta(
            "Recipients",
            "UPNs, email addresses or Entra object IDs. Leave empty and set allActiveUsers to reach everyone.",
            "important",
        ),
    )
    allActiveUsers = fields.Boolean(
        metadata=meta("Everyone in the tenant", "Send to every person of the tenant who can be reached.", "advanced")
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta("Tenant ID", "The tenant whose people to message (required with allActiveUsers).", "advanced"),
    )
    idempotencyKey = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata=meta("Idempotency key", "Starting again with the same key returns the first broadcast.", "advanced"),
    )

    groups = fields.List(
        fields.String(validate=validate.Regexp(GUID_PATTERN, error="An Entra group id is a GUID.")),
        validate=validate.Length(max=100),
        metadata=meta(
            "Entra groups",
            "Microsoft Entra group IDs: every user in them (nested groups included) gets the message once.",
            "advanced",
        ),
    )
    teams = fields.List(
        fields.String(validate=validate.Regexp(GUID_PATTERN, error="A team id is a GUID.")),
        validate=validate.Length(max=100),
        metadata=meta("Teams", "Microsoft Teams team IDs: every member gets the message once.", "advanced"),
    )
    includeGuests = fields.Boolean(
        metadata=meta("Include guests", "Also message guest users of the groups and teams. Default: no.", "advanced")
    )
    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install if missing",
            "Install the app through Microsoft Graph for people who do not have it yet (the service's operator"
            " must allow it). Default: no.",
            "advanced",
        )
    )

    @validates_schema
    def _audience(self, data: dict[str, Any], **_: Any) -> None:
        listed = bool(data.get("recipients") or data.get("groups") or data.get("teams"))
        if listed == bool(data.get("allActiveUsers")):
            raise ValidationError(
                "Give recipients, groups or teams (any mix), or set allActiveUsers (not both).", "recipients"
            )


class BroadcastCountsSchema(Schema):
    queued = fields.Integer(metadata=meta("Queued", "Waiting to be sent."))
    sending = fields.Integer(metadata=meta("Sending", "Being sent now."))
    delivered = fields.Integer(metadata=meta("Delivered", "Accepted by Teams."))
    failed = fields.Integer(metadata=meta("Failed", "Teams refused, or retries ran out."))
    skipped = fields.Integer(metadata=meta("Skipped", "Not sent: unknown, opted out, unreachable or duplicate."))


class InstallFailureCountSchema(Schema):
    code = fields.String(metadata=meta("Reason", "Why installing failed, as a code (e.g. InstallBlockedByPolicy)."))
    count = fields.Integer(metadata=meta("People", "How many people it failed for with this reason."))


class BroadcastInstallsSchema(Schema):
    installed = fields.Integer(metadata=meta("Installed", "People the app was installed for by this broadcast."))
    alreadyInstalled = fields.Integer(
        metadata=meta("Already installed", "People who had the app but no chat the bot knew of.")
    )
    failed = fields.Integer(metadata=meta("Install failed", "People the app could not be installed for."))
    failures = fields.List(
        fields.Nested(InstallFailureCountSchema), metadata=meta("Install failures", "Failed installs by reason.")
    )


class BroadcastFailureSchema(Schema):
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    code = fields.String(metadata=meta("Code", "Why, as a code (e.g. RecipientOptedOut)."))
    message = fields.String(metadata=meta("Message", "Why, in plain words."))


class BroadcastSchema(Schema):
    id = fields.String(required=True, metadata=meta("Broadcast ID", "The ID of the broadcast."))
    status = fields.String(
        metadata=meta("Status", "preparing, running or completed.", enum=["preparing", "running", "completed"])
    )
    total = fields.Integer(metadata=meta("Total", "How many recipients the broadcast has."))
    progress = fields.Float(metadata=meta("Progress (%)", "Share of recipients done (delivered, failed or skipped)."))
    counts = fields.Nested(BroadcastCountsSchema, metadata=meta("Counts", "Recipients by status."))
    failures = fields.List(
        fields.Nested(BroadcastFailureSchema), metadata=meta("Failures", "Who did not get the message, and why.")
    )
    createdAt = fields.String(metadata=meta("Created at", "When the broadcast started (UTC)."))
    completedAt = fields.String(allow_none=True, metadata=meta("Completed at", "When the last message was done (UTC)."))
    expanded = fields.Integer(
        metadata=meta("Audience read", "While preparing: how many recipients and group or team members were read.")
    )
    installs = fields.Nested(
        BroadcastInstallsSchema, metadata=meta("Installs", "With installIfMissing: what installing the app did.")
    )


# ---- card and wait ----------------------------------------------------------------------------
class SendCardAndWaitSchema(StrictSchema):
    recipient = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata=meta(
            "Recipient",
            "The person who must answer: their user principal name, email address or Microsoft Entra object ID.",
            "important",
        ),
    )
    card = fields.Dict(
        required=True,
        metadata=meta(
            "Adaptive Card",
            "An Adaptive Card JSON object with inputs and at least one Action.Submit or Action.Execute button.",
            "important",
        ),
    )
    text = fields.String(
        metadata=meta("Message", "Optional text (markdown) shown above the card.", "advanced"),
    )
    summary = fields.String(
        validate=validate.Length(max=250),
        metadata=meta(
            "Notification preview", "Short text shown in the Teams notification and activity feed.", "advanced"
        ),
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta(
            "Tenant ID", "The person's Microsoft Entra tenant, when the same address exists in several.", "advanced"
        ),
    )
    idempotencyKey = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata=meta(
            "Idempotency key",
            "Any unique text: sending again with the same key returns the first card instead of a second one.",
            "advanced",
        ),
    )

    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install if missing",
            "If the person has no chat with the bot, install the app for them through Microsoft Graph first"
            " (the service's operator must allow it). Default: no.",
            "advanced",
        )
    )

    @validates("card")
    def _card(self, value: Any, **_: Any) -> None:
        check_card(value)
        if not _has_submit_action(value):
            raise ValidationError("The card needs at least one Action.Submit or Action.Execute button to answer with.")


def _has_submit_action(node: Any) -> bool:
    if isinstance(node, dict):
        if node.get("type") in ("Action.Submit", "Action.Execute"):
            return True
        return any(_has_submit_action(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_submit_action(v) for v in node)
    return False


class ResponderSchema(Schema):
    name = fields.String(allow_none=True, metadata=meta("Responder name", "The display name of who answered."))
    upn = fields.String(
        allow_none=True, metadata=meta("Responder user principal name", "The sign-in name of who answered.")
    )
    email = fields.String(allow_none=True, metadata=meta("Responder email", "The email address of who answered."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("Responder Entra object ID", "The Microsoft Entra object ID of who answered.")
    )


class CardResponseSchema(Schema):
    id = fields.String(
        required=True, metadata=meta("Card ID", "The ID of this card; it is also a message ID for Get/Update/Delete.")
    )
    status = fields.String(
        required=True,
        metadata=meta(
            "Status",
            "sending (not yet in Teams), waiting (shown, no answer yet) or responded.",
            enum=["sending", "waiting", "responded"],
        ),
    )
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    response = fields.Dict(
        allow_none=True,
        metadata=meta(
            "Response",
            "The values the person submitted: one entry per card input ID, plus the button's own data.",
        ),
    )
    action = fields.String(
        allow_none=True, metadata=meta("Button", "The title of the button the person pressed, e.g. Approve.")
    )
    verb = fields.String(
        allow_none=True, metadata=meta("Button verb", "The verb of the Action.Execute button pressed, if any.")
    )
    respondedBy = fields.Nested(
        ResponderSchema, allow_none=True, metadata=meta("Responded by", "Who answered the card.")
    )
    respondedAt = fields.String(
        allow_none=True, metadata=meta("Responded at", "When the person answered (UTC, ISO 8601).")
    )
    conversationId = fields.String(
        allow_none=True, metadata=meta("Conversation ID", "The Teams chat the card went to.")
    )
    messageId = fields.String(allow_none=True, metadata=meta("Teams message ID", "The Teams activity ID of the card."))
    createdAt = fields.String(metadata=meta("Created at", "When the request was accepted (UTC, ISO 8601)."))


# ---- webhook triggers -------------------------------------------------------------------------
EVENT_NAMES = ["userMessage", "cardSubmitted", "installationChanged", "deliveryFailed"]


class TriggerSubscriptionSchema(StrictSchema):
    notificationUrl = fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=4000),
        metadata=meta(
            "Notification URL",
            "The callback URL Power Automate creates for the flow; filled in automatically.",
            "internal",
            # Power Platform knows "uri", not apispec's "url".
            format="uri",
            **{"x-ms-notification-url": True},
        ),
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta(
            "Tenant ID", "Only events of this Microsoft Entra tenant (default: all the key may see).", "advanced"
        ),
    )


class SubscribeSchema(TriggerSubscriptionSchema):
    event = fields.String(
        required=True,
        validate=validate.OneOf([*EVENT_NAMES, "any"]),
        metadata=meta(
            "Event",
            "userMessage, cardSubmitted, installationChanged, deliveryFailed, or any for all of them.",
            "important",
        ),
    )


class SubscriptionSchema(Schema):
    id = fields.String(required=True, metadata=meta("Subscription ID", "The ID of the webhook subscription."))
    event = fields.String(metadata=meta("Event", "The event the subscription is for."))
    tenantId = fields.String(allow_none=True, metadata=meta("Tenant ID", "The tenant whose events are sent."))
    createdAt = fields.String(metadata=meta("Created at", "When the subscription was made (UTC, ISO 8601)."))


class EventUserSchema(Schema):
    id = fields.String(allow_none=True, metadata=meta("User Teams ID", "The person's Teams user ID (29:...)."))
    name = fields.String(allow_none=True, metadata=meta("User name", "The person's display name."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("User Entra object ID", "The person's Microsoft Entra object ID.")
    )
    upn = fields.String(allow_none=True, metadata=meta("User principal name", "The person's sign-in name."))
    email = fields.String(allow_none=True, metadata=meta("User email", "The person's email address."))


class EventEnvelopeSchema(Schema):
    event = fields.String(
        required=True, metadata=meta("Event", "What happened: " + ", ".join(EVENT_NAMES) + ".", enum=EVENT_NAMES)
    )
    eventId = fields.String(
        required=True, metadata=meta("Event ID", "Unique per event and subscription; the same on a retried callback.")
    )
    subscriptionId = fields.String(metadata=meta("Subscription ID", "The subscription this callback is for."))
    occurredAt = fields.String(metadata=meta("Occurred at", "When the event happened (UTC, ISO 8601)."))
    tenantId = fields.String(allow_none=True, metadata=meta("Tenant ID", "The Microsoft Entra tenant of the event."))


class PersonEventSchema(EventEnvelopeSchema):
    user = fields.Nested(EventUserSchema, metadata=meta("User", "The person who acted."))
    surface = fields.String(
        allow_none=True, metadata=meta("Surface", "Where it happened: teams, teams-copilot or m365-copilot.")
    )
    conversationId = fields.String(
        allow_none=True, metadata=meta("Conversation ID", "The conversation it happened in.")
    )
    timestamp = fields.String(allow_none=True, metadata=meta("Timestamp", "The activity's own time stamp."))


class UserMessageEventSchema(PersonEventSchema):
    text = fields.String(metadata=meta("Message text", "What the person wrote to the bot."))


class CardSubmittedEventSchema(PersonEventSchema):
    data = fields.Dict(
        metadata=meta(
            "Submitted data",
            "The card's input values and the button's data; cardWaitId is set when the card came from"
            " Send a card and wait for a response.",
        )
    )
    handledByCardWait = fields.Boolean(
        metadata=meta("Answered a waiting card", "True when this answered a card sent with Send a card and wait.")
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


class BotEventSchema(PersonEventSchema):
    """Every field any event may carry (the payload of the trigger for all events)."""

    text = fields.String(metadata=meta("Message text", "userMessage: what the person wrote to the bot."))
    data = fields.Dict(metadata=meta("Submitted data", "cardSubmitted: the card's input values and button data."))
    handledByCardWait = fields.Boolean(
        metadata=meta("Answered a waiting card", "cardSubmitted: true when it answered Send a card and wait.")
    )
    action = fields.String(metadata=meta("Action", "installationChanged: installed or uninstalled."))
    id = fields.String(metadata=meta("Message ID", "deliveryFailed: the ID of the message that failed."))
    recipient = fields.String(metadata=meta("Recipient", "deliveryFailed: the recipient as written."))
    broadcastId = fields.String(allow_none=True, metadata=meta("Broadcast ID", "deliveryFailed: its broadcast."))
    error = fields.Nested(DeliveryErrorSchema, metadata=meta("Error", "deliveryFailed: why it failed."))
