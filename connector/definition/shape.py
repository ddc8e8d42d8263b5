"""The written file's shape: key order at each level, so the output is stable and readable."""

from __future__ import annotations

from typing import Any

# Key order of the written file: stable and readable (properties keep their schema order).
TOP_ORDER = (
    "swagger", "info", "host", "basePath", "schemes", "consumes", "produces", "paths", "definitions",
    "parameters", "responses", "securityDefinitions", "security", "tags", "x-ms-connector-metadata",
)  # fmt: skip
OPERATION_ORDER = (
    "tags", "summary", "description", "operationId", "x-ms-visibility", "x-ms-trigger", "x-ms-trigger-hint",
    "x-ms-pageable", "consumes", "produces", "parameters", "responses",
)  # fmt: skip
SCHEMA_ORDER = (
    "type", "format", "x-ms-summary", "description", "x-ms-visibility", "x-ms-notification-url", "enum",
    "default", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "x-nullable",
    "required", "items", "properties", "additionalProperties",
)  # fmt: skip
METHODS = ("get", "put", "post", "delete", "patch")


def ordered(mapping: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """The mapping with the keys of ``order`` first, in that order, then the rest sorted."""
    first = [k for k in order if k in mapping]
    rest = sorted(k for k in mapping if k not in order)
    return {k: mapping[k] for k in (*first, *rest)}
