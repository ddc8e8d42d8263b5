"""The API keys repository."""

from __future__ import annotations

import abc

from teams_proactive.bot.model import ApiKey


class Keys(abc.ABC):
    """API keys by id; names are unique (a second key with a name raises ConcurrencyConflict)."""

    @abc.abstractmethod
    async def create(self, key: ApiKey) -> ApiKey: ...

    @abc.abstractmethod
    async def get(self, key_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_all(self) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def write(self, key: ApiKey, etag: str) -> ApiKey: ...
