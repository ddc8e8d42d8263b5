"""Text the store can always read back: the one check every string entering the service goes through.

``json.loads`` turns a ``"\\ud800"`` escape into a lone surrogate, and a non-UTF-8 command-line argument
becomes one too (Python's ``surrogateescape``). Such a string cannot be encoded as UTF-8: orjson refuses
it, ``json`` writes it as an escape that orjson then cannot read back, and a stored record holding one
stops every loop that reads it. NUL is refused with it: nothing a person writes needs it, several
stores and HTTP headers cut a string there, and it hides text from people reading logs and reports.

The API (JSON bodies, query and path parameters), MCP tool calls, the command line and inbound
activities call :func:`check` on what they decoded, before anything else looks at it; the first bad
string is named by its path (``recipients[3]``, ``card.body[0].text``) so the caller's 400 can point at it.
"""

from __future__ import annotations

from typing import Any

NUL = "\x00"


class UnreadableText(ValueError):
    """A string that is not valid Unicode text for the store; ``target`` names where it was found."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        where = f"'{target}'" if target else "The value"
        super().__init__(f"{where} {reason}.")


def problem(value: str) -> str | None:
    """Why ``value`` cannot be taken (None when it can). Cheap for the common case: ASCII without NUL."""
    if value.isascii():
        return "contains a NUL character (U+0000)" if NUL in value else None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds an unpaired surrogate code point)"
    return "contains a NUL character (U+0000)" if NUL in value else None


def _join(parent: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


def _all_fine(value: Any) -> bool:
    """True when no string in ``value`` has a problem: the common case, checked without building paths.
    A list of strings (100,000 broadcast recipients) is checked as one joined string, at C speed."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if problem(node):
                return False
        elif isinstance(node, dict):
            if problem("".join(key for key in node if type(key) is str)):
                return False
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            if node and all(type(item) is str for item in node):
                if problem("".join(node)):
                    return False
            else:
                stack.extend(node)
        elif isinstance(node, str) and problem(node):  # a str subclass
            return False
    return True


def find(value: Any, target: str = "") -> UnreadableText | None:
    """The first bad string (or mapping key) anywhere in a decoded JSON value, or None.

    Iterative, so input nested far deeper than Python's recursion limit is walked too.
    """
    if _all_fine(value):
        return None
    stack: list[tuple[Any, str]] = [(value, target)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            reason = problem(node)
            if reason:
                return UnreadableText(where, reason)
        elif isinstance(node, dict):
            children: list[tuple[Any, str]] = []
            for key, item in node.items():
                if isinstance(key, str) and (reason := problem(key)):
                    # The key itself is unreadable: name its parent, not a path nobody can type.
                    return UnreadableText(where or "body", f"has a field name that {reason}")
                children.append((item, _join(where, str(key))))
            stack.extend(reversed(children))  # popped in document order: the first bad one is named
        elif isinstance(node, list | tuple):
            stack.extend((node[index], _join(where, index)) for index in range(len(node) - 1, -1, -1))
    return None


def check(value: Any, target: str = "") -> None:
    """Raise :class:`UnreadableText` for the first bad string in ``value``."""
    bad = find(value, target)
    if bad is not None:
        raise bad
