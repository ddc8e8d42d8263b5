"""The passes over ``definitions``: nested objects inlined, unused ones dropped, answers left open, keys ordered."""

from __future__ import annotations

import copy
from typing import Any

from teams_proactive.connector.definition.shape import METHODS, SCHEMA_ORDER, ordered


def inline_nested(definitions: dict[str, Any]) -> None:
    """Replace nested-object references inside properties by the object itself.

    apispec writes a nested schema as ``allOf: [$ref]`` (or a bare ``$ref``), beside which the
    property's own label is lost to tools that resolve references; the designer shows inlined
    objects as labelled fields ("Error Code", "Counts Delivered")."""

    def expand(node: dict[str, Any]) -> dict[str, Any]:
        target = None
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1 and "$ref" in node["allOf"][0]:
            target = node["allOf"][0]["$ref"]
        elif "$ref" in node:
            target = node["$ref"]
        if target is not None:
            inner = expand(copy.deepcopy(definitions[target.rsplit("/", 1)[-1]]))
            own = {k: v for k, v in node.items() if k not in ("allOf", "$ref")}
            node = {**inner, **own}
        if isinstance(node.get("items"), dict):
            node["items"] = expand(node["items"])
        if isinstance(node.get("properties"), dict):
            node["properties"] = {name: expand(value) for name, value in node["properties"].items()}
        return node

    for name in list(definitions):
        definitions[name] = expand(definitions[name])


def drop_unreferenced(spec: dict[str, Any]) -> None:
    """Definitions only nested elsewhere (now inlined) are not written."""
    definitions = spec.get("definitions", {})
    used: set[str] = set()

    def refs(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref.rsplit("/", 1)[-1]
                if name not in used:
                    used.add(name)
                    refs(definitions.get(name))
            for key, value in node.items():
                if key != "definitions":
                    refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    refs(spec)
    spec["definitions"] = {name: schema for name, schema in definitions.items() if name in used}


def open_outputs(spec: dict[str, Any]) -> None:
    """Answers and events may gain fields: only request bodies say ``additionalProperties: false``
    (the service refuses unknown fields in a request, a flow must not refuse new ones in an answer)."""
    inputs = {
        p["schema"]["$ref"].rsplit("/", 1)[-1]
        for item in spec["paths"].values()
        for method in METHODS
        for p in item.get(method, {}).get("parameters", [])
        if p.get("in") == "body" and "$ref" in p.get("schema", {})
    }

    def open_up(node: dict[str, Any]) -> None:
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in (node.get("properties") or {}).values():
            open_up(value)
        if isinstance(node.get("items"), dict):
            open_up(node["items"])

    for name, schema in spec["definitions"].items():
        if name not in inputs:
            open_up(schema)


def order_definitions(spec: dict[str, Any]) -> None:
    """Every definition's keys, and its properties' and items' keys, in ``SCHEMA_ORDER``."""
    for schema in spec["definitions"].values():
        _order_schema(schema)


def _order_schema(schema: dict[str, Any]) -> None:
    in_order = ordered(schema, SCHEMA_ORDER)
    schema.clear()
    schema.update(in_order)
    if isinstance(schema.get("items"), dict):
        _order_schema(schema["items"])
    for value in (schema.get("properties") or {}).values():
        _order_schema(value)
