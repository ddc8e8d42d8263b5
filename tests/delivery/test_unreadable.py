"""bot/unreadable.py: one record that cannot be decoded is set aside with its reason; the rest are read."""

from __future__ import annotations

import json

from teams_proactive.bot import jsoncodec
from teams_proactive.bot.model import Delivery
from teams_proactive.bot.unreadable import MAX_REASON_CHARS, Unreadable, decode_each, reason_of


def test_the_record_the_issue_planted_is_set_aside_and_the_others_are_read() -> None:
    good = {"id": "d1", "tenant_id": "t", "user_key": "u", "recipient": "alice@contoso.example", "owner": "k"}
    rows = [
        ("d1", jsoncodec.dumps(good)),
        # What the SQLite store held before issue 24: json's escape of a lone surrogate.
        ("d2", json.dumps({**good, "id": "d2", "card_type": "\ud800"})),
        ("d3", jsoncodec.dumps({**good, "id": "d3"})),
        ("d4", "{not json"),
    ]
    decoded, unreadable = decode_each(rows, lambda raw: jsoncodec.loads(raw), "delivery")
    assert [d["id"] for d in decoded] == ["d1", "d3"]
    assert [(u.kind, u.record_id) for u in unreadable] == [("delivery", "d2"), ("delivery", "d4")]
    assert unreadable[0].reason.startswith("JSONDecodeError") and "surrogate" in unreadable[0].reason


def test_a_model_that_refuses_the_document_is_set_aside_too() -> None:
    decoded, unreadable = decode_each([("x", {"id": 1})], Delivery.from_doc, "delivery")
    assert decoded == [] and isinstance(unreadable[0], Unreadable)


def test_the_reason_never_quotes_the_record() -> None:
    secret = "alice@contoso.example said something private"
    assert reason_of(KeyError(secret)) == "KeyError"
    assert reason_of(ValueError(f"bad value: '{secret}'")) == "ValueError"
    assert reason_of(ValueError("no low surrogate in string: line 1 column 610 (char 609)")).startswith("ValueError: no")
    assert len(reason_of(ValueError("x" * 10_000))) == MAX_REASON_CHARS
