"""What an imported reference may carry: a file is not a signed activity, so its service URL, its
times and its text are checked before anything is stored."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from teams_proactive.bot.imports.importer import ImportItem, ReferenceImporter
from teams_proactive.bot.imports.shapes import Skip, parse_reference
from teams_proactive.bot.store.memory import MemoryStore

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def reference(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "serviceUrl": "https://smba.trafficmanager.net/amer/",
        "channelId": "msteams",
        "conversation": {"id": "a:1Xy", "conversationType": "personal", "tenantId": TENANT},
        "user": {"id": "29:1Ab", "aadObjectId": "6a1b2c3d-0000-4000-8000-00000000000a"},
        "bot": {"id": "28:bot", "name": "Notifications"},
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/",  # anyone's server: the bot's token would be posted there
        "http://smba.trafficmanager.net/amer/",  # the right host in the clear
        "https://smba.trafficmanager.net.evil.example/",
        "ftp://smba.trafficmanager.net/",
    ],
)
def test_with_the_bots_identity_only_bot_connector_hosts_are_imported(url: str) -> None:
    with pytest.raises(Skip) as skipped:
        parse_reference(reference(serviceUrl=url), local_mode=False)
    assert skipped.value.reason in {"UntrustedServiceUrl"}


@pytest.mark.parametrize(
    "url",
    [
        "https://smba.trafficmanager.net/amer/",
        "https://smba.trafficmanager.net/emea/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "https://smba.infra.gcc.teams.microsoft.com/teams",
        "https://smba.infra.gov.teams.microsoft.us/teams",
        "https://smba.infra.dod.teams.microsoft.us/teams",
    ],
)
def test_microsofts_bot_connector_hosts_are_imported_in_every_cloud(url: str) -> None:
    assert parse_reference(reference(serviceUrl=url), local_mode=False).service_url == url


def test_in_local_mode_any_http_url_is_imported_because_no_token_is_sent() -> None:
    assert parse_reference(reference(serviceUrl="http://127.0.0.1:5000/_connector"), local_mode=True)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, "2999-01-01T00:00:00Z", 4_102_444_800_000])
def test_a_time_that_is_not_a_time_a_writer_saw_the_person_is_ignored(value: object) -> None:
    assert parse_reference(reference(lastSeen=value)).seen_at is None


def test_a_recent_time_is_kept() -> None:
    assert parse_reference(reference(lastSeen=1_700_000_000)).seen_at == 1_700_000_000


@pytest.mark.parametrize("bad", ["a:1\x00", "a:\ud800"])
def test_text_the_store_could_not_read_back_is_refused(bad: str) -> None:
    with pytest.raises(Skip) as skipped:
        parse_reference(reference(conversation={"id": bad, "conversationType": "personal", "tenantId": TENANT}))
    assert skipped.value.reason == "Invalid" and "conversation.id" in skipped.value.message


def test_nan_from_a_json_file_leaves_a_readable_record() -> None:
    # Python's json (the CLI's files, Flask's bodies) reads NaN; the stored record must still be readable.
    document = json.loads('{"lastSeen": NaN, ' + json.dumps(reference())[1:])

    async def scenario() -> None:
        store = MemoryStore()
        report = await ReferenceImporter(store, local_mode=True).run([ImportItem("f.json", document)])
        assert report.counts["imported"] == 1
        (stored,) = await store.references.of_person(TENANT, "6a1b2c3d-0000-4000-8000-00000000000a")
        assert isinstance(stored.last_seen, float) and stored.last_seen <= time.time()

    asyncio.run(scenario())
