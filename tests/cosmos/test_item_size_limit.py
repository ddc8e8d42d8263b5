"""Cosmos DB's 2 MB item limit: the local server refuses an oversize write as Cosmos DB does (launcher
fix 4, tests/support/COSMOS_NOTES.md), and a broadcast's record stays under the limit however many
people it skips.

Microsoft: https://learn.microsoft.com/azure/cosmos-db/concepts-limits (an item is at most 2 MB, the
UTF-8 length of its JSON) and https://learn.microsoft.com/rest/api/cosmos-db/http-status-codes-for-cosmosdb
(413: the document size in the request exceeded the allowable document size).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.cosmos.exceptions import CosmosHttpResponseError
from teams_proactive.bot.delivery.broadcasts import MAX_SKIPPED_BYTES
from teams_proactive.bot.model import Broadcast

from tests.conftest import API_KEY
from tests.cosmos.conftest import OpenStore
from tests.cosmos.test_cosmos_app import app_env, poll, raw
from tests.support.cosmos_fixtures import CosmosTarget
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

pytestmark = pytest.mark.cosmos

TWO_MB = 2 * 1024 * 1024


async def test_a_write_over_2_mb_is_refused_with_413_and_stores_nothing(open_store: OpenStore) -> None:
    store = await open_store()

    def broadcast(broadcast_id: str, text_bytes: int) -> Broadcast:
        return Broadcast(id=broadcast_id, owner="k1", tenant_id="t1", content={"text": "x" * text_bytes}, recipients=[])

    with pytest.raises(CosmosHttpResponseError) as refused:
        await store.broadcasts.create(broadcast("b-too-large", TWO_MB))
    assert refused.value.status_code == 413
    assert "Request size is too large" in str(refused.value)
    assert await store.broadcasts.get("b-too-large") is None
    fits = await store.broadcasts.create(broadcast("b-fits", TWO_MB - 4096))  # the rest of the record fits
    assert (await store.broadcasts.get("b-fits")) is not None and fits.id == "b-fits"


def test_a_broadcast_that_skips_thousands_of_long_addresses_completes_under_the_item_limit(
    connector: FakeConnector, cosmos_target: CosmosTarget, cosmos_database: str
) -> None:
    # 3,000 people the bot never met, each with a 301-character address: every reason ("The bot has
    # never talked with '…'") is ~770 bytes, 2.3 MB for all of them: the broadcast record could not
    # be written, and the broadcast stayed "preparing" for ever.
    recipients = [f"{'n' * 280}{i:05d}@contoso.example" for i in range(3000)]
    with LiveApp(app_env(cosmos_target, cosmos_database)) as live:
        started = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": recipients, "text": "news"})
        assert started.status_code == 200, started.text
        broadcast_id = started.json()["id"]

        def finished() -> dict[str, Any] | None:
            report = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
            return report if report["status"] == "completed" else None

        report = poll(finished, timeout=120)
        assert report["total"] == 3000 and report["counts"]["skipped"] == 3000  # the count stays exact
        assert report["failures"][0]["code"] == "RecipientNotFound"
        stored = raw(live, "broadcasts", broadcast_id, broadcast_id)
        assert len(json.dumps(stored)) < TWO_MB
        kept = stored["skipped"]
        assert 0 < len(kept) < 3000 and len(json.dumps(kept)) <= MAX_SKIPPED_BYTES
        assert kept[0]["recipient"] == recipients[0]  # the first ones are kept, in list order
