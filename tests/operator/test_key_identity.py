"""A caller is its key's immutable id: built-in names cannot be taken, and each key has its own rate bucket."""

from __future__ import annotations

import json

import pytest
from teams_proactive.connector.cli import main

from tests.conftest import API_KEY
from tests.security.conftest import create_key
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


@pytest.mark.parametrize("name", ["bootstrap", "cli", "dashboard", "entra:tenant-b:app", "builtin:anything", "CLI"])
def test_keys_create_refuses_the_names_of_built_in_callers(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code = main(["keys", "create", "--name", name, "--tenant", "tenant-b", "--scopes", "send,admin"])
    err = capsys.readouterr().err
    assert code == 2 and "reserved" in err and "tpk_" not in err
    assert main(["keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_each_key_has_its_own_rate_bucket(app_env: dict[str, str], connector: FakeConnector) -> None:
    with LiveApp({**app_env, "RATE_LIMIT_PER_MINUTE": "3"}) as live:
        key = create_key(live, "flow-1", scopes=["admin"])
        for _ in range(3):
            assert live.api("GET", "/api/v1/recipients", API_KEY).status_code == 200
        throttled = live.api("GET", "/api/v1/recipients", API_KEY)
        assert throttled.status_code == 429 and throttled.json()["error"]["code"] == "Throttled"
        # Another key, whatever its name, is another caller.
        assert live.api("GET", "/api/v1/recipients", key).status_code == 200


def test_subscriptions_made_before_the_upgrade_stay_with_their_key_but_not_with_a_built_in_name(
    app_env: dict[str, str], connector: FakeConnector
) -> None:
    """Records written by the previous version name their owner by key name."""
    from teams_proactive.bot.model import ApiKey, Subscription
    from teams_proactive.connector import keys

    with LiveApp(app_env) as live:
        store = live.runtime.store
        flow_key = create_key(live, "flow-old", tenant_id="tenant-a", scopes=["send"])
        # A key named like a built-in caller, made before names were reserved (straight into the store).
        squatter = ApiKey(id="0badc0ffee00", name="bootstrap", secret_hash=keys._hash("s3cret"), scopes=["send"])
        live.runtime.call(store.keys.create(squatter))
        squatter_key = "tpk_0badc0ffee00_s3cret"
        for sub_id, owner in (("legacy-flow", "flow-old"), ("legacy-boot", "bootstrap")):
            subscription = Subscription(
                id=sub_id, owner=owner, event="userMessage", callback_url="https://x.example/cb", tenant_id="tenant-a"
            )
            live.runtime.call(store.subscriptions.create(subscription))
        assert live.api("DELETE", "/api/v1/subscriptions/legacy-boot", squatter_key).status_code == 404
        assert live.api("DELETE", "/api/v1/subscriptions/legacy-flow", squatter_key).status_code == 404
        assert live.api("DELETE", "/api/v1/subscriptions/legacy-flow", flow_key).status_code == 204
        assert live.runtime.call(store.subscriptions.get("legacy-boot")) is not None
