"""The real ``teams-proactive serve`` as a child process: start with an env, wait for /healthz, kill, restart.

Crash tests and benchmarks use it; the child is a separate process so a SIGKILL hits exactly what
production would lose, and its CPU time can be read from /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests

from tests.support.fake_connector import free_port

ROOT = Path(__file__).resolve().parents[2]
# The console script of the venv the tests run in (fall back to the module when it is missing).
SCRIPT = Path(sys.executable).with_name("teams-proactive")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ServerProcess:
    """``with ServerProcess(env) as server:``; ``server.url``, ``server.kill()``, ``server.start()``."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        log_path: Path | None = None,
        threads: int = 32,
        inherit_env: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "")}
        # No stray .env or proxy setting of the developer's shell leaks into the child.
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            base.pop(name, None)
        base["NO_PROXY"] = base["no_proxy"] = "127.0.0.1,localhost"
        base.update(env)
        self.env = base
        self.log_path = log_path
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.http = requests.Session()
        self.http.trust_env = False

    # ---- lifecycle --------------------------------------------------------------------------
    def command(self) -> list[str]:
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(self.threads)]
        if SCRIPT.exists():
            return [str(SCRIPT), *args]
        return [sys.executable, "-m", "teams_proactive.connector.cli", *args]

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the server and wait until /healthz answers (raises with the log tail if it dies)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the server is already running")
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # kept open for the child's lifetime
            out: Any = self._log
        else:
            out = subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(), env=self.env, cwd=self.env.get("SERVER_CWD", str(ROOT)), stdout=out, stderr=out
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if self.http.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)  # polling the child's port, not synchronising test steps
        self.kill()
        raise TimeoutError(f"server did not answer /healthz within {timeout} s: {self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Send ``sig`` and wait for the process to end; returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        code = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def stop(self) -> int | None:
        return self.kill(signal.SIGTERM)

    def restart(self, sig: int = signal.SIGKILL) -> ServerProcess:
        self.kill(sig)
        return self.start()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.http.close()

    # ---- use --------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def api(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["X-API-Key"] = key
        return self.http.request(method, self.url + path, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)

    def activity(self, activity: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.http.post(self.url + "/api/messages", json=activity, timeout=60, **kwargs)

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Fields after the command name: utime and stime are the 12th and 13th.
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
