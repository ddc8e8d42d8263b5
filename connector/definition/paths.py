"""The pass over ``paths``: operations named and labelled, and the callback content of triggers and the card wait."""

from __future__ import annotations

import copy
from typing import Any

from teams_proactive.connector.definition.operations import power_platform_operation
from teams_proactive.connector.definition.shape import METHODS
from teams_proactive.connector.views.cards import WAIT_PATH
from teams_proactive.connector.views.subscriptions import TRIGGER_PATHS


def fix_paths(spec: dict[str, Any]) -> None:
    """Every path item as Power Platform reads it."""
    for path, item in spec.get("paths", {}).items():
        # Path-level parameters go into each operation: the connector wizard reads them only there.
        shared = item.pop("parameters", [])
        for method in METHODS:
            if method in item:
                operation = item[method]
                operation["parameters"] = copy.deepcopy(shared) + operation.get("parameters", [])
                item[method] = power_platform_operation(path, method, operation)
        if path in TRIGGER_PATHS:
            schema = TRIGGER_PATHS[path]
            item["x-ms-notification-content"] = {
                "description": "The event sent to the flow.",
                "schema": {"$ref": f"#/definitions/{schema}"},
            }
        if path == WAIT_PATH:
            # The webhook action's outputs: what its callback posts (CyberProof's shape, see views.cards).
            item["x-ms-notification-content"] = {
                "description": "The answer to the card, posted when the person answers or the wait ends.",
                "schema": {"$ref": "#/definitions/CardWaitResult"},
            }
