"""Fixtures of the existing-bot tests: the Cosmos DB test server, for the several-hosts variant."""

from tests.support.cosmos_fixtures import cosmos_database, cosmos_target  # noqa: F401 - fixtures
