"""GET /openapi.json over real HTTP: the same bytes as the committed file when the host is the same."""

from __future__ import annotations

from teams_proactive.connector.openapi import PLACEHOLDER_HOST

from tests.connector.support import OPENAPI_DIR
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def test_served_definition_equals_committed_file(app_env: dict[str, str], connector: FakeConnector) -> None:
    # The committed file carries the placeholder host; a deployment whose public URL has that host
    # serves exactly the committed bytes.
    env = dict(app_env, PUBLIC_BASE_URL=f"https://{PLACEHOLDER_HOST}")
    with LiveApp(env) as live:
        response = live.api("GET", "/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == (OPENAPI_DIR / "apiDefinition.swagger.json").read_bytes()


def test_served_definition_names_the_deployment_host(live: LiveApp) -> None:
    served = live.api("GET", "/openapi.json").json()
    assert served["host"] == f"127.0.0.1:{live.port}"
    assert served["schemes"] == ["https"]  # Power Platform calls connectors over HTTPS
    assert served["x-ms-connector-metadata"][0]["propertyValue"] == f"https://127.0.0.1:{live.port}/"


def test_the_privacy_policy_the_definition_links_to_is_served(live: LiveApp) -> None:
    served = live.api("GET", "/openapi.json").json()
    metadata = {m["propertyName"]: m["propertyValue"] for m in served["x-ms-connector-metadata"]}
    path = metadata["Privacy policy"].removeprefix(f"https://127.0.0.1:{live.port}")
    assert path == "/privacy"
    response = live.api("GET", path)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "<h1>Privacy statement</h1>" in response.text and "physically deleted" in response.text
    assert served["info"]["contact"]["url"] == metadata["Website"]
