"""The erasures repository: people to erase later, durably, until the housekeeping has done it."""

from __future__ import annotations

import abc

from teams_proactive.bot.store.base.records import PersonKey


class Erasures(abc.ABC):
    @abc.abstractmethod
    async def queue(self, person: PersonKey) -> None:
        """Durably ask for a person to be erased later (by the dispatcher's housekeeping)."""

    @abc.abstractmethod
    async def pending(self, limit: int) -> list[PersonKey]:
        """Erasures asked for and not done yet, oldest first."""

    @abc.abstractmethod
    async def done(self, person: PersonKey) -> None: ...
