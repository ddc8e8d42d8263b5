"""Request and response schemas: one source for validation, serialisation and the connector definition.

Field metadata carries what the Power Automate designer shows: ``x-ms-summary`` (the label),
``description`` (the help text) and ``x-ms-visibility``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates, validates_schema

# deliverAtLocalTime: "HH:MM" (the next one) or "YYYY-MM-DDTHH:MM" (that local date). Used with
# fullmatch, not match with "$" ("$" also matches before a trailing newline, "09:00\n"); [0-9], not
# \d, which also takes other scripts' digits (fullwidth, Arabic-Indic).
HHMM = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T)?([01][0-9]|2[0-3]):[0-5][0-9]")
# Power Platform shows a date-time field with a date picker and lets flows compare it as a time.
DATE_TIME = {"format": "date-time"}
# bot.model.ReferenceStatus and bot.model.Surface, as the designer offers them.
CHAT_STATUSES = ["active", "uninstalled", "blocked", "notFound", "expired"]
MAX_PAGE_SIZE = 100
SURFACE_NAMES = ["teams", "teams-copilot", "m365-copilot", "group", "channel"]
# How far a deliverAt may be from now: a little in the past (clock skew, a slow flow) is "now";
# further back is a mistake (year 1 would go at once), and more than a year ahead would be kept forever.
DELIVER_AT_PAST = dt.timedelta(minutes=5)
DELIVER_AT_FUTURE = dt.timedelta(days=365)
# "^...$" is what a JSON schema pattern understands; Python's "$" also matches before a final newline,
# so the validators pair it with an exact length (a GUID is 36 characters).
GUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
GUID_LENGTH = 36


def _guid(message: str) -> Any:
    """A validator for one GUID (fullmatch: no trailing newline), with one maker-facing message."""

    def check(value: str) -> None:
        if len(value) != GUID_LENGTH or not GUID_PATTERN.match(value):
            raise ValidationError(message)

    return check


def _guid_list(message: str, label: str, description: str) -> fields.List:
    """Up to 100 GUIDs (Entra groups, teams) as an advanced field."""
    return fields.List(
        fields.String(validate=_guid(message), metadata={"pattern": GUID_PATTERN.pattern}),
        validate=validate.Length(max=100),
        metadata=meta(label, description, "advanced"),
    )


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
            "Notification Preview", "Short text shown in the Teams notification and activity feed.", "advanced"
        ),
    )

    @validates("card")
    def _card(self, value: Any, **_: Any) -> None:
        check_card(value)


# The recipient picker: people the bot can reach, from an internal operation; free text stays allowed
# (a UPN, email or object ID typed in, or dynamic content). Microsoft's "x-ms-dynamic-values".
# An answer's free-form object (a card's submitted values, keyed by the card's own input IDs) describes its
# values, so certification sees a described schema and a flow gets each value as text or JSON.
SUBMITTED_VALUE = {
    "additionalProperties": {
        "x-ms-summary": "Submitted Value",
        "description": "One submitted value, keyed by the card input ID or the button data field it came from.",
    }
}
RECIPIENT_PICKER = {
    "x-ms-dynamic-values": {
        "operationId": "ListReachablePeople",
        "value-collection": "value",
        "value-path": "upn",
        "value-title": "label",
        # Certification: x-ms-dynamic-values names its operation's parameters, even when there are none.
        "parameters": {},
    }
}
CARD_TYPE = fields.String(
    validate=validate.Length(min=1, max=100),
    metadata=meta(
        "Card Type",
        "Your own label for this kind of card (e.g. expense-approval): the When a user submits a card"
        " trigger can listen to this type only.",
        "advanced",
    ),
)


class SendMessageSchema(MessageContentSchema):
    recipient = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata=meta(
            "Recipient",
            "The person to message: their user principal name, email address or Microsoft Entra object ID.",
            "important",
            **RECIPIENT_PICKER,
        ),
    )
    cardType = CARD_TYPE
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta(
            "Tenant ID", "The person's Microsoft Entra tenant, when the same address exists in several.", "advanced"
        ),
    )
    idempotencyKey = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata=meta(
            "Idempotency Key",
            "Any unique text: sending again with the same key returns the first message instead of a second one"
            " (the same key with different content is refused with 409 IdempotencyKeyReused).",
            "advanced",
        ),
    )
    deliverAt = fields.AwareDateTime(
        metadata=meta(
            "Deliver at (UTC)",
            "Send later, at this date and time (ISO 8601 with a time zone), at most one year ahead.",
            "advanced",
        )
    )
    deliverAtLocalTime = fields.String(
        metadata=meta(
            "Deliver at Local Time",
            "Send at the next HH:MM (24-hour) in the recipient's own time zone, e.g. 09:00, or at that time on"
            " a given local date, e.g. 2026-12-01T09:00.",
            "advanced",
        )
    )
    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install If Missing",
            "If the person has no chat with the bot, install the app for them through Microsoft Graph first"
            " (the service's operator must allow it, and the connection's key needs the install permission)."
            " Default: no.",
            "advanced",
        )
    )
    wait = fields.Float(
        validate=validate.Range(min=0, max=90),
        metadata=meta(
            "Wait (Seconds)",
            "How long to wait for Teams to accept the message before answering; default 5 seconds.",
            "advanced",
        ),
    )

    @validates("deliverAtLocalTime")
    def _local_time(self, value: str, **_: Any) -> None:
        if not HHMM.fullmatch(value) or not _valid_date(value):
            raise ValidationError(
                "Use HH:MM in 24-hour time, e.g. 09:00, or a local date and time, e.g. 2026-12-01T09:00."
            )

    @validates("deliverAt")
    def _deliver_at(self, value: dt.datetime, **_: Any) -> None:
        at = dt.datetime.now(dt.UTC)
        if value < at - DELIVER_AT_PAST:
            raise ValidationError("deliverAt is in the past; leave it out to send now.")
        if value > at + DELIVER_AT_FUTURE:
            raise ValidationError("deliverAt may be at most one year ahead.")

    @validates_schema
    def _one_time(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("deliverAt") and data.get("deliverAtLocalTime"):
            raise ValidationError("Give deliverAt or deliverAtLocalTime, not both.", "deliverAtLocalTime")


def _valid_date(value: str) -> bool:
    day = value.rpartition("T")[0]
    try:
        return not day or bool(dt.date.fromisoformat(day))
    except ValueError:
        return False


class UpdateMessageSchema(MessageContentSchema):
    pass


class DeliveryErrorSchema(Schema):
    # Shown under their parent "Error": the designer writes "Error Code", so the labels do not repeat it.
    code = fields.String(metadata=meta("Code", "Why the message was not delivered, as a code."))
    message = fields.String(metadata=meta("Message", "Why the message was not delivered, in plain words."))
    teamsCode = fields.String(
        metadata=meta("Teams Code", "The error code Teams answered with, verbatim, when Teams refused the message.")
    )


class DeliverySchema(Schema):
    id = fields.String(
        required=True, metadata=meta("Message ID", "The ID of this message; use it to check, change or delete it.")
    )
    status = fields.String(
        required=True,
        metadata=meta(
            "Status",
            "queued, scheduled, sending, delivered, failed, or recalled (withdrawn with its broadcast).",
            enum=["queued", "scheduled", "sending", "delivered", "failed", "recalled"],
        ),
    )
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    surface = fields.String(metadata=meta("Surface", "Where the message goes: teams (the bot's chat)."))
    conversationId = fields.String(
        allow_none=True, metadata=meta("Chat ID", "The ID of the Teams chat the message went to (its conversation ID).")
    )
    teamsMessageId = fields.String(
        allow_none=True,
        metadata=meta("Teams Activity ID", "Teams' own ID of the message (its activity ID), once delivered."),
    )
    chatUrl = fields.String(
        allow_none=True,
        metadata=meta(
            "Chat Link", "A Teams link that opens the person's chat with the bot (for them), once delivered."
        ),
    )
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "The card type given when sending."))
    attempts = fields.Integer(metadata=meta("Attempts", "How many times the message was sent to Teams."))
    error = fields.Nested(DeliveryErrorSchema, allow_none=True, metadata=meta("Error", "Why it failed (when failed)."))
    createdAt = fields.String(
        metadata=meta("Created At", "When the request was accepted (UTC, ISO 8601).", **DATE_TIME)
    )
    deliverAt = fields.String(
        allow_none=True, metadata=meta("Deliver At", "When a scheduled message is due (UTC).", **DATE_TIME)
    )
    deliveredAt = fields.String(
        allow_none=True, metadata=meta("Delivered At", "When Teams accepted the message (UTC).", **DATE_TIME)
    )
    broadcastId = fields.String(
        allow_none=True, metadata=meta("Broadcast ID", "The broadcast this message belongs to.")
    )
    readAt = fields.String(
        allow_none=True,
        metadata=meta(
            "Read At",
            "When a read receipt first showed the person read it (UTC). Empty means no receipt yet: people"
            " can turn read receipts off, so it does not mean unread.",
            **DATE_TIME,
        ),
    )
    recalledAt = fields.String(
        allow_none=True,
        metadata=meta("Recalled At", "When its broadcast was recalled and it was withdrawn (UTC).", **DATE_TIME),
    )
    reachedBy = fields.String(
        allow_none=True,
        metadata=meta(
            "Reached By",
            "How the person was reached: reference (their chat with the bot), installed (the app was installed"
            " for them) or repaired (their lost chat was restored by installing again).",
        ),
    )
    installOutcome = fields.String(
        allow_none=True,
        metadata=meta(
            "Install Outcome",
            "With installIfMissing: installed, alreadyInstalled, or why installing failed (AppNotInCatalog,"
            " InstallBlockedByPolicy, UserNotFound, NoTeamsLicence, ...).",
        ),
    )


# ---- recipients -------------------------------------------------------------------------------
class SurfaceSchema(Schema):
    # Shown under their parent "Surfaces": "Surfaces Name", not "Surfaces Surface".
    surface = fields.String(
        metadata=meta("Name", "teams, teams-copilot, m365-copilot, group or channel.", enum=SURFACE_NAMES)
    )
    status = fields.String(
        metadata=meta("Status", "active, uninstalled, blocked, notFound or expired.", enum=CHAT_STATUSES)
    )
    lastSeen = fields.String(metadata=meta("Last Seen", "When the person last used the bot there (UTC).", **DATE_TIME))


class RecipientSchema(Schema):
    recipient = fields.String(metadata=meta("Recipient", "The recipient as asked for."))
    reachable = fields.Boolean(metadata=meta("Reachable", "True when a message sent now would be delivered."))
    status = fields.String(
        metadata=meta(
            "Status", "The Teams chat status: active, uninstalled, blocked, notFound, expired.", enum=CHAT_STATUSES
        )
    )
    reason = fields.String(
        allow_none=True, metadata=meta("Reason", "Why the person cannot be reached, in plain words.")
    )
    optedOut = fields.Boolean(metadata=meta("Opted Out", "True when the person typed stop to the bot."))
    name = fields.String(allow_none=True, metadata=meta("Name", "The person's display name."))
    upn = fields.String(allow_none=True, metadata=meta("User Principal Name", "The person's sign-in name."))
    email = fields.String(allow_none=True, metadata=meta("Email", "The person's email address."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("Entra Object ID", "The person's Microsoft Entra object ID.")
    )
    tenantId = fields.String(metadata=meta("Tenant ID", "The person's Microsoft Entra tenant."))
    timezone = fields.String(
        allow_none=True, metadata=meta("Time Zone", "The person's time zone as Teams reported it.")
    )
    locale = fields.String(allow_none=True, metadata=meta("Locale", "The person's language, e.g. en-US."))
    lastSeen = fields.String(
        allow_none=True, metadata=meta("Last Seen", "When the person last used the bot (UTC).", **DATE_TIME)
    )
    surfaces = fields.List(
        fields.Nested(SurfaceSchema), metadata=meta("Surfaces", "Where the person has used the bot.")
    )


class RecipientQuerySchema(StrictSchema):
    status = fields.String(
        validate=validate.OneOf(CHAT_STATUSES),
        metadata=meta("Status", "Only people whose Teams chat has this status.", "important"),
    )
    tenantId = fields.String(metadata=meta("Tenant ID", "Only people of this tenant.", "advanced"))
    pageSize = fields.Integer(
        # 100 people of at most ~2.3 KB each stay far below Copilot Studio's 500 KB limit for a tool's answer.
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata=meta("Page Size", f"How many people per page: {MAX_PAGE_SIZE} at most, and by default.", "advanced"),
    )
    skipToken = fields.String(metadata=meta("Skip Token", "Continuation token from nextLink.", "internal"))


class RecipientPageSchema(Schema):
    value = fields.List(fields.Nested(RecipientSchema), required=True, metadata=meta("People", "This page of people."))
    nextLink = fields.String(
        allow_none=True, metadata=meta("Next Page", "The URL of the next page, if any.", format="uri")
    )


# ---- importing references ----------------------------------------------------------------------
MAX_IMPORT_ITEMS = 10_000


class ImportReferencesSchema(StrictSchema):
    references = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(min=1, max=MAX_IMPORT_ITEMS),
        metadata=meta(
            "References",
            "ConversationReference JSON objects as botbuilder (C#, JavaScript, Python) or the Microsoft 365 Agents"
            f" SDK write them, up to {MAX_IMPORT_ITEMS:,} per call. The body may also be one reference or a list.",
            "important",
        ),
    )

    @pre_load
    def _wrap(self, data: Any, **_: Any) -> Any:
        # One reference, a list, or {"references": [...]} (what other bots POST as they capture).
        if isinstance(data, list):
            return {"references": data}
        if isinstance(data, dict) and "references" not in data:
            return {"references": [data]}
        return data


class ImportItemSchema(Schema):
    source = fields.String(required=True, metadata=meta("Source", "Which item of the request: its index, e.g. [3]."))
    result = fields.String(
        required=True, metadata=meta("Result", "imported (new), updated (newer than the record kept), or skipped.")
    )
    surface = fields.String(metadata=meta("Surface", "teams, teams-copilot or m365-copilot."))
    reason = fields.String(
        metadata=meta(
            "Reason",
            "Why it was skipped: Unchanged, Older, MissingServiceUrl, NotPersonal, OtherTenant, MissingTenant, Invalid.",
        )
    )
    message = fields.String(metadata=meta("Message", "The reason in plain words."))


class ImportReportSchema(Schema):
    imported = fields.Integer(required=True, metadata=meta("Imported", "New references."))
    updated = fields.Integer(required=True, metadata=meta("Updated", "References that replaced older ones."))
    skipped = fields.Integer(required=True, metadata=meta("Skipped", "References not imported (see items)."))
    total = fields.Integer(required=True, metadata=meta("Total", "Items in the request."))
    items = fields.List(fields.Nested(ImportItemSchema), required=True, metadata=meta("Items", "One entry per item."))


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
        metadata=meta("Everyone in the Tenant", "Send to every person of the tenant who can be reached.", "advanced")
    )
    tenantId = fields.String(
        validate=validate.Length(max=64),
        metadata=meta("Tenant ID", "The tenant whose people to message (required with allActiveUsers).", "advanced"),
    )
    idempotencyKey = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata=meta(
            "Idempotency Key",
            "Starting again with the same key returns the first broadcast (with different content: 409).",
            "advanced",
        ),
    )
    cardType = CARD_TYPE
    waitForCompletion = fields.Boolean(
        metadata=meta(
            "Wait for Completion",
            "Wait until every message is delivered, failed or skipped before the flow goes on (default: no,"
            " the action answers at once with the broadcast's ID and progress).",
            "advanced",
        )
    )

    groups = _guid_list(
        "An Entra group id is a GUID.",
        "Entra Groups",
        "Microsoft Entra group IDs: every user in them (nested groups included) gets the message once.",
    )
    teams = _guid_list("A team id is a GUID.", "Teams", "Microsoft Teams team IDs: every member gets the message once.")
    includeGuests = fields.Boolean(
        metadata=meta("Include Guests", "Also message guest users of the groups and teams. Default: no.", "advanced")
    )
    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install If Missing",
            "Install the app through Microsoft Graph for people who do not have it yet (the service's operator"
            " must allow it, and the connection's key needs the install permission). Default: no.",
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
    recalled = fields.Integer(
        metadata=meta("Recalled", "Withdrawn by a recall: deleted from the chat, or cancelled before it was sent.")
    )
    read = fields.Integer(
        metadata=meta(
            "Read (At Least)",
            "People known to have read it: a read receipt or a card answer. Read receipts can be turned off,"
            " so more may have read it. Not part of the total.",
        )
    )
    answered = fields.Integer(metadata=meta("Answered", "People who answered the card. Not part of the total."))


class InstallFailureCountSchema(Schema):
    code = fields.String(metadata=meta("Reason", "Why installing failed, as a code (e.g. InstallBlockedByPolicy)."))
    count = fields.Integer(metadata=meta("People", "How many people it failed for with this reason."))


class BroadcastInstallsSchema(Schema):
    installed = fields.Integer(metadata=meta("Installed", "People the app was installed for by this broadcast."))
    alreadyInstalled = fields.Integer(
        metadata=meta("Already Installed", "People who had the app but no chat the bot knew of.")
    )
    failed = fields.Integer(metadata=meta("Failed", "People the app could not be installed for."))
    failures = fields.List(
        fields.Nested(InstallFailureCountSchema), metadata=meta("Failures", "Failed installs by reason.")
    )


class BroadcastFailureSchema(Schema):
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    code = fields.String(metadata=meta("Code", "Why, as a code (e.g. RecipientOptedOut)."))
    message = fields.String(metadata=meta("Message", "Why, in plain words."))


class ReadPointSchema(Schema):
    at = fields.String(metadata=meta("Hour", "The start of the hour (UTC).", **DATE_TIME))
    # Shown under "Reads Per Hour": a label of its own, not "Reads Per Hour Reads".
    reads = fields.Integer(metadata=meta("Count", "People first known to have read it in that hour."))


class EngagementSchema(Schema):
    read = fields.Integer(metadata=meta("Read (At Least)", "People known to have read it (receipt or card answer)."))
    answered = fields.Integer(metadata=meta("Answered", "People who answered the card."))
    firstReadAt = fields.String(
        allow_none=True, metadata=meta("First Read At", "The first known read (UTC).", **DATE_TIME)
    )
    lastReadAt = fields.String(
        allow_none=True, metadata=meta("Last Read At", "The latest first read (UTC).", **DATE_TIME)
    )
    readTimeline = fields.List(
        fields.Nested(ReadPointSchema), metadata=meta("Reads Per Hour", "First reads counted hour by hour.")
    )


class CampaignChangeSchema(Schema):
    status = fields.String(metadata=meta("Status", "running or completed.", enum=["running", "completed"]))
    changed = fields.Integer(metadata=meta("Changed", "Delivered messages changed or deleted in the chat so far."))
    pending = fields.Integer(metadata=meta("Pending", "Delivered messages still to change or delete."))
    failed = fields.Integer(metadata=meta("Failed", "Delivered messages that could not be changed or deleted."))
    revision = fields.Integer(metadata=meta("Revision", "The version of the text the update brings (1 for the first)."))
    requestedAt = fields.String(metadata=meta("Requested At", "When the change was asked for (UTC).", **DATE_TIME))
    completedAt = fields.String(
        allow_none=True, metadata=meta("Completed At", "When the change was done (UTC).", **DATE_TIME)
    )


class UpdateBroadcastSchema(MessageContentSchema):
    pass


class BroadcastRecipientQuerySchema(StrictSchema):
    readState = fields.String(
        validate=validate.OneOf(["answered", "read", "noReceipt", "notDelivered"]),
        metadata=meta(
            "Read State",
            "Only people in this state: answered, read, noReceipt (delivered, no read receipt yet) or notDelivered.",
            "important",
        ),
    )
    pageSize = fields.Integer(
        validate=validate.Range(min=1, max=1000),
        metadata=meta("Page Size", "How many people per page (default 100).", "advanced"),
    )
    skipToken = fields.String(metadata=meta("Skip Token", "Continuation token from nextLink.", "internal"))


class BroadcastRecipientSchema(Schema):
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    messageId = fields.String(allow_none=True, metadata=meta("Message ID", "The ID of this person's message."))
    status = fields.String(
        metadata=meta(
            "Status",
            "queued, scheduled, sending, delivered, failed or recalled.",
            enum=["queued", "scheduled", "sending", "delivered", "failed", "recalled"],
        )
    )
    readState = fields.String(
        metadata=meta(
            "Read State",
            "answered, read, noReceipt (delivered but no read receipt yet: receipts may be off, so it may"
            " have been seen) or notDelivered.",
            enum=["answered", "read", "noReceipt", "notDelivered"],
        )
    )
    deliveredAt = fields.String(
        allow_none=True, metadata=meta("Delivered At", "When it reached the person's chat (UTC).", **DATE_TIME)
    )
    readAt = fields.String(
        allow_none=True, metadata=meta("Read At", "When a read receipt first covered it (UTC).", **DATE_TIME)
    )
    answeredAt = fields.String(
        allow_none=True, metadata=meta("Answered At", "When the person answered the card (UTC).", **DATE_TIME)
    )
    recalledAt = fields.String(
        allow_none=True, metadata=meta("Recalled At", "When it was withdrawn (UTC).", **DATE_TIME)
    )
    revision = fields.Integer(allow_none=True, metadata=meta("Revision", "Which version of the text the person has."))
    errorCode = fields.String(allow_none=True, metadata=meta("Error Code", "Why it was not delivered, as a code."))


class BroadcastRecipientPageSchema(Schema):
    value = fields.List(
        fields.Nested(BroadcastRecipientSchema), required=True, metadata=meta("People", "This page of people.")
    )
    nextLink = fields.String(allow_none=True, metadata=meta("Next Page", "The URL of the next page, if any."))


class BroadcastSchema(Schema):
    id = fields.String(required=True, metadata=meta("Broadcast ID", "The ID of the broadcast."))
    status = fields.String(
        metadata=meta("Status", "preparing, running or completed.", enum=["preparing", "running", "completed"])
    )
    total = fields.Integer(metadata=meta("Total", "How many recipients the broadcast has."))
    progress = fields.Float(
        metadata=meta("Progress (Percent)", "Share of recipients done (delivered, failed or skipped).")
    )
    counts = fields.Nested(BroadcastCountsSchema, metadata=meta("Counts", "Recipients by status."))
    failures = fields.List(
        fields.Nested(BroadcastFailureSchema),
        metadata=meta("Failures", "Who did not get the message, and why: the first 250; counts has the totals."),
    )
    createdAt = fields.String(metadata=meta("Created At", "When the broadcast started (UTC).", **DATE_TIME))
    completedAt = fields.String(
        allow_none=True, metadata=meta("Completed At", "When the last message was done (UTC).", **DATE_TIME)
    )
    engagement = fields.Nested(
        EngagementSchema, metadata=meta("Engagement", "Who read and answered it, and when (a lower bound).")
    )
    update = fields.Nested(
        CampaignChangeSchema, allow_none=True, metadata=meta("Update", "Progress of the latest update, if any.")
    )
    recall = fields.Nested(
        CampaignChangeSchema, allow_none=True, metadata=meta("Recall", "Progress of the recall, if any.")
    )
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "The card type given when starting."))
    expanded = fields.Integer(
        metadata=meta("Audience Read", "While preparing: how many recipients and group or team members were read.")
    )
    installs = fields.Nested(
        BroadcastInstallsSchema, metadata=meta("Installs", "With installIfMissing: what installing the app did.")
    )


def _notification_url(label: str, description: str) -> fields.Url:
    """The engine's callback URL of a webhook trigger or action: internal, required, marked for the engine."""
    return fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=4000),
        # Power Platform knows "uri", not apispec's "url".
        metadata=meta(label, description, "internal", format="uri", **{"x-ms-notification-url": True}),
    )


# ---- card and wait ----------------------------------------------------------------------------
class SendCardAndWaitSchema(StrictSchema):
    notificationUrl = _notification_url(
        "Callback URL",
        "The URL the flow engine creates for this run; the answer is posted to it. Filled in automatically.",
    )
    recipient = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata=meta(
            "Recipient",
            "The person who must answer: their user principal name, email address or Microsoft Entra object ID.",
            "important",
            **RECIPIENT_PICKER,
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
            "Notification Preview", "Short text shown in the Teams notification and activity feed.", "advanced"
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
            "Idempotency Key",
            "Any unique text: sending again with the same key returns the first card instead of a second one"
            " (the same key with different content is refused with 409 IdempotencyKeyReused).",
            "advanced",
        ),
    )
    timeoutMinutes = fields.Integer(
        validate=validate.Range(min=1, max=43200),
        metadata=meta(
            "Timeout (Minutes)",
            "Stop waiting after this many minutes: the action then ends with status expired. Default: wait"
            " as long as the flow run may (30 days).",
            "advanced",
        ),
    )
    cardType = CARD_TYPE

    installIfMissing = fields.Boolean(
        metadata=meta(
            "Install If Missing",
            "If the person has no chat with the bot, install the app for them through Microsoft Graph first"
            " (the service's operator must allow it, and the connection's key needs the install permission)."
            " Default: no.",
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
    # Shown under their parent "Responded By": "Responded By Name", not "Responded By Responder Name".
    name = fields.String(allow_none=True, metadata=meta("Name", "The display name of who answered."))
    upn = fields.String(allow_none=True, metadata=meta("User Principal Name", "The sign-in name of who answered."))
    email = fields.String(allow_none=True, metadata=meta("Email", "The email address of who answered."))
    aadObjectId = fields.String(
        allow_none=True, metadata=meta("Entra Object ID", "The Microsoft Entra object ID of who answered.")
    )


CARD_WAIT_STATUSES = ["sending", "waiting", "responded", "expired", "cancelled", "failed"]


class CardResponseSchema(Schema):
    id = fields.String(
        required=True, metadata=meta("Card ID", "The ID of this card; it is also a message ID for Get/Update/Delete.")
    )
    status = fields.String(
        required=True,
        metadata=meta(
            "Status",
            "sending (not yet in Teams), waiting (shown, no answer yet), responded, expired (timeout reached),"
            " cancelled (the wait was stopped or the card deleted) or failed (Teams did not accept the card).",
            enum=CARD_WAIT_STATUSES,
        ),
    )
    recipient = fields.String(metadata=meta("Recipient", "The recipient as given."))
    response = fields.Dict(
        allow_none=True,
        metadata=meta(
            "Response",
            "The values the person submitted: one entry per card input ID, plus the button's own data.",
            **SUBMITTED_VALUE,
        ),
    )
    action = fields.String(
        allow_none=True, metadata=meta("Button", "The title of the button the person pressed, e.g. Approve.")
    )
    verb = fields.String(
        allow_none=True, metadata=meta("Button Verb", "The verb of the Action.Execute button pressed, if any.")
    )
    respondedBy = fields.Nested(
        ResponderSchema, allow_none=True, metadata=meta("Responded By", "Who answered the card.")
    )
    respondedAt = fields.String(
        allow_none=True, metadata=meta("Responded At", "When the person answered (UTC, ISO 8601).", **DATE_TIME)
    )
    cardType = fields.String(allow_none=True, metadata=meta("Card Type", "The card type given when sending."))
    error = fields.Nested(
        DeliveryErrorSchema, allow_none=True, metadata=meta("Error", "Why the card was not delivered (when failed).")
    )
    conversationId = fields.String(
        allow_none=True, metadata=meta("Chat ID", "The ID of the Teams chat the card went to (its conversation ID).")
    )
    teamsMessageId = fields.String(
        allow_none=True, metadata=meta("Teams Activity ID", "Teams' own ID of the card's message (its activity ID).")
    )
    createdAt = fields.String(
        metadata=meta("Created At", "When the request was accepted (UTC, ISO 8601).", **DATE_TIME)
    )
    waitUntil = fields.String(
        allow_none=True,
        metadata=meta("Wait Until", "When the wait ends without an answer (UTC), if a timeout was set.", **DATE_TIME),
    )


class CardWaitResultSchema(CardResponseSchema):
    """What SendCardAndWait's callback posts: GetCardResponse's object, its answer typed by the card."""

    response = fields.Dict(
        allow_none=True,
        metadata=meta(
            "Response",
            "The values the person submitted: one entry per card input ID, plus the button's own data.",
            # The card's Input.* ids as typed outputs, from the card the maker passed (designer only:
            # a card built from dynamic content is not known at design time; then use expressions).
            **{
                "x-ms-dynamic-schema": {
                    "operationId": "GetCardAnswerSchema",
                    "parameters": {"card": {"parameter": "card"}},
                    "value-path": "schema",
                },
                "x-ms-dynamic-properties": {
                    "operationId": "GetCardAnswerSchema",
                    "parameters": {"card": {"parameterReference": "body/card"}},
                    "itemValuePath": "schema",
                },
            },
        ),
    )


class CardAnswerSchemaRequestSchema(StrictSchema):
    card = fields.Dict(
        required=True,
        metadata=meta("Adaptive Card", "The Adaptive Card whose answer to describe.", "important"),
    )


class CardAnswerSchemaResponseSchema(Schema):
    schema = fields.Dict(
        required=True,
        metadata=meta(
            "Schema",
            "The JSON schema of the answer: one property per card input ID.",
            additionalProperties={"x-ms-summary": "Keyword", "description": "A JSON Schema keyword and its value."},
        ),
    )


# ---- the recipient picker ---------------------------------------------------------------------
class PeopleQuerySchema(StrictSchema):
    search = fields.String(
        validate=validate.Length(max=100),
        metadata=meta("Search", "Only people whose name, UPN or email contains this text.", "advanced"),
    )


class PersonChoiceSchema(Schema):
    upn = fields.String(metadata=meta("User Principal Name", "The value to send to: UPN, else email or object ID."))
    name = fields.String(allow_none=True, metadata=meta("Name", "The person's display name."))
    label = fields.String(metadata=meta("Label", "Name and UPN, as the picker shows them."))


class PeoplePageSchema(Schema):
    value = fields.List(
        fields.Nested(PersonChoiceSchema), required=True, metadata=meta("People", "People the bot can message now.")
    )


# ---- webhook triggers -------------------------------------------------------------------------
EVENT_NAMES = ["userMessage", "cardSubmitted", "installationChanged", "deliveryFailed", "messageRead"]


class TriggerSubscriptionSchema(StrictSchema):
    notificationUrl = _notification_url(
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
        allow_none=True, metadata=meta("Teams Activity ID", "Teams' own ID of the message that was read (its activity ID).")
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
