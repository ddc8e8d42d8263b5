"""import-references and ImportReferences: 10,000 references from a folder and from an Azurite blob container.

The real command line runs in its own process against a SQLite store; the real service then sends
to an imported person. Counts are right, a second import changes nothing, a malformed file is
reported by name and the rest is imported. The API takes one, a list or ``{"references": [...]}``,
answers per item, and a key limited to a tenant imports only that tenant's references.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.existing_bot import references as refs
from tests.security.conftest import create_key
from tests.support.azurite import Azurite, AzuriteUnavailableError
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.server_process import SCRIPT, ServerProcess

PEOPLE = 10_000


def cli(store: str, *args: str, cwd: Path) -> tuple[dict[str, Any], str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "teams_proactive.connector.cli"]
    done = subprocess.run(
        [*command, "import-references", *args], env={"STORE_URL": store, "PATH": "/usr/bin:/bin"},
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def _assert_first_and_second(store: str, source: list[str], tmp_path: Path, malformed: str) -> None:
    first, progress = cli(store, *source, cwd=tmp_path)
    assert (first["imported"], first["updated"], first["skipped"], first["total"]) == (PEOPLE, 0, 1, PEOPLE + 1)
    (bad,) = first["skippedItems"]
    assert bad["source"] == malformed and bad["reason"] == "Invalid"
    assert "references/s" in progress  # progress on stderr, the report on stdout
    second, _ = cli(store, *source, cwd=tmp_path)
    assert (second["imported"], second["updated"], second["skipped"]) == (0, 0, PEOPLE + 1)
    assert {i["reason"] for i in second["skippedItems"]} == {"Unchanged", "Invalid"}
    print(f"\n{PEOPLE:,} references: {PEOPLE / first['seconds']:,.0f} references/s ({source[0]})")


def _send_to_an_imported_person(store: str, fake: FakeConnector, tmp_path: Path) -> None:
    env = {"STORE_URL": store, "CONNECTOR_API_KEY": API_KEY, "SERVER_CWD": str(tmp_path)}
    with ServerProcess(env, log_path=tmp_path / "service.log") as service:
        sent = service.api("POST", "/api/v1/messages", API_KEY,
                           json={"recipient": refs.aad(4321), "text": "Imported and reachable", "wait": 20})  # fmt: skip
        assert sent.status_code == 200, (sent.text, service.log_tail())
        assert sent.json()["status"] == "delivered" and sent.json()["conversationId"] == refs.chat(4321)
        # A person with a Microsoft 365 Copilot reference too is still reached in the Teams chat.
        sent = service.api(
            "POST", "/api/v1/messages", API_KEY, json={"recipient": refs.aad(40), "text": "Teams chat", "wait": 20}
        )
        assert sent.json()["conversationId"] == refs.chat(40), sent.text
        person = service.api("GET", f"/api/v1/recipients/{refs.aad(40)}", API_KEY).json()
        assert person["status"] == "active", person
    assert [r.activity["text"] for r in fake.sent(refs.chat(4321))] == ["Imported and reachable"]


@pytest.mark.slow
def test_import_10000_references_from_a_folder(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with FakeConnector() as fake:
        folder = tmp_path / "refs"
        refs.write_folder(folder, PEOPLE, fake.service_url())
        _assert_first_and_second(store, [str(folder)], tmp_path, refs.MALFORMED[0])
        _send_to_an_imported_person(store, fake, tmp_path)


@pytest.mark.slow
def test_import_10000_references_from_an_azurite_blob_container(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    try:
        azurite = Azurite(log_path=tmp_path / "azurite.log").start()
    except AzuriteUnavailableError as exc:
        pytest.skip(str(exc))
    try:
        with FakeConnector() as fake:
            container = azurite.service_client().create_container("conversation-references")
            refs.upload_container(container, PEOPLE, fake.service_url())
            url = azurite.container_url("conversation-references")
            _assert_first_and_second(store, ["--blob-container-url", url], tmp_path, refs.MALFORMED[0])
            _send_to_an_imported_person(store, fake, tmp_path)
    finally:
        azurite.stop()


def test_import_api_answers_per_item(live: LiveApp, connector: FakeConnector) -> None:
    url = connector.service_url()
    one = refs.reference(1, url)
    answer = live.api("POST", "/api/v1/references", API_KEY, json=one)  # one reference
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"imported": 1, "updated": 0, "skipped": 0, "total": 1,
                             "items": [{"source": "[0]", "result": "imported", "surface": "teams"}]}  # fmt: skip

    newer = refs.reference(1, "https://smba.trafficmanager.net/emea/")
    newer["lastSeen"] = "2999-01-01T00:00:00Z"  # a writer's own time: newer than what is kept
    older = refs.reference(2, url)
    older["lastSeen"] = "2001-01-01T00:00:00Z"
    no_url = {k: v for k, v in refs.reference(3, url).items() if k not in ("serviceUrl", "service_url")}
    group = refs.reference(4, url)
    group["conversation"] = {"id": "19:group@thread.v2", "conversationType": "groupChat", "tenantId": refs.TENANT}
    body = [newer, refs.reference(1, url, m365=True), no_url, group, "not an object", older]
    answer = live.api("POST", "/api/v1/references", API_KEY, json={"references": body})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [(i["result"], i.get("reason"), i.get("surface")) for i in report["items"]] == [
        ("updated", None, "teams"),
        ("imported", None, "m365-copilot"),
        ("skipped", "MissingServiceUrl", None),
        ("skipped", "NotPersonal", None),
        ("skipped", "Invalid", None),
        ("imported", None, "teams"),
    ]
    # Older than what is kept (the updated record above): the store's record stays.
    stale = refs.reference(1, "https://smba.trafficmanager.net/amer/")
    stale["lastSeen"] = "2001-01-01T00:00:00Z"
    (item,) = live.api("POST", "/api/v1/references", API_KEY, json=stale).json()["items"]
    assert (item["result"], item["reason"]) == ("skipped", "Older")
    # The same again: nothing changes.
    again = live.api("POST", "/api/v1/references", API_KEY, json=body).json()
    assert (again["imported"], again["updated"]) == (0, 0)
    # Only the Teams chat is a send target; the person's other record stayed.
    person = live.api("GET", f"/api/v1/recipients/{refs.aad(1)}", API_KEY)
    assert person.status_code == 200, person.text

    limited = create_key(live, "importer", tenant_id="another-tenant", scopes=["admin"])
    answer = live.api("POST", "/api/v1/references", limited, json=[refs.reference(9, url)])
    assert [i["reason"] for i in answer.json()["items"]] == ["OtherTenant"]
    sender = create_key(live, "sender", scopes=["send"])
    assert live.api("POST", "/api/v1/references", sender, json=[one]).status_code == 403
    refused = live.api("POST", "/api/v1/references", API_KEY, json={"references": []})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ValidationError"
