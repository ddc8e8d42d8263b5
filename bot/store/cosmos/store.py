"""The Cosmos DB store (production)."""

from __future__ import annotations

from typing import Any

from azure.cosmos.aio import ContainerProxy, DatabaseProxy
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store.base import DatabaseStore
from teams_proactive.bot.store.cosmos.broadcasts import CosmosBroadcasts
from teams_proactive.bot.store.cosmos.database import CosmosDatabase
from teams_proactive.bot.store.cosmos.erasures import CosmosErasures
from teams_proactive.bot.store.cosmos.keys import CosmosKeys
from teams_proactive.bot.store.cosmos.leases import CosmosLeases
from teams_proactive.bot.store.cosmos.outbox import CosmosOutbox
from teams_proactive.bot.store.cosmos.quarantine import CosmosQuarantine
from teams_proactive.bot.store.cosmos.references import CosmosReferences
from teams_proactive.bot.store.cosmos.subscriptions import CosmosSubscriptions


class CosmosStore(DatabaseStore):
    """The cosmos backend: one shared CosmosDatabase, one repository per kind of record."""

    def __init__(
        self,
        endpoint: str,
        *,
        key: str = "",
        database: str = "teams-proactive",
        reference_ttl_seconds: float | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.db = CosmosDatabase(
            endpoint,
            key=key,
            database=database,
            reference_ttl_seconds=reference_ttl_seconds,
            client_options=client_options,
        )
        self.reference_ttl_seconds = reference_ttl_seconds
        self.references = CosmosReferences(self.db)
        self.outbox = CosmosOutbox(self.db)
        self.broadcasts = CosmosBroadcasts(self.db)
        self.keys = CosmosKeys(self.db)
        self.subscriptions = CosmosSubscriptions(self.db)
        self.erasures = CosmosErasures(self.db)
        self.leases = CosmosLeases(self.db)
        self.quarantine = CosmosQuarantine(self.db)

    @classmethod
    def from_settings(cls, settings: BotSettings, *, reference_ttl_seconds: float | None = None) -> CosmosStore:
        return cls(
            settings.cosmos_endpoint,
            key=settings.cosmos_key,
            database=settings.cosmos_database,
            reference_ttl_seconds=reference_ttl_seconds,
        )

    @property
    def endpoint(self) -> str:
        return self.db.endpoint

    @property
    def database(self) -> DatabaseProxy | None:
        """The database once open (tests and tools read containers through it)."""
        return self.db.database

    @property
    def containers(self) -> dict[str, ContainerProxy]:
        """Each container by name (see ``CONTAINERS``), once open."""
        return self.db.containers
