"""The MCP server (the official SDK's low-level Server): tools/list and tools/call over the same services as the REST API."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from flask import Flask
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.errors import Rejected
from teams_proactive.connector.auth import require_scope
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.extension import runtime_of
from teams_proactive.connector.mcp.tools import BY_NAME, TOOLS, ToolSpec, input_schemas
from teams_proactive.connector.openapi import TITLE, VERSION

log = logging.getLogger(__name__)

# Where the bridge leaves what the HTTP layer established for this request (see connector.mcp.bridge).
SCOPE_KEY = "teams_proactive"

INSTRUCTIONS = (
    "Tools to notify people in Microsoft Teams through the organisation's own bot: each message arrives in the"
    " person's personal chat with the bot. People are named by email address, user principal name or Microsoft"
    " Entra object ID; the bot can only reach people who have opened it in Teams once (get_recipient tells)."
    " Failed calls answer isError with structuredContent.error.code naming what went wrong."
)


def build_server(app: Flask) -> Server[Any]:
    """One MCP server per Flask app; its tool calls run on that app's bot loop."""
    schemas = input_schemas()
    listed = [
        types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=schemas[tool.name],
            annotations=types.ToolAnnotations(
                title=tool.title,
                read_only_hint=tool.read_only,
                destructive_hint=False,
                idempotent_hint=tool.read_only,
                # Messages reach people: the world outside this server changes.
                open_world_hint=not tool.read_only,
            ),
        )
        for tool in TOOLS
    ]

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> Any:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
        tool = BY_NAME.get(params.name)
        if tool is None:
            # The MCP specification makes an unknown tool a protocol error (-32602), not a tool result.
            known = ", ".join(BY_NAME)
            raise MCPError(INVALID_PARAMS, f"Unknown tool '{params.name}'. The tools are: {known}.")
        established = _established(ctx)
        # The tools read settings through current_app, as the views do (this task's own context).
        context = (
            app.test_request_context(base_url=established["base_url"]) if tool.needs_request else app.app_context()
        )
        with context:
            return await _run(app, tool, established["caller"], dict(params.arguments or {}))

    return Server(
        "teams-proactive",
        title=TITLE,
        version=VERSION,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _established(ctx: ServerRequestContext[Any]) -> dict[str, Any]:
    request = ctx.request
    established = getattr(request, "scope", {}).get(SCOPE_KEY) if request is not None else None
    if not established:
        # Every request comes through the bridge, which authenticates first; anything else is a wiring bug.
        raise MCPError(INVALID_PARAMS, "The request was not authenticated.")
    return established


async def _run(app: Flask, tool: ToolSpec, caller: Caller, arguments: dict[str, Any]) -> types.CallToolResult:
    try:
        require_scope(caller, tool.scope, f"use the tool '{tool.name}'")
        body, line = await tool.handler(runtime_of(app), caller, tool.parse(arguments))
    except Rejected as exc:
        return _refusal(exc.code, exc.message, exc.target)
    except ApiError as exc:
        return _refusal(exc.code, exc.message, exc.target)
    except Exception:
        log.exception("MCP tool %s failed", tool.name)
        return _refusal("InternalError", "Something went wrong on our side; it has been logged.", None)
    return types.CallToolResult(content=[types.TextContent(type="text", text=line)], structured_content=body)


def _refusal(code: str, message: str, target: str | None) -> types.CallToolResult:
    """A tool error (isError) carrying the REST API's error object, so a model reads the same codes a flow does."""
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{code}: {message}")],
        structured_content={"error": error},
        is_error=True,
    )
