"""JSON for the hot paths (store bodies, Bot Connector calls): orjson, several times faster than ``json``.

Text, not bytes: SQLite's JSON functions (json_extract in the partial indexes) read TEXT and refuse
a BLOB. Enums (StrEnum) serialise as their values, as with ``json``.

orjson refuses what ``json`` writes without complaint: integers beyond 64 bits and non-string keys.
A maker's card may hold any number, so such a value goes through ``json`` instead of failing the send
(or, in a broadcast, every attempt to store it); read back, such an integer is a float.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def dumps_bytes(value: Any) -> bytes:
    """For an HTTP body: no decode and re-encode on the way to the socket."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def loads(text: str | bytes) -> Any:
    """Raises orjson.JSONDecodeError, a ValueError like json's."""
    return orjson.loads(text)
