"""GetRecipient and ListRecipients: a person's reachability and the page of people."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from teams_proactive.connector.schemas.common import (
    CHAT_STATUSES,
    DATE_TIME,
    SURFACE_NAMES,
    StrictSchema,
    meta,
)

MAX_PAGE_SIZE = 100


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
