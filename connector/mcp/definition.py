"""The MCP variant of the custom connector: one ``POST /mcp`` operation that Copilot Studio reads as an MCP server.

Shape from Microsoft's documented example ("Connect your agent to an existing MCP server", Copilot
Studio docs: a Swagger 2.0 file whose ``/mcp`` POST carries ``x-ms-agentic-protocol: mcp-streamable-1.0``,
operationId ``InvokeMCP``, a 200 response). The security definitions are taken from the REST
connector's own definition, so both sign in the same way (API key, or Microsoft Entra ID).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from teams_proactive.connector.openapi import PLACEHOLDER_HOST, TITLE, VERSION, connector_definition

AGENTIC_PROTOCOL = "mcp-streamable-1.0"
OPERATION_ID = "InvokeMCP"
MCP_TITLE = f"{TITLE} (MCP)"
MCP_DESCRIPTION = (
    "Tools for agents to notify people in their Microsoft Teams chat with your organisation's own"
    " bot: send a message or a card, check whether a person can be reached, read a card's answer, start and follow"
    " a broadcast. The tools, their inputs and descriptions come from the server and update by themselves."
)


def mcp_definition(
    app: Flask, host: str | None = None, *, scheme: str = "https", auth: str = "apikey"
) -> dict[str, Any]:
    rest = connector_definition(app, host, scheme=scheme, auth=auth)
    host = host or PLACEHOLDER_HOST
    return {
        "swagger": "2.0",
        # The same contact as the REST connector: certification requires one on every definition.
        "info": {
            "title": MCP_TITLE,
            "description": MCP_DESCRIPTION,
            "version": VERSION,
            "contact": rest["info"]["contact"],
        },
        "host": host,
        "basePath": "/",
        "schemes": [scheme],
        "consumes": [],
        "produces": [],
        "paths": {
            "/mcp": {
                "post": {
                    "summary": "Teams notifications MCP server",
                    "description": "The MCP server (Streamable HTTP) that gives the agent its Teams notification tools.",
                    "operationId": OPERATION_ID,
                    "x-ms-agentic-protocol": AGENTIC_PROTOCOL,
                    "responses": {"200": {"description": "Success"}},
                }
            }
        },
        "definitions": {},
        "parameters": {},
        "responses": {},
        "securityDefinitions": rest["securityDefinitions"],
        "security": rest["security"],
        "tags": [],
        "x-ms-connector-metadata": rest["x-ms-connector-metadata"],
    }


def mcp_definition_text(app: Flask, host: str | None = None, *, auth: str = "apikey") -> str:
    return json.dumps(mcp_definition(app, host, auth=auth), indent=2, ensure_ascii=False) + "\n"
