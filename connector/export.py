"""Writes the custom connector files: apiDefinition.swagger.json, apiProperties.json, icon, readme and intro.

Two variants from the same code: ``openapi/`` signs in with an API key (the ``X-API-Key`` header),
``openapi/entra/`` with Microsoft Entra ID (OAuth, ``identityProvider: aad``); ``--mcp`` writes the
same two for the MCP server (one ``POST /mcp`` operation, for Copilot Studio) under ``openapi/mcp/``.
Every run writes the same bytes for the same arguments (a test keeps the committed files in sync).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from teams_proactive.connector.connector_readme import intro_text, readme_text
from teams_proactive.connector.icon import BRAND_HEX, icon_png
from teams_proactive.connector.mcp.definition import mcp_definition_text
from teams_proactive.connector.openapi import PLACEHOLDER_HOST, definition_app, definition_text

# Our own colour (connector/icon.py), not Microsoft Teams' purple; certification refuses #007ee5 and #ffffff.
BRAND_COLOR = BRAND_HEX
# Certification: publisher and stack owner are letters and digits only.
PUBLISHER = "TeamsProactive"
# Placeholders for the Entra variant: the connector's own app registration and the API's app ID URI
# (the service's ENTRA_AUDIENCE). Give the real ones with --entra-client-id / --entra-resource.
ENTRA_CLIENT_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
ENTRA_RESOURCE_PLACEHOLDER = "api://teams-proactive"
ENTRA_SUBFOLDER = "entra"
MCP_SUBFOLDER = "mcp"


# The host is a connection parameter: each connection names the service it talks to, and the
# dynamichosturl policy sends every request there, so nobody edits the definition's "host" (Microsoft's
# policy template list; the apiProperties schema in ../shared/reference defines the template's shape).
HOST_PARAMETER = "host"
HOST_POLICY = {
    "templateId": "dynamichosturl",
    "title": "Send requests to the host given in the connection",
    "parameters": {"x-ms-apimTemplateParameter.urlTemplate": f"https://@connectionParameters('{HOST_PARAMETER}')"},
}


def _host_parameter(host: str | None) -> dict[str, Any]:
    example = host or "notify.contoso.com"
    return {
        "type": "string",
        "uiDefinition": {
            "displayName": "Service Host Name",
            "description": f"The host name of the service, without https:// (for example {example}).",
            "tooltip": "The address the admin who runs the service gave you.",
            "constraints": {"tabIndex": 1, "required": "true"},
        },
    }


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def api_properties(host: str | None = None) -> dict[str, Any]:
    """Connection parameters for the API-key connector (Power Platform names an apiKey parameter api_key)."""
    return {
        "properties": {
            "connectionParameters": {
                HOST_PARAMETER: _host_parameter(host),
                "api_key": {
                    "type": "securestring",
                    "uiDefinition": {
                        "displayName": "API Key",
                        "description": "A key made with 'teams-proactive keys create' by the service's admin.",
                        "tooltip": "Ask the admin who runs the service for a key; it is shown to them only once.",
                        "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
                    },
                },
            },
            "iconBrandColor": BRAND_COLOR,
            "capabilities": [],
            "policyTemplateInstances": [HOST_POLICY],
            "publisher": PUBLISHER,
            "stackOwner": PUBLISHER,
        }
    }


def entra_api_properties(
    client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER, resource: str = ENTRA_RESOURCE_PLACEHOLDER, host: str | None = None
) -> dict[str, Any]:
    """Connection parameters for the Entra ID connector: each maker signs in with their own account."""
    return {
        "properties": {
            "connectionParameters": {
                HOST_PARAMETER: _host_parameter(host),
                "token": {
                    "type": "oauthSetting",
                    "oAuthSettings": {
                        "identityProvider": "aad",
                        "clientId": client_id,
                        "scopes": [],
                        # Microsoft requires a redirect URI of the connector's own since 2024.
                        "redirectMode": "GlobalPerConnector",
                        "properties": {"IsFirstParty": "False", "AzureActiveDirectoryResourceId": resource},
                        "customParameters": {
                            "loginUri": {"value": "https://login.microsoftonline.com"},
                            "tenantId": {"value": "common"},
                            "resourceUri": {"value": resource},
                        },
                    },
                    "uiDefinition": {
                        "displayName": "Sign in with Microsoft Entra ID",
                        "description": "Sign in with your work account to send notifications.",
                        "tooltip": "Your account needs the service's Notifications.Send permission.",
                        "constraints": {"required": "true"},
                    },
                },
                "token:TenantId": {
                    "type": "string",
                    "metadata": {"sourceType": "AzureActiveDirectoryTenant"},
                    "uiDefinition": {
                        "constraints": {"hidden": "true", "required": "false"},
                        "description": "The tenant ID of for the Azure Active Directory application",
                        "displayName": "Tenant",
                    },
                },
            },
            "iconBrandColor": BRAND_COLOR,
            "capabilities": [],
            "policyTemplateInstances": [HOST_POLICY],
            "publisher": PUBLISHER,
            "stackOwner": PUBLISHER,
        }
    }


def connector_files(
    host: str | None = None,
    *,
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
) -> dict[str, bytes]:
    """Every connector file by its path relative to the output folder."""
    app = definition_app()
    given = host
    host = host or PLACEHOLDER_HOST
    entra = ENTRA_SUBFOLDER
    definition = definition_text(app, host)
    return {
        "apiDefinition.swagger.json": definition.encode("utf-8"),
        "apiProperties.json": _dumps(api_properties(given)),
        "icon.png": icon_png(),
        "readme.md": readme_text(json.loads(definition)).encode("utf-8"),
        "intro.md": intro_text(json.loads(definition)).encode("utf-8"),
        f"{entra}/apiDefinition.swagger.json": definition_text(app, host, auth="entra").encode("utf-8"),
        f"{entra}/apiProperties.json": _dumps(entra_api_properties(entra_client_id, entra_resource, given)),
    }


def mcp_connector_files(
    host: str | None = None,
    *,
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
) -> dict[str, bytes]:
    """The MCP connector variant (for Copilot Studio), by path relative to the output folder: ``mcp/...``."""
    app = definition_app()
    host = host or PLACEHOLDER_HOST
    mcp, entra = MCP_SUBFOLDER, f"{MCP_SUBFOLDER}/{ENTRA_SUBFOLDER}"
    return {
        f"{mcp}/apiDefinition.swagger.json": mcp_definition_text(app, host).encode("utf-8"),
        f"{mcp}/apiProperties.json": _dumps(api_properties()),
        f"{mcp}/icon.png": icon_png(),
        f"{entra}/apiDefinition.swagger.json": mcp_definition_text(app, host, auth="entra").encode("utf-8"),
        f"{entra}/apiProperties.json": _dumps(entra_api_properties(entra_client_id, entra_resource)),
    }


def export_connector(
    out: Path,
    host: str | None = None,
    *,
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
    mcp: bool = False,
) -> list[Path]:
    """Write the REST connector files into ``out``, or with ``mcp`` the MCP variant into ``out/mcp/``."""
    written = []
    make = mcp_connector_files if mcp else connector_files
    for name, data in make(host, entra_client_id=entra_client_id, entra_resource=entra_resource).items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
