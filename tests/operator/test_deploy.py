"""The deployment artefacts: the zip App Service runs (built, installed into a clean Python, served by
gunicorn exactly as the startup command does), and the Bicep template kept in step with the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest
import requests
from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store.cosmos import CONTAINERS

from tests.support.fake_connector import free_port

ROOT = Path(__file__).resolve().parents[2]
BICEP = (ROOT / "deploy" / "main.bicep").read_text()


@pytest.mark.slow
def test_the_app_service_zip_installs_and_serves_on_a_clean_python(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "PUBLIC_BASE_URL", "STORE_URL"))}
    built = subprocess.run(
        ["bash", str(ROOT / "deploy" / "package.sh")],
        env=env | {"OUT": str(tmp_path / "out"), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    package = tmp_path / "out" / "app.zip"
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        assert "requirements.txt" in names and "gunicorn.conf.py" in names
        assert "pyproject.toml" not in names  # App Service would try Poetry on a pyproject.toml
        archive.extractall(tmp_path / "site")
    assert not (ROOT / "build").exists()  # the build ran on a copy, not in the work tree

    # What App Service's build does: a fresh virtual environment, pip install -r in the app folder.
    site = tmp_path / "site"
    venv.create(tmp_path / "antenv", with_pip=True)
    python = tmp_path / "antenv" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # What the startup command does.
    port = free_port()
    run_env = env | {
        "PORT": str(port),
        "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "CONNECTOR_API_KEY": "deploy-test-key-0123456789",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_WORKERS": "2",
        "LOCAL_MODE": "true",  # no bot identity in this test: local mode under gunicorn on purpose
    }
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        # The config binds 0.0.0.0 (App Service); the test stays on loopback.
        [str(tmp_path / "antenv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "teams_proactive.connector.wsgi:app"],
        cwd=site,
        env=run_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if requests.get(url + "/readyz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)  # polling for start-up with a deadline
        # The installed wheel carries the dashboard's templates and the connector definition.
        assert 'name="api_key"' in requests.get(url + "/dashboard/login", timeout=30).text
        assert requests.get(url + "/openapi.json", timeout=30).json()["swagger"] == "2.0"
        assert "teams_proactive_queue_depth" in requests.get(url + "/metrics", timeout=30).text
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()

    cli = subprocess.run(
        [str(tmp_path / "antenv" / "bin" / "teams-proactive"), "app-package", "--out", str(tmp_path / "app.zip")],
        env=env | {"MicrosoftAppId": "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b", "PUBLIC_BASE_URL": "https://x.example"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr


def test_the_bicep_containers_match_the_cosmos_store() -> None:
    """A managed identity cannot create containers, so the template makes them: same names, same keys,
    same excluded index paths as bot/store/cosmos.py."""
    block = BICEP[BICEP.index("var containers = [") : BICEP.index("]\n\nresource identity")]
    found = {}
    for line in block.splitlines():
        match = re.search(r"name: '(\w+)', partitionKey: '([^']+)', pointReadsOnly: (\w+), excluded: \[(.*)\] }", line)
        if match:
            name, key, point_only, excluded = match.groups()
            paths = re.findall(r"'([^']+)'", excluded)
            found[name] = (key, ["/*"] if point_only == "true" else paths)
    assert found == {name: (key, excluded) for name, (key, excluded) in CONTAINERS.items()}


def test_the_bicep_app_settings_are_settings_the_app_reads() -> None:
    settings_block = BICEP[BICEP.index("properties: union(") : BICEP.index("dependsOn: [cosmosContainers")]
    names = set(re.findall(r"^\s+(\w+): ", settings_block, re.M)) | set(re.findall(r"\{ (\w+): ", settings_block))
    read_by_app = set(re.findall(r'env\.get\("(\w+)"', (ROOT / "bot" / "settings.py").read_text()))
    read_by_app |= set(re.findall(r'env\.get\("(\w+)"', (ROOT / "connector" / "settings.py").read_text()))
    read_by_app |= {"SECRET_KEY", "METRICS_TOKEN", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR"}
    platform = {"SCM_DO_BUILD_DURING_DEPLOYMENT", "AZURE_CLIENT_ID"}  # App Service's build; azure-identity
    assert names - platform <= read_by_app, names - platform - read_by_app
    assert {"MicrosoftAppId", "MicrosoftAppType", "STORE_URL", "COSMOS_ENDPOINT", "PUBLIC_BASE_URL"} <= names
    # The managed-identity bot settings are ones the app accepts.
    assert BotSettings.from_env(
        {"MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppId": "x", "MicrosoftAppTenantId": "t"}
    ).app_type == "UserAssignedMSI"
    assert "appCommandLine: 'gunicorn -c gunicorn.conf.py teams_proactive.connector.wsgi:app'" in BICEP
    assert "endpoint: '${baseUrl}/api/messages'" in BICEP and "alwaysOn: true" in BICEP
