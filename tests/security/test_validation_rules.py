"""Validation as SECURITY.md documents it: unknown query parameters on every operation, deliverAt
within [now - 5 minutes, now + 1 year], deliverAtLocalTime exactly HH:MM. Refused input changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.security.conftest import all_deliveries, error_of
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


@pytest.fixture
def adele(live: LiveApp, connector: FakeConnector, make_user: Any) -> act.TeamsUser:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    return user


def iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def test_unknown_query_parameters_are_400_on_every_operation(live: LiveApp, adele: act.TeamsUser) -> None:
    calls = [
        ("POST", "/api/v1/messages", {"recipient": adele.upn, "text": "hi", "wait": 0}),
        ("GET", "/api/v1/messages/0123456789abcdef", None),
        ("PUT", "/api/v1/messages/0123456789abcdef", {"text": "x"}),
        ("DELETE", "/api/v1/messages/0123456789abcdef", None),
        ("GET", f"/api/v1/recipients/{adele.upn}", None),
        ("DELETE", f"/api/v1/recipients/{adele.upn}", None),
        ("GET", "/api/v1/recipients", None),
        ("POST", "/api/v1/broadcasts", {"recipients": [adele.upn], "text": "hi"}),
        ("GET", "/api/v1/broadcasts/0123456789abcdef", None),
        ("POST", "/api/v1/subscriptions", {"event": "any", "notificationUrl": "https://flow.example/x"}),
        ("DELETE", "/api/v1/subscriptions/0123456789abcdef", None),
    ]
    for method, path, body in calls:
        response = live.api(method, path + "?dryRun=true", API_KEY, json=body)
        assert response.status_code == 400, (method, path, response.text)
        error = error_of(response)
        assert error["code"] == "ValidationError" and error["target"] == "dryRun", (method, path, error)
        assert "'dryRun'" in error["message"]
    # Nothing was done: no message queued, the person still known, no subscription.
    assert all_deliveries(live) == []
    assert live.api("GET", f"/api/v1/recipients/{adele.upn}", API_KEY).status_code == 200
    assert live.runtime.call(live.runtime.store.subscriptions.list_all()) == []
    # Declared parameters still work; a misspelt one names what is accepted.
    assert live.api("GET", "/api/v1/recipients?status=blocked", API_KEY).status_code == 200
    typo = live.api("GET", "/api/v1/recipients?stauts=blocked", API_KEY)
    assert typo.status_code == 400 and "status" in error_of(typo)["message"]


def test_deliver_at_is_within_five_minutes_ago_and_a_year_ahead(live: LiveApp, adele: act.TeamsUser) -> None:
    now = dt.datetime.now(dt.UTC)
    for when in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", iso(now - dt.timedelta(minutes=10)),
                 iso(now + dt.timedelta(days=367))):  # fmt: skip
        response = live.api(
            "POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "x", "deliverAt": when}
        )
        assert response.status_code == 400, (when, response.text)
        assert error_of(response)["target"] == "deliverAt"
    assert all_deliveries(live) == []
    for when in (iso(now - dt.timedelta(minutes=2)), iso(now + dt.timedelta(days=300))):
        body = {"recipient": adele.upn, "text": "x", "deliverAt": when, "wait": 0}
        response = live.api("POST", "/api/v1/messages", API_KEY, json=body)
        assert response.status_code in (200, 202), (when, response.text)


@pytest.mark.parametrize(
    "value", ["09:00\n", "09:00\r\n", " 09:00", "9:00", "09:00:00", "24:00", "09:60", "\uff10\uff19:\uff10\uff10"]
)
def test_deliver_at_local_time_is_exactly_hh_mm(live: LiveApp, adele: act.TeamsUser, value: str) -> None:
    response = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "x", "deliverAtLocalTime": value}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["target"] == "deliverAtLocalTime"
    assert all_deliveries(live) == []
