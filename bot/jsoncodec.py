"""JSON for the hot paths (store bodies, Bot Connector calls): orjson, several times faster than ``json``.

Text, not bytes: SQLite's JSON functions (json_extract in the partial indexes) read TEXT and refuse
a BLOB. Enums (StrEnum) serialise as their values, as with ``json``; keys must be strings.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumps_bytes(value: Any) -> bytes:
    """For an HTTP body: no decode and re-encode on the way to the socket."""
    return orjson.dumps(value)


def loads(text: str | bytes) -> Any:
    """Raises orjson.JSONDecodeError, a ValueError like json's."""
    return orjson.loads(text)
