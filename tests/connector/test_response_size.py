"""Every answer an agent can get stays below Copilot Studio's 500 KB limit for a tool's response:
each response schema filled at its largest (lists at their caps, strings at the limits of what they
hold), serialised as the API does, and the caps themselves enforced by the views and the schemas."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import Schema, fields
from teams_proactive.bot.delivery.engagement import Engagement
from teams_proactive.connector.schemas.broadcasts import BroadcastSchema
from teams_proactive.connector.schemas.cards import CardResponseSchema
from teams_proactive.connector.schemas.messages import DeliverySchema
from teams_proactive.connector.schemas.recipients import (
    MAX_PAGE_SIZE,
    RecipientPageSchema,
    RecipientQuerySchema,
    RecipientSchema,
)
from teams_proactive.connector.schemas.subscriptions import SubscriptionSchema
from teams_proactive.connector.views.broadcasts import MAX_LISTED_FAILURES, present

LIMIT = 500_000
# The longest each string holds: addresses as the API accepts them (320), Entra display names (256),
# user principal names (113), IDs, our own error sentences; timestamps are ISO 8601.
STRING_MAX = {
    "recipient": 320, "email": 320, "name": 256, "upn": 113, "aadObjectId": 36, "tenantId": 36, "id": 64,
    "timezone": 64, "locale": 16, "reason": 400, "message": 400, "code": 40, "conversationId": 256,
    "messageId": 64, "nextLink": 2048, "action": 256, "verb": 256, "surface": 13, "status": 11,
}  # fmt: skip
LIST_SIZE = {"value": MAX_PAGE_SIZE, "failures": MAX_LISTED_FAILURES, "surfaces": 5}
# A card's submitted values: Teams carries at most about 28 KB in one activity.
SUBMITTED_BYTES = 28_000
TIMESTAMP = "2026-11-30T15:00:00.000Z"


def largest(schema: Schema) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for name, field in schema.fields.items():
        value[name] = _largest_field(name, field)
    return value


def _largest_field(name: str, field: fields.Field) -> Any:
    if isinstance(field, fields.Nested):
        return largest(field.schema)
    if isinstance(field, fields.List):
        return [_largest_field(name, field.inner) for _ in range(LIST_SIZE.get(name, 1))]
    if isinstance(field, fields.Dict):
        return {f"input{i}": "x" * 100 for i in range(SUBMITTED_BYTES // 110)}
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Float):
        return 100.0
    if isinstance(field, fields.Integer):
        return 1_000_000_000
    if field.metadata.get("format") == "date-time":
        return TIMESTAMP
    return "x" * STRING_MAX.get(name, 256)


@pytest.mark.parametrize(
    "schema",
    [DeliverySchema, CardResponseSchema, RecipientSchema, RecipientPageSchema, BroadcastSchema, SubscriptionSchema],
    ids=lambda s: s.__name__,
)
def test_largest_answer_is_below_copilot_studios_limit(schema: type[Schema]) -> None:
    answer = schema().dump(largest(schema()))
    size = len(json.dumps(answer, ensure_ascii=False).encode("utf-8"))
    assert size < LIMIT, f"{schema.__name__}: {size:,} bytes"


def test_page_size_is_capped() -> None:
    assert RecipientQuerySchema().validate({"pageSize": MAX_PAGE_SIZE}) == {}
    assert "pageSize" in RecipientQuerySchema().validate({"pageSize": MAX_PAGE_SIZE + 1})


def test_a_broadcast_answer_lists_at_most_the_capped_failures() -> None:
    failures = [
        {"recipient": f"p{i}@contoso.com", "code": "RecipientNotFound", "message": "x" * 400} for i in range(5000)
    ]
    broadcast = SimpleNamespace(
        id="b1", status="completed", total=5000, card_type=None, expanded=5000, install_if_missing=False, created_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp(),
        completed_at=dt.datetime(2026, 11, 30, 1, tzinfo=dt.UTC).timestamp(),
    )  # fmt: skip
    counts = {"queued": 0, "sending": 0, "delivered": 0, "failed": 5000, "skipped": 0}
    # Reads over the whole retention: a bucket an hour for 30 days.
    start = broadcast.created_at
    engagement = Engagement(
        delivered=5000, read=5000, answered=5000, first_read_at=start, last_read_at=start + 720 * 3600,
        timeline=[(start + hour * 3600, 7) for hour in range(720)],
    )  # fmt: skip
    report = {"broadcast": broadcast, "progress": 100.0, "counts": counts, "failures": failures}
    body = present({**report, "engagement": engagement})
    assert len(body["failures"]) == MAX_LISTED_FAILURES and body["counts"]["failed"] == 5000
    assert len(json.dumps(BroadcastSchema().dump(body)).encode()) < LIMIT
