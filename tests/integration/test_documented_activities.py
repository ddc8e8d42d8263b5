"""Teams' documented activities (tests/fixtures/teams/activities) posted to the real bot endpoint.

Each file names the Microsoft Learn page it comes from; ``documented.activity`` puts a test person's
ids into it and leaves every other field as Microsoft shows it.
"""

from __future__ import annotations

import pytest
from teams_proactive.bot.model import Surface

from tests.conftest import API_KEY
from tests.fixtures import teams as documented
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

NAMES = documented.activity_names()


@pytest.mark.parametrize("name", NAMES)
def test_every_documented_activity_names_its_microsoft_page(name: str) -> None:
    sources = documented.raw(name)["sources"]
    assert sources and all(s["url"].startswith("https://learn.microsoft.com/") and s["title"] for s in sources)


@pytest.mark.parametrize("name", NAMES)
def test_every_documented_activity_is_answered_without_error(
    live: LiveApp, connector: FakeConnector, make_user, name: str
) -> None:
    user = make_user()
    response = live.activity(documented.activity(name, user, connector.service_url()))
    assert response.status_code == 200, response.text
    recipient = live.api("GET", f"/api/v1/recipients/{user.aad_object_id}", API_KEY)
    assert recipient.status_code in (200, 404), recipient.text  # a team event need not make a Teams chat


def _status(live: LiveApp, user) -> str:  # type: ignore[no-untyped-def]
    return str(live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["status"])


def test_personal_install_lifecycle_follows_the_documented_actions(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    url = connector.service_url()
    assert live.activity(documented.activity("installation-add-personal", user, url)).status_code == 200
    assert _status(live, user) == "active"
    assert live.activity(documented.activity("installation-remove-upgrade-personal", user, url)).status_code == 200
    assert _status(live, user) in ("uninstalled", "notFound")
    assert live.activity(documented.activity("installation-add-upgrade-personal", user, url)).status_code == 200
    assert _status(live, user) == "active"
    assert live.activity(documented.activity("installation-remove-personal", user, url)).status_code == 200
    answer = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY)
    # Uninstalled, or erased altogether when the operator asked for deletion on uninstall.
    assert answer.status_code == 404 or answer.json()["status"] == "uninstalled"


def test_documented_messages_record_the_teams_and_copilot_surfaces(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    url = connector.service_url()
    assert live.activity(documented.activity("message-personal", user, url)).status_code == 200
    assert live.activity(documented.activity("message-copilot-in-teams", user, url)).status_code == 200
    refs = live.runtime.call(live.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower()))
    surfaces = {r.surface: r.conversation_id for r in refs}
    assert surfaces[Surface.TEAMS] == user.conversation_id
    assert surfaces[Surface.TEAMS_COPILOT] == user.copilot_conversation_id
    # The documented message's clientInfo time zone is captured.
    assert live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()["status"] == "active"


@pytest.mark.parametrize("gone", ["conversation-update-teamdeleted", "conversation-update-teamarchived"])
@pytest.mark.parametrize(
    "back",
    [
        "conversation-update-teamrestored",
        "conversation-update-teamrestored-table-spelling",
        "conversation-update-teamunarchived",
    ],
)
def test_team_events_take_the_team_record_away_and_back(
    live: LiveApp, connector: FakeConnector, make_user, gone: str, back: str
) -> None:
    user = make_user()
    url = connector.service_url()

    def team_status() -> str:
        refs = live.runtime.call(live.runtime.store.references.of_person(user.tenant_id, user.aad_object_id.lower()))
        return next(r.status for r in refs if r.conversation_id.endswith("@thread.skype"))

    assert live.activity(documented.activity("conversation-update-teamrenamed", user, url)).status_code == 200
    assert team_status() == "active"
    assert live.activity(documented.activity(gone, user, url)).status_code == 200
    assert team_status() == "uninstalled"
    assert live.activity(documented.activity(back, user, url)).status_code == 200
    assert team_status() == "active"
