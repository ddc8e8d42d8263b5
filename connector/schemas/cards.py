"""SendCardAndWait, GetCardResponse and GetCardAnswerSchema: a card, its answer and the answer's shape."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates
from teams_proactive.connector.schemas.common import (
    CARD_TYPE,
    DATE_TIME,
    RECIPIENT_PICKER,
    SUBMITTED_VALUE,
    DeliveryErrorSchema,
    StrictSchema,
    check_card,
    meta,
    notification_url,
)


class SendCardAndWaitSchema(StrictSchema):
    notificationUrl = notification_url(
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
