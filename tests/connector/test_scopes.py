"""Scopes a maker can get right: which permission each operation needs, read from the views' own
``current_caller(...)`` calls (no second table); each sample names the scopes of the operations it calls;
``keys create --for-samples`` gives them all; a refusal names the permission and the operation."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.connector.definition.operations import OPERATIONS
from teams_proactive.connector.keys import SCOPES, create_key
from teams_proactive.connector.openapi import definition_app
from teams_proactive.connector.solution import sample_scopes

from tests.connector.support import SAMPLES_DIR, load
from tests.connector.test_samples import CONNECTOR_API, ours, steps
from tests.support.live_app import LiveApp

FLOWS = sorted(SAMPLES_DIR.glob("*/flow.json"))
SCOPE_CALL = re.compile(r"current_caller\(\s*\"(\w+)\"\s*\)")


def scopes_by_operation() -> dict[str, str]:
    """operationId -> the scope its view asks ``current_caller`` for, from the registered views' source."""
    app = definition_app()
    found: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        if view_class is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            handler = getattr(view_class, method.lower(), None)
            known = OPERATIONS.get((path, method.lower()))
            if handler is None or known is None:
                continue
            asked = _asked(handler)
            if asked:
                (found[known.operation_id],) = asked
    return found


def _asked(handler: Any) -> set[str]:
    """The scopes a view asks for, itself or through a helper of its own module (the triggers' _subscribe)."""
    source = inspect.getsource(handler)
    asked = set(SCOPE_CALL.findall(source))
    module = inspect.getmodule(handler)
    for name in set(re.findall(r"\b(_?\w+)\(", source)):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == getattr(module, "__name__", None):
            asked |= set(SCOPE_CALL.findall(inspect.getsource(helper)))
    return asked


def called(path: Path) -> set[str]:
    body = load(path)["properties"]["definition"]
    nodes = [*body["triggers"].values(), *(a for _, a, _ in steps(body["actions"]))]
    return {node["inputs"]["host"]["operationId"] for node in nodes if ours(node)}


def test_the_map_comes_from_the_views() -> None:
    found = scopes_by_operation()
    assert found["SendMessage"] == "send" and found["ListRecipients"] == "admin"
    assert found["StartBroadcast"] == "broadcast" and found["OnUserMessage"] == "send"
    assert set(found.values()) <= set(SCOPES)


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.parent.name)
def test_each_sample_names_the_scopes_of_the_operations_it_calls(path: Path) -> None:
    found = scopes_by_operation()
    operations = called(path)
    assert operations, f"{path.parent.name} does not use {CONNECTOR_API}"
    needed = {found[operation] for operation in operations}
    meta = json.loads((path.parent / "sample.json").read_text(encoding="utf-8"))
    assert set(meta["scopes"]) == needed, f"{path.parent.name}: calls {sorted(operations)}"
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    for scope in needed:
        assert f"`{scope}`" in readme, f"README.md of {path.parent.name} does not name the {scope} permission"


def test_a_key_for_the_samples_may_run_every_sample() -> None:
    assert set(sample_scopes()) == set(scopes_by_operation()[op] for path in FLOWS for op in called(path))


def test_keys_create_for_samples(
    app_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from teams_proactive.connector.cli import main

    monkeypatch.chdir(tmp_path)  # no .env of the work tree
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    assert main(["keys", "create", "--name", "samples", "--for-samples"]) == 0
    assert main(["keys", "create", "--name", "both", "--for-samples", "--scopes", "send"]) == 2
    capsys.readouterr()
    assert main(["keys", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["name"] == "samples" and sorted(listed["scopes"]) == sorted(sample_scopes())


def test_a_refusal_names_the_permission_and_the_operation(live: LiveApp) -> None:
    _, send_only = live.runtime.call(create_key(live.runtime.store, "send-only", tenant_id=None, scopes=["send"]))
    refused = live.api("GET", "/api/v1/recipients", send_only)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "Forbidden"
    assert "'admin' permission" in error["message"]
    assert "'List people and whether they can be reached' (ListRecipients)" in error["message"]
    assert "--scopes admin" in error["message"] and "has only send" in error["message"]
    started = live.api("POST", "/api/v1/broadcasts", send_only, json={"recipients": ["a@contoso.com"], "text": "x"})
    assert started.status_code == 403 and "(StartBroadcast)" in started.json()["error"]["message"]
