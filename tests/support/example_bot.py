"""An example bot of examples/ (an existing bot plus ReferenceCapture) as a child process on its own port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests

from tests.support.fake_connector import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {"botbuilder": ROOT / "examples" / "botbuilder-bot", "agents": ROOT / "examples" / "agents-sdk-agent"}


class ExampleBot:
    """``with ExampleBot("agents", env, log_path) as bot:``; ``bot.activity(json)`` posts to its /api/messages."""

    def __init__(self, sdk: str, env: Mapping[str, str], *, log_path: Path, cwd: Path) -> None:
        self.sdk = sdk
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
        base.update({"PORT": str(self.port), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        base.update(env)
        self.env = base
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self, timeout: float = 60.0) -> ExampleBot:
        self._log = open(self.log_path, "ab")
        script = EXAMPLES[self.sdk] / "app.py"
        self.process = subprocess.Popen(
            [sys.executable, "-W", "ignore::DeprecationWarning", str(script)],
            env=self.env, cwd=self.cwd, stdout=self._log, stderr=self._log,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.sdk} example exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)  # polling the child's port, not synchronising test steps
        self.stop()
        raise TimeoutError(f"{self.sdk} example did not listen within {timeout} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ExampleBot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.http.close()

    def activity(self, activity: dict[str, Any]) -> requests.Response:
        return self.http.post(self.url + "/api/messages", json=activity, timeout=60)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
