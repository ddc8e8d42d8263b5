"""A small evaluator of the workflow expression language the samples use, to test their logic.

It knows the functions the samples call (Microsoft's "Reference guide to workflow expression functions"
for Azure Logic Apps and Power Automate: replace, formatDateTime, addDays, utcNow, coalesce, concat,
first, split, length, empty, startOfDay, addHours) and the reference forms triggerBody(), triggerOutputs(),
outputs('X'), body('X'), items('X'), item(), workflow(), parameters('X') with
``?['field']`` / ``['field']`` access. Strings with ``@{...}`` are interpolated; a string starting with a
single ``@`` is one expression. Anything else raises, so a test never passes on an expression it did
not understand.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>\?\[|[(),\[\]]))"
)
# .NET custom date format tokens the samples use, in Python's strftime.
DATE_FORMATS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


class ExpressionError(ValueError):
    """An expression the evaluator does not understand."""


@dataclass
class Context:
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    trigger_body: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    items: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)  # the flow's environment variables, by name
    trigger_outputs: Any = None  # triggerOutputs(): headers and, for Microsoft's triggers, 'body/...' paths
    bodies: dict[str, Any] = field(default_factory=dict)  # body('X') of a connector action (else its outputs)
    item: Any = None  # item() inside a Select
    run_name: str = "08585000000000000000000000000CU00"


def _tokens(text: str) -> list[tuple[str, str]]:
    found = []
    at = 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if not match or match.end() == at:
            if text[at:].strip() == "":
                break
            raise ExpressionError(f"cannot read {text[at:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


def _format_date(value: Any, pattern: str) -> str:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    python = re.sub("|".join(DATE_FORMATS), lambda m: DATE_FORMATS[m.group(0)], pattern)
    return moment.strftime(python)


def _add_days(value: Any, days: int) -> str:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment + dt.timedelta(days=days)).isoformat()


def _moment(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _start_of_day(value: Any) -> str:
    return _moment(value).replace(hour=0, minute=0, second=0, microsecond=0).isoformat()


def _add_hours(value: Any, hours: int) -> str:
    return (_moment(value) + dt.timedelta(hours=hours)).isoformat()


class _Parser:
    def __init__(self, text: str, context: Context) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.context = context
        self.functions: dict[str, Callable[..., Any]] = {
            "replace": lambda s, old, new: None if s is None else str(s).replace(old, new),
            "formatDateTime": _format_date,
            "addDays": _add_days,
            "utcNow": lambda: self.context.now.isoformat(),
            "coalesce": lambda *values: next((v for v in values if v is not None), None),
            "concat": lambda *values: "".join("" if v is None else str(v) for v in values),
            "first": lambda values: values[0] if values else None,
            "split": lambda s, sep: str(s).split(sep),
            "triggerBody": lambda: self.context.trigger_body,
            "outputs": lambda name: self.context.outputs[name],
            "body": lambda name: (
                self.context.bodies[name] if name in self.context.bodies else self.context.outputs[name]
            ),
            "triggerOutputs": lambda: self.context.trigger_outputs,
            "item": lambda: self.context.item,
            "workflow": lambda: {"run": {"name": self.context.run_name}},
            "length": lambda value: len(value or []),
            "empty": lambda value: not value,
            "startOfDay": _start_of_day,
            "addHours": _add_hours,
            "items": lambda name: self.context.items[name],
            "parameters": lambda name: self.context.parameters[name],
        }

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ExpressionError(f"expected {value!r}, found {token!r}")
        self.at += 1
        return token

    def expression(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            value: Any = text[1:-1].replace("''", "'")
        elif kind == "number":
            value = int(text)
        elif kind == "name" and text in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[text]
        elif kind == "name":
            if text not in self.functions:
                raise ExpressionError(f"unknown function {text}")
            self.take("(")
            arguments = []
            while self.peek() and self.peek()[1] != ")":  # type: ignore[index]
                arguments.append(self.expression())
                if self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                    self.take(",")
            self.take(")")
            value = self.functions[text](*arguments)
        else:
            raise ExpressionError(f"unexpected {text!r}")
        while self.peek() and self.peek()[1] in ("[", "?["):  # type: ignore[index]
            optional = self.take()[1] == "?["
            key = self.expression()
            self.take("]")
            if value is None and optional:
                continue
            value = value[key] if isinstance(value, list) else value.get(key)
        return value

    def whole(self) -> Any:
        value = self.expression()
        if self.peek() is not None:
            raise ExpressionError(f"trailing {self.peek()!r}")
        return value


def evaluate(expression: str, context: Context) -> Any:
    """One expression, without its leading @."""
    return _Parser(expression, context).whole()


def interpolate(value: str, context: Context) -> Any:
    """A workflow string value: "@expr" is the expression's value, "@{expr}" parts are interpolated."""
    if value.startswith("@") and not value.startswith("@{"):
        return evaluate(value[1:], context)
    parts = re.split(r"@\{((?:[^{}']|'(?:[^']|'')*')*)\}", value)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            result = evaluate(part, context)
            out.append("" if result is None else str(result))
        else:
            out.append(part)
    return "".join(out)


def interpolations(value: str) -> list[str]:
    """The expressions inside a string's @{...} parts (or the one expression of "@expr")."""
    if value.startswith("@") and not value.startswith("@{"):
        return [value[1:]]
    return re.findall(r"@\{((?:[^{}']|'(?:[^']|'')*')*)\}", value)
