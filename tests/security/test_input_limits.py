"""Input limits: body size, Teams' message size, Adaptive Card shape, recipient caps, strict schemas."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.security.conftest import all_deliveries, error_of
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Hi"}]}


@pytest.fixture
def adele(live: LiveApp, connector: FakeConnector, make_user) -> act.TeamsUser:  # type: ignore[no-untyped-def]
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    return user


def _send(live: LiveApp, body: Any) -> Any:
    return live.api("POST", "/api/v1/messages", API_KEY, json=body)


# ---- sizes -----------------------------------------------------------------------------------


def test_body_over_the_cap_is_413_before_anything_is_parsed(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp({**app_env, "MAX_BODY_BYTES": "65536"}) as app:
        response = app.api("POST", "/api/v1/messages", API_KEY, json={"recipient": "a@b.example", "text": "x" * 70_000})
        assert response.status_code == 413, response.text
        assert error_of(response)["code"] == "MessageTooLarge"
        assert all_deliveries(app) == []


def test_activity_body_over_its_cap_is_413(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    activity = act.message(user, connector.service_url("a"), "x" * 300_000)
    response = live.activity(activity)
    assert response.status_code == 413, response.text
    assert live.runtime.call(live.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower())) == []


@pytest.mark.parametrize(
    ("content", "target"),
    [
        ({"text": "x" * 41_000}, "text"),  # 82,000 bytes as UTF-16: over the 80 KB cap
        ({"text": "\U0001F600" * 21_000}, "text"),  # 4 bytes each as UTF-16: over the cap at 21,000 characters
        ({"card": {**CARD, "body": [{"type": "TextBlock", "text": "y" * 41_000}]}}, "card"),
        ({"text": "x" * 20_500, "card": {**CARD, "body": [{"type": "TextBlock", "text": "y" * 20_500}]}}, "card"),
    ],
)
def test_message_over_teams_cap_is_413_and_not_queued(
    live: LiveApp, adele: act.TeamsUser, content: dict[str, Any], target: str
) -> None:
    response = _send(live, {"recipient": adele.upn, **content})
    assert response.status_code == 413, response.text
    error = error_of(response)
    assert error["code"] == "MessageTooLarge" and error["target"] == target
    assert all_deliveries(live) == []


def test_message_just_under_the_cap_is_sent(live: LiveApp, adele: act.TeamsUser) -> None:
    response = _send(live, {"recipient": adele.upn, "text": "x" * 38_000})
    assert response.status_code == 200, response.text


def test_update_over_the_cap_is_413(live: LiveApp, adele: act.TeamsUser) -> None:
    sent = _send(live, {"recipient": adele.upn, "text": "small"}).json()
    response = live.api("PUT", f"/api/v1/messages/{sent['id']}", API_KEY, json={"text": "x" * 60_000})
    assert response.status_code == 413, response.text


def test_broadcast_over_the_cap_is_413(live: LiveApp, adele: act.TeamsUser) -> None:
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [adele.upn], "text": "x" * 60_000})
    assert response.status_code == 413, response.text


# ---- Adaptive Card shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "says"),
    [
        ([CARD], "mapping"),
        ('{"type": "AdaptiveCard"}', "mapping"),
        (42, "mapping"),
        ({"version": "1.5", "body": []}, "AdaptiveCard"),
        ({"type": "HeroCard", "version": "1.5"}, "AdaptiveCard"),
        ({"type": "AdaptiveCard"}, "version"),
        ({"type": "AdaptiveCard", "version": 1.5}, "version"),
        ({"type": "AdaptiveCard", "version": ""}, "version"),
    ],
)
@pytest.mark.parametrize("route", ["SendMessage", "StartBroadcast", "UpdateMessage"])
def test_card_must_be_an_adaptive_card_object_with_a_version(
    live: LiveApp, adele: act.TeamsUser, card: Any, says: str, route: str
) -> None:
    if route == "SendMessage":
        response = _send(live, {"recipient": adele.upn, "card": card})
    elif route == "StartBroadcast":
        response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [adele.upn], "card": card})
    else:
        response = live.api("PUT", f"/api/v1/messages/{'a' * 32}", API_KEY, json={"card": card})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "ValidationError" and error["target"] == "card"
    assert says in error["message"]


# ---- recipient caps --------------------------------------------------------------------------


def test_broadcast_recipient_list_is_capped(live: LiveApp) -> None:
    recipients = [f"u{i}@contoso.example" for i in range(100_001)]
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": recipients, "text": "hi"})
    assert response.status_code == 400, response.text
    assert error_of(response)["target"] == "recipients"


def test_broadcast_at_the_recipient_cap_fits_in_the_body_cap(live: LiveApp) -> None:
    # 100,000 realistic addresses get past the body cap to validation (the body cap must not undercut
    # the documented list cap); the card is made invalid so that no broadcast actually starts.
    recipients = [f"firstname.lastname{i:06d}@contoso.onmicrosoft.com" for i in range(100_000)]
    body = {"recipients": recipients, "card": {"type": "AdaptiveCard"}}
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["target"] == "card"


@pytest.mark.parametrize(
    "body",
    [
        {"recipients": ["ok@contoso.example", 7], "text": "hi"},
        {"recipients": ["ok@contoso.example", ""], "text": "hi"},
        {"recipients": ["x" * 321], "text": "hi"},
        {"recipients": "ok@contoso.example", "text": "hi"},
    ],
)
def test_broadcast_recipients_must_be_addresses(live: LiveApp, body: dict[str, Any]) -> None:
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["target"].startswith("recipients")


# ---- strict schemas --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/messages", {"recipient": "a@contoso.example", "text": "hi", "colour": "red", "urgent": True}),
        ("PUT", f"/api/v1/messages/{'a' * 32}", {"text": "hi", "colour": "red", "urgent": True}),
        (
            "POST",
            "/api/v1/broadcasts",
            {"recipients": ["a@contoso.example"], "text": "hi", "colour": "red", "urgent": 1},
        ),
    ],
)
def test_unknown_fields_are_refused_by_name(live: LiveApp, method: str, path: str, body: dict[str, Any]) -> None:
    response = live.api(method, path, API_KEY, json=body)
    assert response.status_code == 400, response.text
    message = error_of(response)["message"]
    assert "colour" in message and "urgent" in message


def test_unknown_query_parameters_are_refused_by_name(live: LiveApp) -> None:
    response = live.api("GET", "/api/v1/recipients?stauts=blocked", API_KEY)
    assert response.status_code == 400, response.text
    assert "stauts" in error_of(response)["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"recipient": "a@contoso.example", "text": 5},
        {"recipient": ["a@contoso.example"], "text": "hi"},
        {"recipient": "", "text": "hi"},
        {"recipient": "a@contoso.example", "text": "hi", "wait": "soon"},
        {"recipient": "a@contoso.example", "text": "hi", "wait": 10_000},
        {"recipient": "a@contoso.example", "text": "hi", "deliverAt": "tomorrow"},
        {"recipient": "a@contoso.example", "text": "hi", "deliverAt": "2030-01-01T09:00:00"},
        {"recipient": "a@contoso.example", "text": "hi", "deliverAtLocalTime": "25:00"},
        {"recipient": "a@contoso.example", "text": "hi", "summary": "s" * 251},
        {"recipient": "a@contoso.example"},
        {"text": "hi"},
    ],
)
def test_wrong_types_and_values_are_400(live: LiveApp, body: dict[str, Any]) -> None:
    response = _send(live, body)
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "ValidationError"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"recipient": "a@contoso.example", "text": ', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"null", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"recipient=a&text=b", "application/x-www-form-urlencoded"),
    ],
)
def test_non_object_bodies_are_refused_without_a_5xx(live: LiveApp, data: bytes, content_type: str) -> None:
    response = live.api("POST", "/api/v1/messages", API_KEY, data=data, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()
