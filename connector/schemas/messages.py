"""SendMessage, GetMessage, UpdateMessage and DeleteMessage: the request and the delivery it answers with."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema
from teams_proactive.connector.schemas.common import (
    CARD_TYPE,
    DATE_TIME,
    RECIPIENT_PICKER,
    DeliveryErrorSchema,
    MessageContentSchema,
    meta,
)

# deliverAtLocalTime: "HH:MM" (the next one) or "YYYY-MM-DDTHH:MM" (that local date). Used with
# fullmatch, not match with "$" ("$" also matches before a trailing newline, "09:00\n"); [0-9], not
# \d, which also takes other scripts' digits (fullwidth, Arabic-Indic).
HHMM = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T)?([01][0-9]|2[0-3]):[0-5][0-9]")
# How far a deliverAt may be from now: a little in the past (clock skew, a slow flow) is "now";
# further back is a mistake (year 1 would go at once), and more than a year ahead would be kept forever.
DELIVER_AT_PAST = dt.timedelta(minutes=5)
DELIVER_AT_FUTURE = dt.timedelta(days=365)


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
