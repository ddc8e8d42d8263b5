"""JSON for the hot paths (store bodies, Bot Connector calls): orjson, several times faster than ``json``.

Text, not bytes: SQLite's JSON functions (json_extract in the partial indexes) read TEXT and refuse
a BLOB. Enums (StrEnum) serialise as their values, as with ``json``.

orjson refuses what ``json`` writes without complaint: integers beyond 64 bits and non-string keys.
A maker's card may hold any number, so such a value goes through ``json`` instead of failing the send
(or, in a broadcast, every attempt to store it); read back, such an integer is a float.

A lone surrogate is the one thing ``json`` writes that orjson cannot read back (as ``"\\ud800"``): a
record holding one would stop every loop that reads it. Input is checked where it enters
(``teams_proactive.bot.text``); should one slip through anyway, ``dumps`` refuses it here, so the
write fails instead of storing a record nobody can read.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def _fallback(value: Any) -> str:
    text = json.dumps(value)
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError("refusing to write JSON that cannot be read back (a lone surrogate)") from exc
    return text


def dumps(value: Any) -> str:
    """Raises ValueError for a value whose JSON could not be read back (see the module's docstring)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _fallback(value)


def dumps_bytes(value: Any) -> bytes:
    """For an HTTP body: no decode and re-encode on the way to the socket."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _fallback(value).encode()


def loads(text: str | bytes) -> Any:
    """Raises orjson.JSONDecodeError, a ValueError like json's."""
    return orjson.loads(text)
