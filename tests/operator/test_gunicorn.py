"""The production entry point: gunicorn with two workers (deploy/gunicorn.conf.py, teams_proactive.connector.wsgi:app)
serves the bot and the API, each worker with its own bot loop, and /metrics adds up the workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, free_port

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("gunicorn")


class Gunicorn:
    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "PUBLIC_BASE_URL", "SECRET_KEY"))}
        env |= {
            "PORT": str(self.port),
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "CONNECTOR_API_KEY": API_KEY,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "LOG_FORMAT": "json",
            "SEND_RATE_PER_TENANT": "200",
            # No bot identity here: local mode under gunicorn must be asked for.
            "LOCAL_MODE": "true",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        # The config binds 0.0.0.0 (App Service); the tests listen on loopback only.
        bind = ["-b", f"127.0.0.1:{self.port}"]
        command = [str(gunicorn), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), *bind, *extra, "teams_proactive.connector.wsgi:app"]
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, deadline_seconds: float = 120) -> None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if requests.get(self.url + "/readyz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            time.sleep(0.1)  # polling for start-up with a deadline
        raise AssertionError("gunicorn did not become ready:\n" + self.log.read_text())

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()
        return self.log.read_text()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_gunicorn_serves_bot_and_api_and_metrics_add_up_the_workers(
    gunicorn: Gunicorn, connector: FakeConnector, make_user
) -> None:
    http = requests.Session()
    user = make_user()
    assert http.post(gunicorn.url + "/api/messages", json=act.install(user, connector.service_url("a"))).ok
    delivered = 0
    for i in range(6):  # several requests, so both workers very likely answer some
        response = http.post(
            gunicorn.url + "/api/v1/messages",
            json={"recipient": user.upn, "text": f"from gunicorn {i}", "wait": 30},
            headers={"X-API-Key": API_KEY, "X-Request-Id": f"gunicorn-{i}"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["X-Request-Id"] == f"gunicorn-{i}"
        delivered += response.json()["status"] == "delivered"
    assert delivered == 6
    assert [r.activity["text"] for r in connector.sent(user.conversation_id)][-6:] == [
        f"from gunicorn {i}" for i in range(6)
    ]

    # Whichever worker answers, the counters are the sum over both (multiprocess mode).
    for _ in range(4):
        text = http.get(gunicorn.url + "/metrics").text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("teams_proactive_deliveries_total", (("status", "delivered"),))] == 6
        assert samples[("teams_proactive_send_latency_seconds_count", ())] == 6

    log = gunicorn.stop()
    access = [json.loads(line) for line in log.splitlines() if '"teams_proactive.access"' in line]
    assert {line["requestId"] for line in access if line["path"] == "/api/v1/messages"} == {
        f"gunicorn-{i}" for i in range(6)
    }
    assert "from gunicorn" not in log  # message bodies are never logged
    workers = {line for line in log.splitlines() if "Booting worker with pid" in line}
    assert len(workers) == 2


def test_preload_by_mistake_still_gives_each_worker_its_loop(tmp_path: Path) -> None:
    server = Gunicorn(tmp_path, "--preload")
    try:
        server.wait_ready()
        assert requests.get(server.url + "/readyz", timeout=10).json()["status"] == "ready"
    finally:
        log = server.stop()
    assert "built before a fork" in log
