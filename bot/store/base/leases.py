"""The leases repository: named leases (the dispatcher's leadership) and small saved state for the next leader."""

from __future__ import annotations

import abc
from typing import Any


class Leases(abc.ABC):
    @abc.abstractmethod
    async def acquire(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the named lease when it is free, expired, or already ours."""

    @abc.abstractmethod
    async def release(self, name: str, owner: str) -> None: ...

    @abc.abstractmethod
    async def read_state(self, name: str) -> dict[str, Any] | None:
        """The JSON document last written under ``name``, or None."""

    @abc.abstractmethod
    async def write_state(self, name: str, state: dict[str, Any]) -> None:
        """Replace the document under ``name`` (last writer wins: only a lease holder writes)."""
