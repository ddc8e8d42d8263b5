"""The references repository: one conversation reference per person and surface, and who a recipient is."""

from __future__ import annotations

import abc
from collections.abc import Callable

from teams_proactive.bot.model import Reference
from teams_proactive.bot.store.base.records import Page, PersonKey, read_modify_write


class References(abc.ABC):
    """Conditional writes take the etag the record was read with; ``etag=None`` means "create, and fail
    with ConcurrencyConflict if it exists". Reads never return a reference whose ``expires_at`` passed."""

    reference_ttl_seconds: float | None = None

    @abc.abstractmethod
    async def get(self, tenant_id: str, user_key: str, surface: str) -> Reference | None: ...

    @abc.abstractmethod
    async def of_person(self, tenant_id: str, user_key: str) -> list[Reference]:
        """Every live reference of one person, by surface."""

    @abc.abstractmethod
    async def write(self, ref: Reference, etag: str | None) -> Reference:
        """Create (etag None) or conditionally replace a reference; returns it with its new etag."""

    @abc.abstractmethod
    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        """People whose Entra object ID, UPN or email equals ``recipient`` (case-insensitive)."""

    @abc.abstractmethod
    async def page(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]: ...

    @abc.abstractmethod
    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        """The newest service URL seen for the tenant on that channel."""

    @abc.abstractmethod
    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        """Erase every reference of a person; returns how many were removed."""

    async def update(
        self,
        tenant_id: str,
        user_key: str,
        surface: str,
        change: Callable[[Reference | None], Reference | None],
    ) -> Reference | None:
        """Apply ``change`` to the current reference (None when missing) and write it conditionally,
        retrying on conflict. ``change`` returning None means "nothing to write"."""

        async def read() -> Reference | None:
            return await self.get(tenant_id, user_key, surface)

        return await read_modify_write(read, change, self.write)

    async def update_person(
        self, tenant_id: str, user_key: str, change: Callable[[Reference], Reference | None]
    ) -> list[Reference]:
        """Apply ``change`` to every reference of one person (each written conditionally)."""
        updated = []
        for ref in await self.of_person(tenant_id, user_key):

            def guarded(current: Reference | None) -> Reference | None:
                return change(current) if current is not None else None

            result = await self.update(tenant_id, user_key, ref.surface, guarded)
            if result is not None:
                updated.append(result)
        return updated

    def expiry(self, last_seen: float) -> float | None:
        """The sliding expiry of a reference seen at ``last_seen`` (None: never expires)."""
        if self.reference_ttl_seconds is None:
            return None
        return last_seen + self.reference_ttl_seconds
