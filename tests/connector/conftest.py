"""Fixtures for the connector tests: the live app with fast webhook retries, a callback server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from teams_proactive.bot.webhooks import WebhookSettings

from tests.connector.support import CallbackServer
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

# Retries a few milliseconds apart, so a test of three attempts takes no noticeable time.
FAST_WEBHOOKS = WebhookSettings(
    max_attempts=4, backoff_base_seconds=0.02, backoff_max_seconds=0.1, timeout_seconds=5, lease_seconds=10
)


@pytest.fixture
def hooks() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def live(app_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp(app_env, runtime_kwargs={"webhook_settings": FAST_WEBHOOKS}) as app:
        yield app
