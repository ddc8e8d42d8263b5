"""Records a loop cannot read: decoded one at a time, so one bad record is set aside with its reason
instead of failing the whole batch (the quarantine of issue 24 builds on this; it touches no store).

A loop that claims or scans many records (the dispatcher, the broadcast coordinator, the callback
relay, the purge) decodes each row with :func:`decode_each`; what could not be decoded comes back as
:class:`Unreadable` for the caller to move aside and count. The reason names the exception and what it
says about *where* the record is broken, cut short, never the record's content: message bodies and
people's addresses never go to logs or metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

Raw = TypeVar("Raw")
Decoded = TypeVar("Decoded")

MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class Unreadable:
    """One record that could not be read: which kind, which id, and why (no content)."""

    kind: str
    record_id: str
    reason: str


def reason_of(exc: BaseException) -> str:
    """``TypeName: message``, first line only, at most MAX_REASON_CHARS characters, and only when the
    message holds no quoted text (an exception may quote the value it choked on)."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    if any(quote in message for quote in ("'", '"')):
        message = ""  # it quotes something from the record: keep the type only
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:MAX_REASON_CHARS]


def decode_each(
    rows: Iterable[tuple[str, Raw]], decode: Callable[[Raw], Decoded], kind: str
) -> tuple[list[Decoded], list[Unreadable]]:
    """Decode ``(record_id, raw)`` rows one by one: the decoded records in order, and the ones that failed."""
    decoded: list[Decoded] = []
    unreadable: list[Unreadable] = []
    for record_id, raw in rows:
        try:
            decoded.append(decode(raw))
        except Exception as exc:  # any decoder failure isolates the one record, never the batch
            unreadable.append(Unreadable(kind, record_id, reason_of(exc)))
    return decoded, unreadable
