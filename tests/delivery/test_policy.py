"""What a Bot Connector failure means (retry or not, the person's status), backoff, and local send times."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from teams_proactive.bot.delivery.policy import backoff_seconds, judge
from teams_proactive.bot.delivery.service import next_local_time
from teams_proactive.bot.model import ReferenceStatus
from teams_proactive.bot.outbound import ConnectorError, parse_retry_after

UTC = dt.UTC


@pytest.mark.parametrize("status", [0, 412, 429, 502, 503, 504])
def test_transient_failures_are_retried(status: int) -> None:
    verdict = judge(ConnectorError(status, "Whatever", "busy"))
    assert verdict.retry is True
    assert verdict.reference_status is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_refusals_are_not_retried(status: int) -> None:
    assert judge(ConnectorError(status, "Whatever", "no")).retry is False


@pytest.mark.parametrize(
    ("status", "code", "reference_status"),
    [
        (403, "MessageWritesBlocked", ReferenceStatus.BLOCKED),
        (403, "ConversationBlockedByUser", ReferenceStatus.BLOCKED),
        (403, "BotNotInConversationRoster", ReferenceStatus.UNINSTALLED),
        (403, "ForbiddenOperationException", ReferenceStatus.UNINSTALLED),
        (403, "BotDisabledByAdmin", ReferenceStatus.BLOCKED),
        (404, "ConversationNotFound", ReferenceStatus.NOT_FOUND),
    ],
)
def test_documented_codes_change_the_reference(status: int, code: str, reference_status: str) -> None:
    verdict = judge(ConnectorError(status, code, "refused"))
    assert verdict == verdict.__class__(False, "RecipientUnreachable", verdict.message, reference_status, code)


def test_other_refusals_leave_the_reference_alone() -> None:
    assert judge(ConnectorError(403, "SomethingElse", "no")).reference_status is None
    assert judge(ConnectorError(413, "MessageSizeTooBig", "")).error_code == "MessageTooLarge"
    assert judge(ConnectorError(401, "Unauthorized", "")).error_code == "BotUnauthorized"


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after() -> None:
    random.seed(3)
    delays = [backoff_seconds(attempt, None, base=1.0, cap=300.0) for attempt in range(1, 12)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(300.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(backoff_seconds(3, None), 6) for _ in range(20)}) > 1  # jittered
    assert backoff_seconds(1, 30.0) == 30.0
    assert backoff_seconds(10, 1.0, cap=300.0) >= 256 / 2


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = (dt.datetime.now(UTC) + dt.timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 100 < (parse_retry_after(later) or 0) <= 120


# ---- deliverAtLocalTime ----------------------------------------------------------------------
def test_later_today_or_else_tomorrow() -> None:
    after = dt.datetime(2026, 6, 10, 6, 0, tzinfo=UTC)  # 08:00 in Amsterdam (CEST, +2)
    assert next_local_time("09:00", "Europe/Amsterdam", after) == dt.datetime(2026, 6, 10, 7, 0, tzinfo=UTC)
    assert next_local_time("07:30", "Europe/Amsterdam", after) == dt.datetime(2026, 6, 11, 5, 30, tzinfo=UTC)
    assert next_local_time("08:00", "Europe/Amsterdam", after) == dt.datetime(2026, 6, 11, 6, 0, tzinfo=UTC)


def test_the_recipients_zone_not_the_servers() -> None:
    after = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert next_local_time("09:00", "America/New_York", after) == dt.datetime(2026, 1, 15, 14, 0, tzinfo=UTC)
    assert next_local_time("09:00", "Asia/Kolkata", after) == dt.datetime(2026, 1, 16, 3, 30, tzinfo=UTC)


def test_across_the_spring_dst_change() -> None:
    # Amsterdam moves from +1 to +2 at 02:00 local on 29 March 2026.
    after = dt.datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # 13:00 CET on the day before
    assert next_local_time("09:00", "Europe/Amsterdam", after) == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    # 02:30 does not exist that night: it goes out at the same instant as 03:30 CEST.
    assert next_local_time("02:30", "Europe/Amsterdam", after) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_across_the_autumn_dst_change() -> None:
    # Amsterdam moves from +2 to +1 at 03:00 local on 25 October 2026.
    after = dt.datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert next_local_time("09:00", "Europe/Amsterdam", after) == dt.datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # 02:30 happens twice that night: the first one.
    assert next_local_time("02:30", "Europe/Amsterdam", after) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # New York changes a week later.
    ny = dt.datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    assert next_local_time("09:00", "America/New_York", ny) == dt.datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
