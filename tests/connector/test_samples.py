"""The Power Automate samples use the connector exactly as generated: every operationId and parameter
name they name exists in apiDefinition.swagger.json, required inputs are given, internal ones are not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.errors import STATUS_BY_CODE
from tests.connector.support import OPENAPI_DIR, SAMPLES_DIR, load, operations, resolve

SPEC = load(OPENAPI_DIR / "apiDefinition.swagger.json")
OPERATIONS = {op["operationId"]: op for _, _, op in operations(SPEC)}
CONNECTOR_API = "shared_teams-proactive-messages"
FLOWS = sorted(SAMPLES_DIR.glob("*/flow.json"))
ASKED_FOR = {"notify-assignee", "daily-reminder", "approval-card", "broadcast-report", "read-reminder"}


def steps(actions: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every action with its siblings, nested ones (conditions, loops, scopes) included."""
    for name, action in actions.items():
        yield name, action, actions
        yield from steps(action.get("actions") or {})
        yield from steps((action.get("else") or {}).get("actions") or {})


def ours(node: dict[str, Any]) -> bool:
    return node.get("type", "").startswith("OpenApiConnection") and node["inputs"]["host"]["apiId"].endswith(
        f"/{CONNECTOR_API}"
    )


def check_parameters(operation_id: str, parameters: dict[str, Any]) -> None:
    operation = OPERATIONS[operation_id]
    declared = {p["name"]: p for p in operation.get("parameters", [])}
    body_fields: dict[str, Any] = {}
    required_fields: set[str] = set()
    if "body" in declared:
        schema = resolve(SPEC, declared["body"]["schema"])
        body_fields = schema["properties"]
        # Power Automate fills the notification URL itself.
        required_fields = {f for f in schema.get("required", []) if not body_fields[f].get("x-ms-notification-url")}
    given_fields = set()
    for name in parameters:
        if name.startswith("body/"):
            field = name.removeprefix("body/")
            assert field in body_fields, f"{operation_id}: no body field {field!r}"
            assert body_fields[field].get("x-ms-visibility") != "internal", f"{operation_id}: {field} is internal"
            given_fields.add(field)
        else:
            assert name in declared and declared[name]["in"] in ("path", "query"), f"{operation_id}: no {name!r}"
    assert required_fields <= given_fields, f"{operation_id}: missing {required_fields - given_fields}"
    for name, parameter in declared.items():
        if parameter["in"] in ("path", "query") and parameter.get("required"):
            assert name in parameters, f"{operation_id}: missing {name}"


def test_the_four_asked_for_flows_are_there() -> None:
    assert ASKED_FOR <= {path.parent.name for path in FLOWS}


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.parent.name)
def test_sample_uses_the_generated_definition(path: Path) -> None:
    document = load(path)
    definition = document["properties"]["definition"]
    assert definition["$schema"].endswith("/workflowdefinition.json#")
    assert CONNECTOR_API in document["properties"]["connectionReferences"]
    used = []
    for name, trigger in definition["triggers"].items():
        if ours(trigger):
            operation_id = trigger["inputs"]["host"]["operationId"]
            assert OPERATIONS[operation_id].get("x-ms-trigger"), f"{name}: {operation_id} is not a trigger"
            assert trigger["type"] == "OpenApiConnectionWebhook"
            check_parameters(operation_id, trigger["inputs"]["parameters"])
            used.append(operation_id)
    for name, action, siblings in steps(definition["actions"]):
        for before in action.get("runAfter", {}):
            assert before in siblings, f"{name} runs after unknown {before}"
        if ours(action):
            operation_id = action["inputs"]["host"]["operationId"]
            assert operation_id in OPERATIONS, f"{name}: unknown operation {operation_id}"
            assert not OPERATIONS[operation_id].get("x-ms-trigger"), f"{name}: a trigger used as an action"
            check_parameters(operation_id, action["inputs"]["parameters"])
            used.append(operation_id)
    assert used, "the sample does not use the connector"
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    for operation_id in used:
        assert operation_id in readme, f"README.md of {path.parent.name} does not explain {operation_id}"


def test_copilot_studio_page_names_existing_operations() -> None:
    page = (SAMPLES_DIR / "copilot-studio" / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", page))
    assert {"SendMessage", "GetRecipient"} <= named
    assert named - set(STATUS_BY_CODE) <= set(OPERATIONS), named - set(STATUS_BY_CODE) - set(OPERATIONS)
