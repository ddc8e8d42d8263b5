"""StartBroadcast, GetBroadcast, UpdateBroadcast and ListBroadcastRecipients: one message to many people."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from teams_proactive.connector.schemas.common import (
    CARD_TYPE,
    DATE_TIME,
    MessageContentSchema,
    StrictSchema,
    meta,
)

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
