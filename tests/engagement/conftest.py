"""Engagement fixtures: the live app with a quick dispatcher and quick webhooks, a callback server,
and read receipts built from Microsoft's documented example."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.connector.conftest import FAST_WEBHOOKS
from tests.connector.support import CallbackServer
from tests.delivery.conftest import FAST
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "teams" / "activities" / "read-receipt.json"


@pytest.fixture
def hooks() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def engage_live(app_env: dict[str, str], connector: FakeConnector) -> Iterator[LiveApp]:
    with LiveApp(app_env, runtime_kwargs={"dispatcher_settings": FAST, "webhook_settings": FAST_WEBHOOKS}) as app:
        yield app


def documented_receipt() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text())["activity"])


def read_receipt(
    user: act.TeamsUser, service_url: str, last_read_message_id: Any, *, conversation_id: str | None = None
) -> dict[str, Any]:
    """The documented receipt, addressed as Teams would for ``user`` (only ids, tenant and URL change)."""
    activity = copy.deepcopy(documented_receipt())
    activity["serviceUrl"] = service_url
    activity["from"] = {"id": user.user_id, "aadObjectId": user.aad_object_id}
    activity["conversation"] = {
        "conversationType": "personal",
        "tenantId": user.tenant_id,
        "id": conversation_id or user.conversation_id,
    }
    activity["recipient"] = {"id": act.BOT_ID, "name": activity["recipient"]["name"]}
    activity["channelData"] = {"tenant": {"id": user.tenant_id}}
    activity["value"] = {"lastReadMessageId": last_read_message_id}
    return activity
