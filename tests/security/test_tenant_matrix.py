"""A key of one tenant can neither see nor change anything of another tenant, on any route of the API.

Two API keys limited to two tenants (each with every scope), each tenant with its own person,
message, card, broadcast and subscription. Every route of ``/api/v1`` is called with tenant B's key
on tenant A's objects: each answers 404 (the object is not there for B: its existence is not
revealed) or 403 (B asked for tenant A by name), and afterwards tenant A's data is as it was. The
route list is read from the app, so a new route that is not in the matrix fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.security.conftest import create_key, error_of, final_delivery, finished_broadcast
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member
from tests.support.live_app import LiveApp

TENANT_A, TENANT_B = "tenant-a", "tenant-b"
CALLBACK = "https://prod-00.westeurope.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=matrix"
# A waiting card's run callback (a webhook action): inside CALLBACK_ALLOWED_NETWORKS, nothing listens.
RUN_CALLBACK = "http://127.0.0.1:9/workflows/run/triggers/manual/paths/invoke?sig=matrix"
WAIT_CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Approve?"}],
    "actions": [{"type": "Action.Submit", "title": "OK", "data": {"ok": True}}],
}


@dataclass
class Tenant:
    key: str
    user: act.TeamsUser
    message_id: str = ""
    card_id: str = ""
    broadcast_id: str = ""
    subscription_id: str = ""


@dataclass
class World:
    live: LiveApp
    a: Tenant
    b: Tenant


def _user(connector: FakeConnector, name: str, upn: str, tenant: str) -> act.TeamsUser:
    user = act.TeamsUser(name=name, upn=upn, tenant_id=tenant)
    connector.add_member(Member(user.user_id, name, user.aad_object_id, upn, upn, tenant))
    return user


def _populate(live: LiveApp, connector: FakeConnector, tenant: Tenant) -> None:
    assert live.activity(act.install(tenant.user, connector.service_url(tenant.user.tenant_id))).status_code == 200
    sent = live.api(
        "POST",
        "/api/v1/messages",
        tenant.key,
        json={"recipient": tenant.user.upn, "text": f"hello {tenant.user.tenant_id}", "idempotencyKey": "shared-run"},
    )
    assert sent.status_code == 200, sent.text
    tenant.message_id = sent.json()["id"]
    final_delivery(live, tenant.message_id, tenant.key)
    # A key only this tenant used: another tenant's replay of it must not find this delivery.
    own = live.api(
        "POST",
        "/api/v1/messages",
        tenant.key,
        json={"recipient": tenant.user.upn, "text": "own run", "idempotencyKey": f"run-{tenant.user.tenant_id}"},
    )
    assert own.status_code == 200, own.text
    card = live.api(
        "POST",
        "/api/v1/cards/wait",
        tenant.key,
        json={"recipient": tenant.user.upn, "card": WAIT_CARD, "notificationUrl": RUN_CALLBACK},
    )
    assert card.status_code == 201, card.text
    tenant.card_id = card.json()["id"]
    broadcast = live.api(
        "POST", "/api/v1/broadcasts", tenant.key, json={"recipients": [tenant.user.upn], "text": "to all"}
    )
    assert broadcast.status_code in (200, 202), broadcast.text
    tenant.broadcast_id = broadcast.json()["id"]
    finished_broadcast(live, tenant.broadcast_id, tenant.key)
    subscription = live.api(
        "POST", "/api/v1/subscriptions/delivery-failures", tenant.key, json={"notificationUrl": CALLBACK}
    )
    assert subscription.status_code == 201, subscription.text
    tenant.subscription_id = subscription.json()["id"]


@pytest.fixture
def world(app_env: dict[str, str], connector: FakeConnector) -> Iterator[World]:
    with LiveApp({**app_env, "RATE_LIMIT_PER_MINUTE": "0"}) as live:
        a = Tenant(
            create_key(live, "flow-a", tenant_id=TENANT_A, scopes=["send", "broadcast", "admin"]),
            _user(connector, "Alice A", "alice@a.example", TENANT_A),
        )
        b = Tenant(
            create_key(live, "flow-b", tenant_id=TENANT_B, scopes=["send", "broadcast", "admin"]),
            _user(connector, "Bob B", "bob@b.example", TENANT_B),
        )
        _populate(live, connector, a)
        _populate(live, connector, b)
        yield World(live, a, b)


# (method, route rule) -> what tenant B's key does with tenant A's object, and what it must get.
Case = Callable[[World], tuple[str, str, dict[str, Any] | None]]
CASES: dict[tuple[str, str], list[tuple[Case, int, str]]] = {
    ("POST", "/api/v1/messages"): [
        (lambda w: ("POST", "/api/v1/messages", {"recipient": w.a.user.upn, "text": "x"}), 404, "RecipientNotFound"),
        (
            lambda w: ("POST", "/api/v1/messages", {"recipient": w.a.user.upn, "text": "x", "tenantId": TENANT_A}),
            404,
            "RecipientNotFound",
        ),
        # Idempotent replay: A's idempotencyKey with A's body from B's key never answers A's delivery.
        (
            lambda w: (
                "POST",
                "/api/v1/messages",
                {"recipient": w.a.user.upn, "text": "own run", "idempotencyKey": f"run-{TENANT_A}"},
            ),
            404,
            "RecipientNotFound",
        ),
    ],
    ("GET", "/api/v1/messages/<string:message_id>"): [
        (lambda w: ("GET", f"/api/v1/messages/{w.a.message_id}", None), 404, "NotFound"),
        (lambda w: ("GET", f"/api/v1/messages/{w.a.card_id}", None), 404, "NotFound"),
    ],
    ("PUT", "/api/v1/messages/<string:message_id>"): [
        (lambda w: ("PUT", f"/api/v1/messages/{w.a.message_id}", {"text": "changed by B"}), 404, "NotFound"),
    ],
    ("DELETE", "/api/v1/messages/<string:message_id>"): [
        (lambda w: ("DELETE", f"/api/v1/messages/{w.a.message_id}", None), 404, "NotFound"),
    ],
    ("GET", "/api/v1/messages/<string:message_id>/status"): [
        (lambda w: ("GET", f"/api/v1/messages/{w.a.message_id}/status", None), 404, "NotFound"),
    ],
    ("POST", "/api/v1/cards/wait"): [
        (
            lambda w: (
                "POST",
                "/api/v1/cards/wait",
                {"recipient": w.a.user.upn, "card": WAIT_CARD, "notificationUrl": RUN_CALLBACK},
            ),
            404,
            "RecipientNotFound",
        ),
    ],
    ("GET", "/api/v1/cards/wait/<string:card_id>"): [
        (lambda w: ("GET", f"/api/v1/cards/wait/{w.a.card_id}", None), 404, "NotFound"),
    ],
    ("DELETE", "/api/v1/cards/wait/<string:card_id>"): [
        (lambda w: ("DELETE", f"/api/v1/cards/wait/{w.a.card_id}", None), 404, "NotFound"),
    ],
    # Reads only the card it is given: nothing of any tenant's.
    ("POST", "/api/v1/cards/answer-schema"): [
        (lambda w: ("POST", "/api/v1/cards/answer-schema", {"card": WAIT_CARD}), 200, None),
    ],
    # The picker lists B's own people only (test_the_picker_never_shows_another_tenant).
    ("GET", "/api/v1/people"): [
        (lambda w: ("GET", "/api/v1/people", None), 200, None),
    ],
    ("GET", "/api/v1/recipients"): [
        (lambda w: ("GET", f"/api/v1/recipients?tenantId={TENANT_A}", None), 403, "Forbidden"),
    ],
    ("GET", "/api/v1/recipients/<string:recipient>"): [
        (lambda w: ("GET", f"/api/v1/recipients/{w.a.user.upn}", None), 404, "RecipientNotFound"),
        (lambda w: ("GET", f"/api/v1/recipients/{w.a.user.aad_object_id}", None), 404, "RecipientNotFound"),
    ],
    ("DELETE", "/api/v1/recipients/<string:recipient>"): [
        (lambda w: ("DELETE", f"/api/v1/recipients/{w.a.user.upn}", None), 404, "RecipientNotFound"),
    ],
    ("POST", "/api/v1/broadcasts"): [
        (
            lambda w: ("POST", "/api/v1/broadcasts", {"allActiveUsers": True, "tenantId": TENANT_A, "text": "x"}),
            403,
            "Forbidden",
        ),
        (
            lambda w: ("POST", "/api/v1/broadcasts", {"recipients": [w.a.user.upn], "tenantId": TENANT_A, "text": "x"}),
            403,
            "Forbidden",
        ),
    ],
    ("GET", "/api/v1/broadcasts/<string:broadcast_id>"): [
        (lambda w: ("GET", f"/api/v1/broadcasts/{w.a.broadcast_id}", None), 404, "NotFound"),
    ],
    ("PUT", "/api/v1/broadcasts/<string:broadcast_id>"): [
        (lambda w: ("PUT", f"/api/v1/broadcasts/{w.a.broadcast_id}", {"text": "changed by B"}), 404, "NotFound"),
    ],
    ("DELETE", "/api/v1/broadcasts/<string:broadcast_id>"): [
        (lambda w: ("DELETE", f"/api/v1/broadcasts/{w.a.broadcast_id}", None), 404, "NotFound"),
    ],
    ("GET", "/api/v1/broadcasts/<string:broadcast_id>/recipients"): [
        (lambda w: ("GET", f"/api/v1/broadcasts/{w.a.broadcast_id}/recipients", None), 404, "NotFound"),
    ],
    ("GET", "/api/v1/broadcasts/<string:broadcast_id>/status"): [
        (lambda w: ("GET", f"/api/v1/broadcasts/{w.a.broadcast_id}/status", None), 404, "NotFound"),
    ],
    ("DELETE", "/api/v1/subscriptions/<string:subscription_id>"): [
        (lambda w: ("DELETE", f"/api/v1/subscriptions/{w.a.subscription_id}", None), 404, "NotFound"),
    ],
    # A per-item report (each of A's references "skipped: OtherTenant"); the snapshot shows A unchanged.
    ("POST", "/api/v1/references"): [
        (lambda w: ("POST", "/api/v1/references", _foreign_reference(w)), 200, None),
    ],
}


def _foreign_reference(w: World) -> dict[str, Any]:
    """Tenant A's person, as B would like them to be: another chat, another service URL."""
    return {
        "user": {"id": w.a.user.user_id, "aadObjectId": w.a.user.aad_object_id},
        "bot": {"id": act.BOT_ID},
        "conversation": {"id": "a:taken-over-by-b", "conversationType": "personal", "tenantId": TENANT_A},
        "channelId": "msteams",
        "serviceUrl": "https://attacker.example/",
        "lastSeen": "2999-01-01T00:00:00Z",
    }
for trigger in ("", "/user-messages", "/card-submissions", "/installations", "/delivery-failures", "/message-reads"):
    body: dict[str, Any] = {"notificationUrl": CALLBACK, "tenantId": TENANT_A}
    if not trigger:
        body["event"] = "userMessage"
    CASES[("POST", f"/api/v1/subscriptions{trigger}")] = [
        (lambda w, p=f"/api/v1/subscriptions{trigger}", b=body: ("POST", p, b), 403, "Forbidden")
    ]


def _api_routes(live: LiveApp) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in live.app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def _snapshot(w: World) -> dict[str, Any]:
    """What tenant A's own key sees of tenant A's objects."""
    key = w.a.key

    def get(path: str) -> Any:
        response = w.live.api("GET", path, key)
        assert response.status_code in (200, 202), (path, response.text)
        body = response.json()
        body.pop("lastSeen", None)
        return body

    subscriptions = w.live.runtime.call(w.live.runtime.store.subscriptions.list_all())
    return {
        "message": get(f"/api/v1/messages/{w.a.message_id}"),
        "card": get(f"/api/v1/cards/wait/{w.a.card_id}"),
        "broadcast": get(f"/api/v1/broadcasts/{w.a.broadcast_id}"),
        "recipient": get(f"/api/v1/recipients/{w.a.user.upn}"),
        "subscriptions": sorted(s.id for s in subscriptions),
    }


def test_every_route_refuses_another_tenants_objects(world: World) -> None:
    routes = _api_routes(world.live)
    missing = routes - set(CASES)
    assert not missing, f"routes not in the cross-tenant matrix (add them): {sorted(missing)}"
    before = _snapshot(world)
    outcomes = []
    for route, cases in sorted(CASES.items()):
        if route not in routes:
            continue
        for case, status, code in cases:
            method, path, body = case(world)
            response = world.live.api(method, path, world.b.key, json=body)
            got = (response.status_code, error_of(response)["code"] if response.status_code >= 400 else None)
            outcomes.append((method, path, got, (status, code)))
    wrong = [o for o in outcomes if o[2] != o[3]]
    assert not wrong, "\n".join(f"{m} {p}: got {g}, want {e}" for m, p, g, e in wrong)
    # Nothing of tenant A changed; nothing was sent to A's person by B.
    assert _snapshot(world) == before
    assert len(outcomes) >= len(routes)


def test_listing_recipients_never_shows_another_tenant(world: World) -> None:
    live = world.live
    assert [p["recipient"] for p in live.api("GET", "/api/v1/recipients", world.b.key).json()["value"]] == [
        world.b.user.upn
    ]


def test_the_picker_never_shows_another_tenant(world: World) -> None:
    live = world.live
    assert [p["upn"] for p in live.api("GET", "/api/v1/people", world.b.key).json()["value"]] == [world.b.user.upn]
    assert live.api("GET", "/api/v1/people?search=alice", world.b.key).json()["value"] == []


def test_the_same_idempotency_key_in_two_tenants_makes_two_deliveries(world: World) -> None:
    # Both tenants used "shared-run" in _populate: each got its own delivery, to its own person.
    assert world.a.message_id != world.b.message_id
    a = world.live.api("GET", f"/api/v1/messages/{world.a.message_id}", world.a.key).json()
    b = world.live.api("GET", f"/api/v1/messages/{world.b.message_id}", world.b.key).json()
    assert (a["recipient"], b["recipient"]) == (world.a.user.upn, world.b.user.upn)
    # A replay by the owner answers its own delivery; the same key with another body is refused.
    again = world.live.api(
        "POST",
        "/api/v1/messages",
        world.b.key,
        json={"recipient": world.b.user.upn, "text": f"hello {TENANT_B}", "idempotencyKey": "shared-run"},
    )
    assert again.status_code == 200 and again.json()["id"] == world.b.message_id
    edited = world.live.api(
        "POST",
        "/api/v1/messages",
        world.b.key,
        json={"recipient": world.b.user.upn, "text": "something else", "idempotencyKey": "shared-run"},
    )
    assert edited.status_code == 409 and error_of(edited)["code"] == "IdempotencyKeyReused"


def test_an_admin_key_of_one_tenant_cannot_unsubscribe_another_tenants_flow(world: World) -> None:
    live = world.live
    store = live.runtime.store
    admin_a = create_key(live, "admin-a", tenant_id=TENANT_A, scopes=["admin"])
    response = live.api("DELETE", f"/api/v1/subscriptions/{world.b.subscription_id}", admin_a)
    assert response.status_code == 404 and error_of(response)["code"] == "NotFound"
    assert live.runtime.call(store.subscriptions.get(world.b.subscription_id)) is not None
    # Its own tenant's flow it may remove, although another key made it.
    assert live.api("DELETE", f"/api/v1/subscriptions/{world.a.subscription_id}", admin_a).status_code == 204
    # A key of the same tenant without admin may not remove a subscription it did not make.
    sender_b = create_key(live, "sender-b", tenant_id=TENANT_B, scopes=["send"])
    refused = live.api("DELETE", f"/api/v1/subscriptions/{world.b.subscription_id}", sender_b)
    assert refused.status_code == 404


def test_forget_in_one_tenant_leaves_another_tenants_broadcast_alone(world: World, connector: FakeConnector) -> None:
    """The reported attack: tenant A's admin erased a person, and tenant B's broadcast report changed."""
    live = world.live
    shared = "carol@shared.example"
    # Tenant B broadcast to an address it does not know: its report names it as not found.
    started = live.api("POST", "/api/v1/broadcasts", world.b.key, json={"recipients": [shared], "text": "hi"})
    assert started.status_code in (200, 202), started.text
    report_b = finished_broadcast(live, started.json()["id"], world.b.key)
    assert [f["recipient"] for f in report_b["failures"]] == [shared]
    # Tenant A has a person with that address, and forgets them.
    carol = _user(connector, "Carol", shared, TENANT_A)
    assert live.activity(act.install(carol, connector.service_url(TENANT_A))).status_code == 200
    assert live.api("DELETE", f"/api/v1/recipients/{shared}", world.a.key).status_code == 204
    after = live.api("GET", f"/api/v1/broadcasts/{started.json()['id']}", world.b.key).json()
    assert [f["recipient"] for f in after["failures"]] == [shared]
    stored = live.runtime.call(live.runtime.store.broadcasts.get(started.json()["id"]))
    assert stored is not None and stored.recipients == [shared]


def test_key_names_of_built_in_callers_are_reserved(world: World) -> None:
    from teams_proactive.connector import keys

    for name in ("bootstrap", "cli", "Bootstrap", "entra:tenant-a:app", "builtin:x", "dashboard"):
        with pytest.raises(keys.KeyError_, match="reserved"):
            world.live.runtime.call(
                keys.create_key(world.live.runtime.store, name, tenant_id=TENANT_B, scopes=["send"])
            )
    # The bootstrap key (CONNECTOR_API_KEY) and tenant B's key are different callers: B's
    # idempotency keys never reach the bootstrap key's deliveries.
    boot = world.live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": world.b.user.upn, "text": "x", "idempotencyKey": "k9"}
    )
    mine = world.live.api(
        "POST",
        "/api/v1/messages",
        world.b.key,
        json={"recipient": world.b.user.upn, "text": "x", "idempotencyKey": "k9"},
    )
    assert boot.status_code == mine.status_code == 200 and boot.json()["id"] != mine.json()["id"]
