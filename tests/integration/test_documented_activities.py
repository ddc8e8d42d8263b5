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

# What each documented activity must leave behind for its sender: the recipient's status, the one surface
# recorded for them (and that surface's status), and how many welcome messages went out. A team event
# records the team's channel, not a chat with the person, so they stay unreachable ("notFound").
EXPECTED: dict[str, tuple[str, str, str, int]] = {
    "conversation-update-bot-added-personal": ("active", "teams", "active", 0),
    "conversation-update-member-removed-team": ("notFound", "channel", "active", 0),
    "conversation-update-teamarchived": ("notFound", "channel", "uninstalled", 0),
    "conversation-update-teamdeleted": ("notFound", "channel", "uninstalled", 0),
    "conversation-update-teamrenamed": ("notFound", "channel", "active", 0),
    "conversation-update-teamrestored": ("notFound", "channel", "active", 0),
    "conversation-update-teamrestored-table-spelling": ("notFound", "channel", "active", 0),
    "conversation-update-teamunarchived": ("notFound", "channel", "active", 0),
    "installation-add-personal": ("active", "teams", "active", 1),
    "installation-add-team": ("notFound", "channel", "active", 0),
    "installation-add-upgrade-personal": ("active", "teams", "active", 1),
    "installation-remove-personal": ("uninstalled", "teams", "uninstalled", 0),
    "installation-remove-upgrade-personal": ("uninstalled", "teams", "uninstalled", 0),
    "invoke-adaptive-card-action": ("active", "teams", "active", 0),
    "message-card-submit": ("active", "teams", "active", 0),
    "message-copilot-in-teams": ("active", "teams-copilot", "active", 1),  # the help text answers it
    "message-personal": ("active", "teams", "active", 1),
    "read-receipt": ("active", "teams", "active", 0),
}


def test_every_documented_activity_has_an_expectation() -> None:
    assert sorted(EXPECTED) == NAMES


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
    status, surface, surface_status, welcomes = EXPECTED[name]
    recipient = live.api("GET", f"/api/v1/recipients/{user.aad_object_id}", API_KEY)
    assert recipient.status_code == 200, recipient.text
    body = recipient.json()
    assert (body["status"], body["reachable"]) == (status, status == "active")
    assert [(s["surface"], s["status"]) for s in body["surfaces"]] == [(surface, surface_status)]
    assert len(connector.sent()) == welcomes


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
    assert _status(live, user) == "uninstalled"
    assert live.activity(documented.activity("installation-add-upgrade-personal", user, url)).status_code == 200
    assert _status(live, user) == "active"
    assert live.activity(documented.activity("installation-remove-personal", user, url)).status_code == 200
    answer = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY)
    # Kept as uninstalled (DELETE_ON_UNINSTALL is off here).
    assert answer.status_code == 200 and answer.json()["status"] == "uninstalled"


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
    # The documented message's clientInfo time zone is captured (Microsoft's example: America/Los_Angeles).
    (client_info,) = [
        e for e in documented.raw("message-personal")["activity"]["entities"] if e["type"] == "clientInfo"
    ]
    recipient = live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
    assert recipient["status"] == "active"
    assert recipient["timezone"] == client_info["timezone"] == "America/Los_Angeles"


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
