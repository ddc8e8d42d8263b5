"""Writes the custom connector files: apiDefinition.swagger.json, apiProperties.json, icon.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.icon import icon_png

BRAND_COLOR = "#4B53BC"


def api_properties() -> dict[str, Any]:
    return {
        "properties": {
            "connectionParameters": {
                "api_key": {
                    "type": "securestring",
                    "uiDefinition": {
                        "displayName": "API key",
                        "description": "A key made with 'teams-proactive keys create'.",
                        "tooltip": "Ask the admin who runs the service for a key.",
                        "constraints": {"tabIndex": 2, "clearText": False, "required": "true"},
                    },
                }
            },
            "iconBrandColor": BRAND_COLOR,
            "capabilities": [],
            "publisher": "teams-proactive",
            "stackOwner": "teams-proactive",
        }
    }


def definition_json(host: str | None = None) -> str:
    from bot.runtime import BotRuntime
    from bot.settings import BotSettings
    from bot.store.memory import MemoryStore
    from connector import create_app
    from connector.openapi import connector_definition

    runtime = BotRuntime(BotSettings(store_url="memory"), store=MemoryStore(), run_dispatcher=False)
    app = create_app({"ENV": {"STORE_URL": "memory"}}, runtime=runtime)
    try:
        return json.dumps(connector_definition(app, host=host), indent=2, sort_keys=False) + "\n"
    finally:
        runtime.stop()


def export_connector(out: Path, host: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / "apiDefinition.swagger.json": definition_json(host).encode(),
        out / "apiProperties.json": (json.dumps(api_properties(), indent=2) + "\n").encode(),
        out / "icon.png": icon_png(),
    }
    for path, data in files.items():
        path.write_bytes(data)
    return list(files)
