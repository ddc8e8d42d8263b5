"""ListReachablePeople: the recipient picker's choices."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from teams_proactive.connector.schemas.common import (
    StrictSchema,
    meta,
)


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
