"""Only the record's own failures count towards quarantine: a store or network that is briefly away
(Cosmos DB throttling a large broadcast, a timeout) never moves good records aside."""

from __future__ import annotations

import sqlite3

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from teams_proactive.bot.quarantine import MAX_FAILURES, FailureCounter, is_passing
from teams_proactive.bot.store.base import ConcurrencyConflict, StoreError


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message="busy")
    error.status_code = status
    return error


@pytest.mark.parametrize(
    "exc",
    [
        StoreError("down"),
        ConcurrencyConflict("changed"),
        TimeoutError(),
        ConnectionResetError(),
        aiohttp.ClientConnectionError(),
        sqlite3.OperationalError("database is locked"),
        ServiceRequestError("unreachable"),
        http_error(429),
        http_error(408),
        http_error(503),
    ],
)
def test_passing_failures_never_count(exc: Exception) -> None:
    assert is_passing(exc)
    counter = FailureCounter()
    assert not any(counter.failed("d1", exc) for _ in range(MAX_FAILURES * 3))


@pytest.mark.parametrize("exc", [AttributeError("'list' object has no attribute 'get'"), KeyError("x"), http_error(400)])
def test_the_records_own_failures_count(exc: Exception) -> None:
    assert not is_passing(exc)
    counter = FailureCounter()
    assert [counter.failed("d1", exc) for _ in range(MAX_FAILURES)] == [False] * (MAX_FAILURES - 1) + [True]
