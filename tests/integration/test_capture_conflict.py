"""Capture when another writer changed the person's record between its read and its write (two activities of
one person at once, or a 'stop' from another surface): the conditional write conflicts, the change is applied
again on the current record, and neither writer's change is lost."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.model import Reference, Surface
from teams_proactive.bot.store.base import ConcurrencyConflict

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def test_a_conflicting_write_is_retried_on_the_current_record(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    assert live.activity(act.install(user, connector.service_url())).status_code == 200
    store = live.runtime.store
    original = store.references.write
    conflicts: list[str] = []
    raced: list[bool] = []

    async def racing_write(ref: Reference, etag: str | None) -> Any:
        if raced:
            return await original(ref, etag)  # the other writer's own write, and every write after the race
        raced.append(True)

        # Another writer gets in first: the person turned notifications off meanwhile.
        def opt_out(current: Reference | None) -> Reference | None:
            if current is None:
                return None
            current.opted_out = True
            return current

        await store.references.update(ref.tenant_id, ref.user_key, ref.surface, opt_out)
        try:
            return await original(ref, etag)
        except ConcurrencyConflict:
            conflicts.append(ref.user_key)
            raise

    store.references.write = racing_write  # type: ignore[method-assign]
    try:
        moved = act.message(user, connector.service_url("moved"), "hello")  # a new service URL to record
        assert live.activity(moved).status_code == 200
    finally:
        store.references.write = original  # type: ignore[method-assign]
    assert conflicts == [user.aad_object_id]
    refs = live.runtime.call(store.references.of_person(user.tenant_id, user.aad_object_id))
    (chat,) = [r for r in refs if r.surface == Surface.TEAMS]
    assert chat.opted_out is True  # the other writer's change survived
    assert chat.service_url == connector.service_url("moved")  # and so did this activity's
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["optedOut"] is True
