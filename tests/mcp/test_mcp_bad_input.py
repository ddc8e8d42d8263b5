"""Bad input to POST /mcp: JSON-RPC errors or tool errors, never a 5xx, and nothing queued or sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mcp.client.session import ClientSession

from tests.conftest import API_KEY
from tests.mcp.support import rpc, with_session
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

BODY_CAP = 256 * 1024


@pytest.fixture
def live(app_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp({**app_env, "MAX_BODY_BYTES": str(BODY_CAP)}) as app:
        yield app


@pytest.fixture
def person(live: LiveApp, connector: FakeConnector, make_user) -> act.TeamsUser:  # type: ignore[no-untyped-def]
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    return user


def queued(live: LiveApp) -> int:
    """Deliveries in the outbox (any status) and broadcasts: what a call that changed something leaves."""
    page = live.runtime.call(live.runtime.store.outbox.page(limit=10_000))
    return len(page.items) + len(live.runtime.call(live.runtime.store.broadcasts.ids()))


def call(name: str, arguments: Any, id_: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def test_a_batch_of_1000_calls_is_refused_whole(live: LiveApp, connector: FakeConnector, person: act.TeamsUser) -> None:
    before, sent = queued(live), len(connector.sent())
    batch = [call("send_message", {"recipient": person.upn, "text": f"batch {i}"}, i) for i in range(1000)]
    response = rpc(live, batch, API_KEY)
    assert response.status_code == 400
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None
    assert "batch" in body["error"]["message"]
    assert queued(live) == before and len(connector.sent()) == sent


MALFORMED: dict[str, tuple[Any, int, int]] = {
    # case: (payload, HTTP status, JSON-RPC error code)
    "not JSON": (b"{not json", 400, -32700),
    "empty body": (b"", 400, -32700),
    "nested too deeply": (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":{"card":'
        + b'{"a":' * 5000
        + b"1"
        + b"}" * 5000
        + b"}}}",
        400,
        -32700,
    ),
    "not a request": (b'"hello"', 400, -32602),
    "unknown method": ({"jsonrpc": "2.0", "id": 1, "method": "messages/send"}, 200, -32601),
    "arguments not an object": (call("send_message", "send it to adele"), 200, -32602),
    "unknown tool": (call("forget_recipient", {"recipient": "adele@contoso.example"}), 200, -32602),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_messages_get_json_rpc_errors(
    live: LiveApp, connector: FakeConnector, person: act.TeamsUser, case: str
) -> None:
    payload, status, code = MALFORMED[case]
    before = queued(live)
    response = rpc(live, payload, API_KEY)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert queued(live) == before and len(connector.sent()) == 1  # the welcome message only


def test_transport_refusals_are_json_rpc_errors(live: LiveApp) -> None:
    listing = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    wrong_type = rpc(live, listing, API_KEY, **{"Content-Type": "text/plain"})
    get = live.http.get(live.url + "/mcp", headers={"X-API-Key": API_KEY, "Accept": "text/event-stream"})
    for response, status in ((wrong_type, 400), (get, 405)):
        assert response.status_code == status
        assert response.json()["error"]["message"]
    assert get.headers["Allow"] == "POST"


def test_a_body_over_the_cap_is_413_before_parsing(live: LiveApp, person: act.TeamsUser) -> None:
    before = queued(live)
    response = rpc(live, call("send_message", {"recipient": person.upn, "text": "x" * (BODY_CAP + 1)}), API_KEY)
    assert response.status_code == 413
    assert response.json()["error"]["data"]["code"] == "MessageTooLarge"
    assert queued(live) == before


def test_oversized_and_mistyped_arguments_are_tool_errors(
    live: LiveApp, connector: FakeConnector, person: act.TeamsUser
) -> None:
    before, sent = queued(live), len(connector.sent())
    cases = {
        "text over Teams' limit": ({"recipient": person.upn, "text": "x" * 150_000}, "MessageTooLarge"),
        "recipient too long": ({"recipient": "a" * 5000 + "@contoso.example", "text": "hi"}, "ValidationError"),
        "recipient a number": ({"recipient": 42, "text": "hi"}, "ValidationError"),
        "wait a word": ({"recipient": person.upn, "text": "hi", "wait": "soon"}, "ValidationError"),
        "wait too long": ({"recipient": person.upn, "text": "hi", "wait": 3600}, "ValidationError"),
        "unknown argument": ({"recipient": person.upn, "text": "hi", "priority": "high"}, "ValidationError"),
        "card not a card": ({"recipient": person.upn, "card": {"text": "hi"}}, "ValidationError"),
        "missing recipient": ({"text": "hi"}, "ValidationError"),
    }

    async def work(session: ClientSession) -> dict[str, Any]:
        return {case: await session.call_tool("send_message", args) for case, (args, _) in cases.items()}

    results = with_session(live.url, API_KEY, work)
    for case, (_, code) in cases.items():
        result = results[case]
        assert result.is_error is True, case
        assert result.structured_content["error"]["code"] == code, (case, result.structured_content)
    assert "priority" in results["unknown argument"].structured_content["error"]["message"]
    assert results["wait a word"].structured_content["error"]["target"] == "wait"
    assert queued(live) == before and len(connector.sent()) == sent


def test_the_key_rate_limit_answers_429_with_retry_after(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp({**app_env, "RATE_LIMIT_PER_MINUTE": "2"}) as limited:
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        answers = [rpc(limited, listing, API_KEY) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["data"]["code"] == "Throttled"
    assert "StartBroadcast" in refused.json()["error"]["message"]
