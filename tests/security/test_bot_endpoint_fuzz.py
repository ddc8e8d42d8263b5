"""Malformed activities to /api/messages: a table of known-bad shapes and hypothesis-generated ones.

Whatever arrives, the answer is 200 (a turn ran, or an unknown type was acknowledged), 400 (not an
activity) or 413 (too large), never a 5xx; and nothing is stored from an activity that was refused
or is not a well-formed, known activity type.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from teams_proactive.bot.adapter import KNOWN_ACTIVITY_TYPES

from tests.security.conftest import all_deliveries, all_references
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

USER = act.TeamsUser(name="Fuzz Target", upn="fuzz@contoso.example")


def _stored(live: LiveApp) -> tuple[int, int]:
    return len(all_references(live)), len(all_deliveries(live))


def _post_raw(live: LiveApp, data: bytes, content_type: str = "application/json") -> Any:
    return live.http.post(live.url + "/api/messages", data=data, headers={"Content-Type": content_type}, timeout=60)


# ---- the table -------------------------------------------------------------------------------


def _base(connector: FakeConnector) -> dict[str, Any]:
    return act.message(USER, connector.service_url("fuzz"), "hello")


def _without(path: str) -> Any:
    def change(activity: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = activity
        for name in parents:
            node = node[name]
        del node[last]

    return change


def _setting(path: str, value: Any) -> Any:
    def change(activity: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = activity
        for name in parents:
            node = node[name]
        node[last] = value

    return change


MALFORMED_400 = {
    "missing conversation": _without("conversation"),
    "conversation without id": _without("conversation.id"),
    "conversation is a string": _setting("conversation", "a:123"),
    "conversation id is a list": _setting("conversation.id", [1]),
    "missing type": _without("type"),
    "type is a number": _setting("type", 7),
    "empty type": _setting("type", ""),
    "from is a list": _setting("from", ["x"]),
    "from id is a number": _setting("from.id", 29),
    "aadObjectId is an object": _setting("from.aadObjectId", {"x": 1}),
    "serviceUrl missing": _without("serviceUrl"),
    "serviceUrl is a number": _setting("serviceUrl", 443),
    "channelData is a string": _setting("channelData", "tenant"),
    "tenant is a string": _setting("channelData.tenant", "tenant-contoso"),
    "tenant id is a number": _setting("channelData.tenant.id", 42),
    "timestamp not a date": _setting("timestamp", "yesterday-ish"),
    "timestamp a number": _setting("timestamp", 1700000000),
    "membersAdded not a list": _setting("membersAdded", {"id": "x"}),
    "membersAdded of strings": _setting("membersAdded", ["29:abc"]),
    "entities of numbers": _setting("entities", [1, 2]),
    "attachments of strings": _setting("attachments", ["x"]),
    "text is an object": _setting("text", {"t": "x"}),
    "isGroup is a string": _setting("conversation.isGroup", "yes"),
}


@pytest.mark.parametrize("case", list(MALFORMED_400))
def test_malformed_activity_is_400_and_nothing_stored(live: LiveApp, connector: FakeConnector, case: str) -> None:
    activity = _base(connector)
    MALFORMED_400[case](activity)
    before = _stored(live)
    response = live.activity(activity)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "ValidationError"
    assert _stored(live) == before == (0, 0)
    assert connector.sent() == []


@pytest.mark.parametrize(
    "data",
    [
        b'{"type": "message", "text": "trunc',
        b"",
        b"null",
        b"[]",
        b'"message"',
        b"\xff\xfe\xfd",
        b'{"type": "message"}' * 3,
        json.dumps({"type": "message", "nested": [[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]}).encode(),
    ],
)
def test_unreadable_body_is_400(live: LiveApp, data: bytes) -> None:
    response = _post_raw(live, data)
    assert response.status_code == 400, response.text
    assert _stored(live) == (0, 0)


def test_deeply_nested_json_is_refused_without_a_5xx(live: LiveApp) -> None:
    response = _post_raw(live, b"[" * 50_000 + b"]" * 50_000)
    assert response.status_code == 400, response.text


def test_huge_activity_is_413_and_nothing_stored(live: LiveApp, connector: FakeConnector) -> None:
    activity = _base(connector)
    activity["text"] = "x" * (300 * 1024)
    assert live.activity(activity).status_code == 413
    assert _stored(live) == (0, 0)


def test_huge_activity_without_content_length_is_refused(live: LiveApp, connector: FakeConnector) -> None:
    body = json.dumps({**_base(connector), "text": "x" * (300 * 1024)}).encode()

    def chunks() -> Any:
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    response = live.http.post(
        live.url + "/api/messages", data=chunks(), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code in (400, 413), response.text
    assert _stored(live) == (0, 0)


@pytest.mark.parametrize("kind", ["somethingNew", "MESSAGE", "message ", "<script>", "x" * 500])
def test_unknown_activity_type_is_acknowledged_and_ignored(live: LiveApp, connector: FakeConnector, kind: str) -> None:
    activity = _base(connector)
    activity["type"] = kind
    response = live.activity(activity)
    assert response.status_code == 200, response.text
    assert _stored(live) == (0, 0)
    assert connector.sent() == []


def test_well_formed_activity_is_still_recorded(live: LiveApp, connector: FakeConnector) -> None:
    # The control for the tests above: the same base activity, unmodified, is taken.
    assert live.activity(_base(connector)).status_code == 200
    assert _stored(live)[0] == 1


# ---- hypothesis ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "type", "id", "serviceUrl", "channelId", "from", "conversation", "recipient", "channelData", "text", "value",
    "timestamp", "locale", "localTimezone", "entities", "attachments", "membersAdded", "membersRemoved", "action",
    "name", "replyToId", "from.id", "from.aadObjectId", "conversation.id", "conversation.conversationType",
    "conversation.tenantId", "channelData.tenant", "channelData.tenant.id", "recipient.id",
]  # fmt: skip
TYPES = st.sampled_from(sorted(KNOWN_ACTIVITY_TYPES)) | st.text(max_size=15)
# Service URLs that fail fast: the bot must never be sent to wait on a random host.
SERVICE_URLS = st.sampled_from(["", "not a url", "ftp://x", "http://"]) | st.integers() | st.none()


@st.composite
def mutated_activities(draw: st.DrawFn, service_url: str) -> dict[str, Any]:
    maker = draw(st.sampled_from([act.message, act.install, act.uninstall]))
    user = act.TeamsUser(name="Fuzz", upn="fuzz@contoso.example")
    activity = maker(user, service_url) if maker is not act.message else act.message(user, service_url, "hi")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(FIELDS))
        *parents, last = path.split(".")
        node: Any = activity
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        how = draw(st.sampled_from(["delete", "json", "type", "serviceUrl"]))
        if how == "delete":
            node.pop(last, None)
        elif how == "type" or last == "type":
            node[last] = draw(TYPES)
        elif last == "serviceUrl" or how == "serviceUrl":
            if last == "serviceUrl":
                node[last] = draw(SERVICE_URLS)
        else:
            node[last] = draw(JSON)
    return activity


def _well_formed_reference(ref: Any, sent: dict[str, Any]) -> None:
    conversation = sent.get("conversation") or {}
    sender = sent.get("from") or {}
    assert ref.conversation_id == conversation.get("id"), (ref, sent)
    assert ref.user_id == sender.get("id"), (ref, sent)
    assert isinstance(ref.service_url, str) and ref.service_url == sent.get("serviceUrl")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_activities_never_5xx_and_refused_ones_store_nothing(
    live: LiveApp, connector: FakeConnector, data: st.DataObject
) -> None:
    service_url = connector.service_url("fuzz")
    activity = data.draw(mutated_activities(service_url) | JSON, label="activity")
    before_refs = {r.doc_id: r.to_doc() for r in all_references(live)}
    before_deliveries = len(all_deliveries(live))
    response = live.activity(copy.deepcopy(activity))
    assert response.status_code in (200, 400), response.text
    event(f"status {response.status_code}")
    after_refs = {r.doc_id: r for r in all_references(live)}
    assert len(all_deliveries(live)) == before_deliveries  # an activity never creates a delivery
    changed = [r for key, r in after_refs.items() if before_refs.get(key) != r.to_doc()]
    if (
        response.status_code != 200
        or not isinstance(activity, dict)
        or activity.get("type") not in KNOWN_ACTIVITY_TYPES
    ):
        assert changed == [], (response.status_code, activity)
    event("stored" if changed else "nothing stored")
    for ref in changed:
        if ref.user_key == (activity["from"].get("aadObjectId") or activity["from"].get("id") or "").lower():
            _well_formed_reference(ref, activity)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2048) | JSON.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_5xx(live: LiveApp, body: bytes) -> None:
    response = _post_raw(live, body)
    assert response.status_code in (200, 400), response.text
    assert _stored(live) == (0, 0)
