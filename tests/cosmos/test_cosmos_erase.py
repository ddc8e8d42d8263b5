"""Cosmos DB: ForgetRecipient deletes or scrubs the person's items at once (no waiting for a TTL), only in their tenant.

Every container is read back in full after the erase and searched for the person's addresses and
message text. (The local test server never enforces TTL: expiry itself is covered by the ``ttl``
checks in tests/store/test_retention.py.)
"""

from __future__ import annotations

import json

import pytest
from teams_proactive.bot.model import Broadcast, Delivery, Notification, Reference, Surface
from teams_proactive.bot.recipients import forget, index_keys
from teams_proactive.bot.store.base import PersonKey
from teams_proactive.bot.store.cosmos import CONTAINERS

from tests.cosmos.conftest import OpenStore

pytestmark = pytest.mark.cosmos

UPN, AAD, TEXT = "erase.me@contoso.example", "7e1f0a2b-1111-4222-8333-999988887777", "COSMOS-ERASE-TEXT-41d"


def _ref(tenant: str, user: str, upn: str, name: str) -> Reference:
    return Reference(
        tenant_id=tenant, user_key=user, surface=Surface.TEAMS, conversation_id=f"a:{user}",
        service_url="https://smba.example/teams/", channel_id="msteams", user_id=f"29:{user}", bot_id="28:bot",
        aad_object_id=user, upn=upn, email=upn, name=name,
    )  # fmt: skip


async def test_forget_leaves_nothing_of_the_person_in_any_container(open_store: OpenStore) -> None:
    store = await open_store()
    await store.references.write(_ref("t1", AAD, UPN, "Erase Me"), None)
    await store.references.write(_ref("t2", "other-user", "other@fabrikam.example", "Someone Else"), None)
    for n in range(3):
        await store.outbox.create(
            Delivery(id=f"d{n}", owner="k", tenant_id="t1", user_key=AAD, recipient=UPN, content={"text": TEXT})
        )
    await store.broadcasts.create(
        Broadcast(id="b1", owner="k", tenant_id="t1", content={"text": "all"}, recipients=[UPN, "x@contoso.example"])
    )
    # Another tenant's broadcast naming the same address (unknown there): never touched.
    await store.broadcasts.create(
        Broadcast(id="b2", owner="k", tenant_id="t2", content={"text": "all"}, recipients=[UPN])
    )
    await store.broadcasts.index("b1", index_keys("t1", [UPN]), None)
    await store.broadcasts.index("b2", index_keys("t2", [UPN]), None)
    await store.subscriptions.create_notifications(
        [Notification(id="n1", subscription_id="s", body={"text": TEXT}, tenant_id="t1", user_key=AAD)]
    )

    result = await forget(store, PersonKey("t1", AAD))

    assert result == {"references": 1, "deliveries": 3, "broadcasts": 1}
    everything = {}
    for name in CONTAINERS:
        everything[name] = [d async for d in store.containers[name].query_items("SELECT * FROM c")]
    dump = json.dumps(everything).lower()
    other_tenant = next(d for d in everything["broadcasts"] if d["id"] == "b2")
    assert other_tenant["recipients"] == [UPN]
    everything["broadcasts"] = [d for d in everything["broadcasts"] if d["id"] != "b2"]
    dump = json.dumps(everything).lower()
    for secret in (UPN, AAD, TEXT.lower(), "erase me"):
        assert secret not in dump, secret
    assert "other@fabrikam.example" in dump
