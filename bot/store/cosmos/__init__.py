"""Azure Cosmos DB backend: point reads on the hot paths, ETag-conditional writes, opt-in TTL."""

from teams_proactive.bot.store.cosmos.database import CONTAINERS
from teams_proactive.bot.store.cosmos.store import CosmosStore

__all__ = ["CONTAINERS", "CosmosStore"]
