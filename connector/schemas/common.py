"""What every resource's schemas share: the designer's field metadata, shared enums and fields, the error shape.

Field metadata carries what the Power Automate designer shows: ``x-ms-summary`` (the label),
``description`` (the help text) and ``x-ms-visibility``. Each resource's own schemas live beside it:
``schemas/messages.py`` for ``views/messages.py``, and so on.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

# Power Platform shows a date-time field with a date picker and lets flows compare it as a time.
DATE_TIME = {"format": "date-time"}
# bot.model.ReferenceStatus and bot.model.Surface, as the designer offers them.
CHAT_STATUSES = ["active", "uninstalled", "blocked", "notFound", "expired"]
SURFACE_NAMES = ["teams", "teams-copilot", "m365-copilot", "group", "channel"]


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


class DeliveryErrorSchema(Schema):
    # Shown under their parent "Error": the designer writes "Error Code", so the labels do not repeat it.
    code = fields.String(metadata=meta("Code", "Why the message was not delivered, as a code."))
    message = fields.String(metadata=meta("Message", "Why the message was not delivered, in plain words."))
    teamsCode = fields.String(
        metadata=meta("Teams Code", "The error code Teams answered with, verbatim, when Teams refused the message.")
    )


def notification_url(label: str, description: str) -> fields.Url:
    """The engine's callback URL of a webhook trigger or action: internal, required, marked for the engine."""
    return fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=4000),
        # Power Platform knows "uri", not apispec's "url".
        metadata=meta(label, description, "internal", format="uri", **{"x-ms-notification-url": True}),
    )
