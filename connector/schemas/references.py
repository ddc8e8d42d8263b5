"""ImportReferences: conversation references another bot collected, and the per-item report."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load, validate
from teams_proactive.connector.schemas.common import (
    StrictSchema,
    meta,
)

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
            "Why it was skipped: Unchanged, Older, MissingServiceUrl, UntrustedServiceUrl, NotPersonal, OtherTenant, MissingTenant, Invalid.",
        )
    )
    message = fields.String(metadata=meta("Message", "The reason in plain words."))


class ImportReportSchema(Schema):
    imported = fields.Integer(required=True, metadata=meta("Imported", "New references."))
    updated = fields.Integer(required=True, metadata=meta("Updated", "References that replaced older ones."))
    skipped = fields.Integer(required=True, metadata=meta("Skipped", "References not imported (see items)."))
    total = fields.Integer(required=True, metadata=meta("Total", "Items in the request."))
    items = fields.List(fields.Nested(ImportItemSchema), required=True, metadata=meta("Items", "One entry per item."))
