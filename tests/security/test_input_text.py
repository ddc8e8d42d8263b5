"""Text the store can always read back: a lone surrogate or a NUL is refused wherever it enters.

``json.loads`` turns ``"\\ud800"`` into a lone surrogate. Before this check, the issue's request below
was accepted (200), stored, and the dispatcher's claim failed to decode it every second, for ever:
no later send of any tenant left ``queued``. Each entry point is tried here: the API's JSON bodies,
query and path parameters, MCP tool arguments, inbound activities and the command line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from teams_proactive.bot import jsoncodec, text
from teams_proactive.connector import cli

from tests.conftest import API_KEY
from tests.mcp.support import rpc
from tests.security.conftest import all_deliveries, all_references, error_of, final_delivery
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

SURROGATE = "\\ud800"  # as it arrives: a JSON escape, valid JSON, not valid text
CARD = (
    '{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":"%s"}],'
    '"actions":[{"type":"Action.Submit","title":"OK"}]}'
)


@pytest.fixture
def adele(live: LiveApp, connector: FakeConnector, make_user) -> act.TeamsUser:  # type: ignore[no-untyped-def]
    user = make_user()
    assert live.activity(act.install(user, connector.service_url("a"))).status_code == 200
    return user


def post_raw(live: LiveApp, path: str, body: str) -> Any:
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    return live.http.post(live.url + path, data=body.encode("ascii"), headers=headers, timeout=30)


def stored(live: LiveApp) -> tuple[int, int, int]:
    store = live.runtime.store
    broadcasts = live.runtime.call(store.broadcasts.ids())
    return len(all_deliveries(live)), len(broadcasts), len(all_references(live))


def test_the_issues_request_is_refused_and_delivery_goes_on(live: LiveApp, adele: act.TeamsUser) -> None:
    body = '{"recipient":"' + adele.upn + '","text":"x","cardType":"' + SURROGATE + '","wait":0}'
    response = post_raw(live, "/api/v1/messages", body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "ValidationError" and error["target"] == "cardType"
    assert "surrogate" in error["message"]
    sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": adele.upn, "text": "after", "wait": 0})
    assert final_delivery(live, sent.json()["id"])["status"] == "delivered"
    assert len(all_deliveries(live)) == 1  # read back through the store: every record decodes


@pytest.mark.parametrize(
    ("path", "body", "target"),
    [
        ("/api/v1/messages", '{"recipient":"a%s@contoso.example","text":"x"}', "recipient"),
        ("/api/v1/messages", '{"recipient":"{upn}","text":"x%s"}', "text"),
        ("/api/v1/messages", '{"recipient":"{upn}","text":"x","idempotencyKey":"k%s"}', "idempotencyKey"),
        ("/api/v1/messages", '{"recipient":"{upn}","text":"x","summary":"%s"}', "summary"),
        ("/api/v1/messages", '{"recipient":"{upn}","card":' + CARD + "}", "card.body[0].text"),
        ("/api/v1/messages", '{"recipient":"{upn}","text":"x","card":{"type":"AdaptiveCard","%s":1}}', "card"),
        ("/api/v1/broadcasts", '{"recipients":["{upn}"],"text":"x%s"}', "text"),
        ("/api/v1/broadcasts", '{"recipients":["{upn}","b%s@contoso.example"],"text":"x"}', "recipients[1]"),
        ("/api/v1/broadcasts", '{"recipients":["{upn}"],"text":"x","cardType":"%s"}', "cardType"),
        ("/api/v1/broadcasts", '{"recipients":["{upn}"],"text":"x","idempotencyKey":"%s"}', "idempotencyKey"),
        (
            "/api/v1/cards/wait",
            '{"recipient":"{upn}","card":' + (CARD % "ok") + ',"notificationUrl":"https://flow.example/%s"}',
            "notificationUrl",
        ),
        ("/api/v1/subscriptions", '{"event":"any","notificationUrl":"https://flow.example/run%s"}', "notificationUrl"),
    ],
)
@pytest.mark.parametrize("bad", [SURROGATE, "\\udfff", "\\u0000"], ids=["high", "low", "nul"])
def test_a_bad_string_anywhere_in_a_body_is_a_400_naming_it(
    live: LiveApp, adele: act.TeamsUser, path: str, body: str, target: str, bad: str
) -> None:
    before = stored(live)
    response = post_raw(live, path, body.replace("{upn}", adele.upn) % bad)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "ValidationError" and error["target"] == target, error
    assert stored(live) == before


def test_a_nul_in_a_path_or_query_parameter_is_a_400_naming_it(live: LiveApp, adele: act.TeamsUser) -> None:
    for url, target in (("/api/v1/recipients/a%00b", "recipient"), ("/api/v1/recipients?status=a%00", "status")):
        response = live.api("GET", url, API_KEY)
        assert response.status_code == 400, response.text
        assert error_of(response)["target"] == target
    assert live.api("DELETE", "/api/v1/recipients/x%00y", API_KEY).status_code == 400


def test_an_activity_with_a_bad_string_is_refused_before_the_turn(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    activity = json.dumps(act.message(user, connector.service_url("a"), "PLACEHOLDER")).replace("PLACEHOLDER", SURROGATE)
    response = live.http.post(
        live.url + "/api/messages", data=activity.encode(), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["target"] == "text"
    named = act.message(user, connector.service_url("a"), "hello")
    named["from"]["name"] = "Adele\x00"
    response = live.activity(named)
    assert response.status_code == 400 and error_of(response)["target"] == "from.name"
    assert all_references(live) == []


def test_mcp_tool_arguments_are_checked_alike(live: LiveApp, adele: act.TeamsUser) -> None:
    before = stored(live)
    call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":%s}}'
    arguments = '{"recipient":"' + adele.upn + '","text":"hi' + SURROGATE + '"}'
    response = rpc(live, (call % arguments).encode(), API_KEY)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32602 and error["data"]["target"] == "text"
    assert stored(live) == before


def test_mcp_protocol_errors_are_short_and_quote_nothing(live: LiveApp) -> None:
    marker = "SECRET-LOOKING-INPUT"
    cases = [
        (marker * (5 * 1024 * 1024 // len(marker))).encode(),  # 5 MiB, not JSON
        json.dumps({"jsonrpc": "2.0", "id": 1, "params": {"x": marker * 1000}}).encode(),  # no method
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": marker}).encode(),  # the SDK refuses it
        json.dumps({"hello": marker}).encode(),
    ]
    for body in cases:
        response = rpc(live, body, API_KEY)
        assert response.status_code == 400, response.text[:300]
        assert len(response.content) < 600 and marker not in response.text, response.text[:300]
        assert response.json()["error"]["code"] in (-32700, -32602)


def test_the_command_line_refuses_undecodable_options(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    # A non-UTF-8 byte in an argument reaches Python as a lone surrogate (surrogateescape).
    assert cli.main(["send", "--to", "al\udcffce@contoso.example", "--text", "hi"]) == 2
    assert "'--to' is not valid Unicode text" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--name", "ops\x00"]) == 2
    assert "'--name' contains a NUL" in capsys.readouterr().err
    card = tmp_path / "card.json"
    card.write_text('{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":"\\ud800"}]}')
    assert cli.main(["send", "--to", "a@contoso.example", "--card", str(card)]) == 2
    assert "'--card.body[0].text'" in capsys.readouterr().err


def test_nothing_unreadable_is_ever_written() -> None:
    # The last guard, below every entry point: JSON orjson could not read back is refused, not stored.
    with pytest.raises(ValueError):
        jsoncodec.dumps({"text": "\ud800"})
    assert jsoncodec.loads(jsoncodec.dumps({"n": 2**70, "t": "ok"})) == {"n": 2**70, "t": "ok"}


def test_the_check_walks_what_recursion_cannot() -> None:
    deep: Any = "\ud800"
    for _ in range(50_000):
        deep = [deep]
    bad = text.find({"card": deep})
    assert bad is not None and bad.target.startswith("card[0][0]")
    assert text.find({"ok": ["fine", {"ünïcödé": "text 🎉"}]}) is None
