"""Runs a sample flow's definition the way the engine would, far enough to test its logic: actions in
order, Compose, Select, Table, Wait, conditions and loops evaluated with tests/connector/expressions.py,
and every connector call recorded with its evaluated inputs (its answer comes from the scenario)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from tests.connector.expressions import Context, interpolate


@dataclass
class Call:
    action: str
    api: str
    operation_id: str
    parameters: dict[str, Any]


@dataclass
class Run:
    context: Context
    responses: dict[str, Any]  # connector action name -> its body
    calls: list[Call] = field(default_factory=list)


def evaluated(value: Any, context: Context) -> Any:
    if isinstance(value, str):
        return interpolate(value, context)
    if isinstance(value, dict):
        return {k: evaluated(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluated(v, context) for v in value]
    return value


def condition(expression: dict[str, Any], context: Context) -> bool:
    ((kind, operands),) = expression.items()
    if kind == "and":
        return all(condition(e, context) for e in operands)
    if kind == "or":
        return any(condition(e, context) for e in operands)
    if kind == "not":
        return not condition(operands, context)
    left, right = (evaluated(o, context) for o in operands)
    comparisons = {
        "equals": lambda: left == right,
        "greater": lambda: left > right,
        "less": lambda: left < right,
        "greaterOrEquals": lambda: left >= right,
        "lessOrEquals": lambda: left <= right,
    }
    return comparisons[kind]()


def run_actions(actions: dict[str, Any], run: Run) -> None:
    context = run.context
    for name, action in actions.items():
        kind = action["type"]
        if kind == "Compose":
            context.outputs[name] = evaluated(action["inputs"], context)
        elif kind == "Select":
            rows = evaluated(action["inputs"]["from"], context) or []
            selected = []
            for row in rows:
                context.item = row
                selected.append(evaluated(action["inputs"]["select"], context))
            context.item = None
            context.outputs[name] = selected
        elif kind == "Table":
            rows = evaluated(action["inputs"]["from"], context) or []
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows
            )
            context.outputs[name] = f"<table>{cells}</table>"
        elif kind == "Wait":
            evaluated(action["inputs"], context)
        elif kind in ("OpenApiConnection", "OpenApiConnectionWebhook"):
            host = action["inputs"]["host"]
            parameters = evaluated(action["inputs"].get("parameters", {}), context)
            run.calls.append(Call(name, host["connectionName"], host["operationId"], parameters))
            body = run.responses.get(name, {})
            context.bodies[name] = body
            flat = {f"body/{k}": v for k, v in body.items()} if isinstance(body, dict) else {}
            context.outputs[name] = {"body": body, **flat}
        elif kind == "If":
            branch = action if condition(action["expression"], context) else action.get("else") or {}
            run_actions(branch.get("actions") or {}, run)
        elif kind == "Foreach":
            for element in evaluated(action["foreach"], context) or []:
                context.items[name] = element
                run_actions(action.get("actions") or {}, run)
        else:
            raise AssertionError(f"{name}: the runner does not know {kind} actions")


def run_flow(
    document: dict[str, Any],
    *,
    context: Context,
    responses: dict[str, Any] | None = None,
) -> list[Call]:
    """The connector calls one run makes; the trigger's own call (a webhook subscription) first."""
    definition = document["properties"]["definition"]
    run = Run(context, responses or {})
    for name, trigger in definition["triggers"].items():
        if trigger["type"].startswith("OpenApiConnection"):
            host = trigger["inputs"]["host"]
            parameters = evaluated(trigger["inputs"].get("parameters", {}), context)
            run.calls.append(Call(name, host["connectionName"], host["operationId"], parameters))
    run_actions(definition["actions"], run)
    return run.calls
