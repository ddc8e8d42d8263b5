"""POST /mcp with the SDK's own client over real HTTP: initialize, the tools and their schemas, a person installed
through the bot endpoint messaged by tool call, the REST API's objects and error codes, keys and tenants."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from teams_proactive.connector import keys

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually
from tests.mcp.support import forbidden_keys, with_session
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

TOOL_NAMES = {
    "send_message",
    "get_message",
    "get_recipient",
    "send_card",
    "get_card_response",
    "start_broadcast",
    "get_broadcast",
}

APPROVAL_CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Approve the trip?"}],
    "actions": [{"type": "Action.Submit", "title": "Approve", "data": {"choice": "yes"}}],
}


def installed(live: LiveApp, connector: FakeConnector, user: act.TeamsUser) -> act.TeamsUser:
    """The person installs the bot in Teams: the Bot Connector posts the activity to /api/messages."""
    response = live.activity(act.install(user, connector.service_url("a")))
    assert response.status_code == 200, response.text
    return user


def new_key(live: LiveApp, name: str, *, tenant_id: str | None = None, scopes: list[str] | None = None) -> str:
    _, secret = live.runtime.call(
        keys.create_key(live.runtime.store, name, tenant_id=tenant_id, scopes=scopes or ["send"])
    )
    return secret


def texts(connector: FakeConnector, user: act.TeamsUser) -> list[str]:
    return [r.activity.get("text") or "" for r in connector.sent(user.conversation_id)]


def test_initialize_names_the_server_and_offers_tools(live: LiveApp) -> None:
    async def work(session: ClientSession) -> Any:
        return await session.initialize()  # the answer the session got when it opened

    result = with_session(live.url, API_KEY, work)
    assert result.server_info.name == "teams-proactive"
    assert result.capabilities.tools is not None
    assert "Teams" in (result.instructions or "")


def test_lists_the_seven_tools_with_flat_described_schemas(live: LiveApp) -> None:
    async def work(session: ClientSession) -> Any:
        return (await session.list_tools()).tools

    tools = with_session(live.url, API_KEY, work)
    assert {t.name for t in tools} == TOOL_NAMES  # ForgetRecipient is not a tool
    for tool in tools:
        schema = tool.input_schema
        assert forbidden_keys(schema) == [], tool.name
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert tool.description and len(tool.description) > 80, tool.name
        for name, prop in schema["properties"].items():
            assert isinstance(prop.get("type"), str), (tool.name, name)
            assert prop.get("description"), (tool.name, name)
            # Nested objects stay free-form (an Adaptive Card): nothing nested to resolve.
            assert "properties" not in prop, (tool.name, name)
    by_name = {t.name: t for t in tools}
    assert by_name["send_message"].input_schema["required"] == ["recipient"]
    assert by_name["get_recipient"].annotations.read_only_hint is True
    assert by_name["send_message"].annotations.read_only_hint is False


def test_get_recipient_and_send_message_reach_a_person_installed_through_the_bot(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = installed(live, connector, make_user())

    async def work(session: ClientSession) -> Any:
        recipient = await session.call_tool("get_recipient", {"recipient": user.upn})
        sent = await session.call_tool("send_message", {"recipient": user.upn, "text": "Ticket **42** is yours"})
        return recipient, sent

    recipient, sent = with_session(live.url, API_KEY, work)
    assert recipient.is_error is False
    assert recipient.structured_content["reachable"] is True
    assert recipient.structured_content["upn"] == user.upn
    assert "can be messaged" in recipient.content[0].text
    assert sent.is_error is False, sent.content
    delivery = sent.structured_content
    assert delivery["status"] == "delivered"
    assert delivery["conversationId"] == user.conversation_id
    assert delivery["id"] in sent.content[0].text
    assert "Ticket **42** is yours" in texts(connector, user)
    # The same object the REST API returns for the same person and the same message.
    rest_person = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient.structured_content == rest_person
    rest_delivery = live.api("GET", f"/api/v1/messages/{delivery['id']}", API_KEY).json()
    assert delivery == rest_delivery


def test_a_delivered_message_carries_the_same_chat_link_as_the_rest_api(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    """With a bot app id (production), a delivery has a Teams deep link: the tool's object is the REST one."""
    import dataclasses

    user = installed(live, connector, make_user())
    live.runtime.settings = dataclasses.replace(live.runtime.settings, app_id="00000000-0000-0000-0000-0000000000b0")

    async def work(session: ClientSession) -> Any:
        sent = await session.call_tool("send_message", {"recipient": user.upn, "text": "with a link", "wait": 30})
        return sent, await session.call_tool("get_message", {"id": sent.structured_content["id"]})

    sent, got = with_session(live.url, API_KEY, work)
    assert sent.structured_content["status"] == "delivered"
    rest = live.api("GET", f"/api/v1/messages/{sent.structured_content['id']}", API_KEY).json()
    assert rest["chatUrl"] and "28:00000000-0000-0000-0000-0000000000b0" in rest["chatUrl"]
    assert sent.structured_content == rest and got.structured_content == rest


def test_get_message_card_and_broadcast_tools_return_the_rest_objects(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = installed(live, connector, make_user())

    async def work(session: ClientSession) -> Any:
        sent = await session.call_tool("send_message", {"recipient": user.upn, "text": "one", "wait": 0})
        got = await session.call_tool("get_message", {"id": sent.structured_content["id"]})
        card = await session.call_tool("send_card", {"recipient": user.upn, "card": APPROVAL_CARD})
        answer = await session.call_tool("get_card_response", {"id": card.structured_content["id"]})
        started = await session.call_tool("start_broadcast", {"recipients": [user.upn], "text": "to all"})
        progress = await session.call_tool("get_broadcast", {"id": started.structured_content["id"]})
        return got, card, answer, started, progress

    got, card, answer, started, progress = with_session(live.url, API_KEY, work)
    for result in (got, card, answer, started, progress):
        assert result.is_error is False, result.content
        assert len(result.content) == 1 and "\n" not in result.content[0].text
    assert got.structured_content["recipient"] == user.upn
    assert card.structured_content["status"] in ("sending", "waiting")
    assert answer.structured_content["id"] == card.structured_content["id"]
    assert started.structured_content["total"] == 1
    card_id, broadcast_id = card.structured_content["id"], started.structured_content["id"]

    # Once both have settled (the card delivered and waiting, the broadcast completed), the tools and the
    # REST API must give the same objects, value for value.
    def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        card_rest = live.api("GET", f"/api/v1/cards/wait/{card_id}", API_KEY).json()
        broadcast_rest = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
        done = card_rest["status"] == "waiting" and broadcast_rest["status"] == "completed"
        return (card_rest, broadcast_rest) if done else None

    card_rest, broadcast_rest = eventually(settled, timeout=30)

    async def read(session: ClientSession) -> Any:
        return (
            await session.call_tool("get_card_response", {"id": card_id}),
            await session.call_tool("get_broadcast", {"id": broadcast_id}),
        )

    answer_now, progress_now = with_session(live.url, API_KEY, read)
    assert answer_now.structured_content == card_rest
    assert progress_now.structured_content == broadcast_rest
    assert broadcast_rest["counts"]["delivered"] == 1
    assert progress.structured_content["id"] == broadcast_rest["id"]


def test_service_refusals_are_tool_errors_with_the_rest_codes(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = installed(live, connector, make_user())
    assert live.activity(act.message(user, connector.service_url("a"), "stop")).status_code == 200
    before = len(connector.sent())

    async def work(session: ClientSession) -> Any:
        return {
            "unknown person": await session.call_tool(
                "send_message", {"recipient": "nobody@contoso.example", "text": "x"}
            ),
            "opted out": await session.call_tool("send_message", {"recipient": user.upn, "text": "x"}),
            "no content": await session.call_tool("send_message", {"recipient": user.upn}),
            "unknown message": await session.call_tool("get_message", {"id": "no-such-message"}),
        }

    results = with_session(live.url, API_KEY, work)
    expected = {
        "unknown person": "RecipientNotFound",
        "opted out": "RecipientOptedOut",
        "no content": "ValidationError",
        "unknown message": "NotFound",
    }
    for case, code in expected.items():
        result = results[case]
        assert result.is_error is True, case
        error = result.structured_content["error"]
        assert error["code"] == code, (case, error)
        assert error["message"] and result.content[0].text.startswith(f"{code}: "), case
    assert results["unknown person"].structured_content["error"]["target"] == "recipient"
    assert len(connector.sent()) == before


def test_wrong_key_is_refused_before_any_tool_runs(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = installed(live, connector, make_user())
    before = len(connector.sent())

    async def work(session: ClientSession) -> Any:
        return await session.call_tool("send_message", {"recipient": user.upn, "text": "should not arrive"})

    for key, says in (("tpk_wrong_key", "not valid"), (None, "X-API-Key")):
        with pytest.raises(BaseException) as raised:
            with_session(live.url, key, work)
        refused = _mcp_error(raised.value)
        assert says in refused.message
        assert refused.data["code"] == "Unauthorized"
    assert len(connector.sent()) == before


def test_a_key_of_another_tenant_sees_nobody(live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = installed(live, connector, make_user())
    other = new_key(live, "fabrikam", tenant_id="tenant-fabrikam")
    own = new_key(live, "contoso", tenant_id=user.tenant_id)
    before = len(connector.sent())

    async def work(session: ClientSession) -> Any:
        return (
            await session.call_tool("get_recipient", {"recipient": user.upn}),
            await session.call_tool("send_message", {"recipient": user.upn, "text": "across tenants"}),
        )

    seen, sent = with_session(live.url, other, work)
    for result in (seen, sent):
        assert result.is_error is True
        assert result.structured_content["error"]["code"] == "RecipientNotFound"
    assert len(connector.sent()) == before
    # The same person with a key of their own tenant: found.
    found, _ = with_session(live.url, own, work)
    assert found.is_error is False and found.structured_content["tenantId"] == user.tenant_id


def test_a_key_without_the_broadcast_scope_may_not_broadcast(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = installed(live, connector, make_user())
    send_only = new_key(live, "send-only", scopes=["send"])

    async def work(session: ClientSession) -> Any:
        return await session.call_tool("start_broadcast", {"recipients": [user.upn], "text": "everyone"})

    result = with_session(live.url, send_only, work)
    assert result.is_error is True
    assert result.structured_content["error"]["code"] == "Forbidden"
    message = result.structured_content["error"]["message"]
    assert "'broadcast' permission" in message and "use the tool 'start_broadcast'" in message
    assert live.runtime.call(live.runtime.store.broadcasts.ids()) == []


def test_unknown_tool_is_a_protocol_error_naming_the_tools(live: LiveApp) -> None:
    async def work(session: ClientSession) -> Any:
        with pytest.raises(MCPError) as raised:
            await session.call_tool("forget_recipient", {"recipient": "someone@contoso.example"})
        return raised.value

    error = with_session(live.url, API_KEY, work)
    assert error.code == -32602
    assert "forget_recipient" in error.message and "send_message" in error.message


def _mcp_error(exc: BaseException) -> MCPError:
    """The MCPError inside the exception groups the client's task groups wrap it in."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            try:
                return _mcp_error(inner)
            except AssertionError:
                continue
    raise AssertionError(f"no MCPError in {exc!r}")


@pytest.mark.parametrize("mode", ["legacy", "auto", "2026-07-28"])
def test_every_protocol_era_the_sdk_speaks(live: LiveApp, connector: FakeConnector, make_user, mode: str) -> None:
    # The SDK's high-level Client: the initialize handshake (legacy), discovery (auto), or the stateless
    # 2026-07-28 protocol adopted directly; the endpoint answers all three.
    user = installed(live, connector, make_user())

    async def run() -> Any:
        async with (
            create_mcp_http_client(headers={"X-API-Key": API_KEY}) as http,
            Client(streamable_http_client(live.url + "/mcp", http_client=http), mode=mode) as client,
        ):
            return len((await client.list_tools()).tools), await client.call_tool(
                "get_recipient", {"recipient": user.upn}
            )

    count, found = asyncio.run(run())
    assert count == len(TOOL_NAMES)
    assert found.is_error is False and found.structured_content["upn"] == user.upn


def test_a_key_of_another_tenant_cannot_read_this_tenants_objects_by_id(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = installed(live, connector, make_user())
    own = new_key(live, "contoso-all", tenant_id=user.tenant_id, scopes=["send", "broadcast"])
    other = new_key(live, "fabrikam-all", tenant_id="tenant-fabrikam", scopes=["send", "broadcast"])

    async def make(session: ClientSession) -> Any:
        return (
            await session.call_tool("send_message", {"recipient": user.upn, "text": "mine", "wait": 0}),
            await session.call_tool("send_card", {"recipient": user.upn, "card": APPROVAL_CARD}),
            await session.call_tool("start_broadcast", {"recipients": [user.upn], "text": "mine too"}),
        )

    sent, card, broadcast = with_session(live.url, own, make)
    ids = {
        "get_message": sent.structured_content["id"],
        "get_card_response": card.structured_content["id"],
        "get_broadcast": broadcast.structured_content["id"],
    }

    async def peek(session: ClientSession) -> Any:
        return {tool: await session.call_tool(tool, {"id": value}) for tool, value in ids.items()}

    for tool, result in with_session(live.url, other, peek).items():
        assert result.is_error is True, tool
        assert result.structured_content == {
            "error": {"code": "NotFound", "message": result.structured_content["error"]["message"], "target": "id"}
        }, tool
        assert ids[tool] in result.structured_content["error"]["message"]
