"""Azurite, Microsoft's Azure Storage emulator (npm ``azurite``), serving blobs on 127.0.0.1 for a ``with`` block.

Usage::

    with Azurite() as azurite:
        url = azurite.container_url("refs")              # a container URL with a read/list SAS
        service = azurite.service_client()              # azure-storage-blob, signed with the account key

The account is Azurite's well-known development account (``devstoreaccount1`` and its published key);
data lives in memory (``--inMemoryPersistence``) and goes with the process.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any, Final

from tests.support.fake_connector import free_port

ACCOUNT: Final = "devstoreaccount1"
# Azurite's documented development key (learn.microsoft.com, "Use the Azurite emulator"): public by design.
ACCOUNT_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_BIN: Final = Path(__file__).resolve().parent.parent / "node" / "node_modules" / ".bin" / "azurite-blob"
_LOOPBACK: Final = Path(__file__).resolve().parent / "node_loopback.cjs"


class AzuriteUnavailableError(RuntimeError):
    """``node`` or the npm package is missing (tests skip)."""


class Azurite:
    def __init__(self, *, log_path: Path | None = None, startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{ACCOUNT}"
        self._log_path = log_path
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Azurite:
        if shutil.which("node") is None or not _BIN.exists():
            raise AzuriteUnavailableError(
                "node or tests/node/node_modules/azurite is missing (npm install --prefix tests/node)"
            )
        out: Any = subprocess.DEVNULL
        if self._log_path is not None:
            self._log = open(self._log_path, "ab")
            out = self._log
        self._process = subprocess.Popen(
            [str(_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            env={**_node_env(), "NODE_OPTIONS": f"--require {_LOOPBACK}"},
        )  # fmt: skip
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"azurite exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)  # polling the child's port, not synchronising test steps
        self.stop()
        raise TimeoutError("azurite did not listen in time")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def service_client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.endpoint, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY})

    def container_url(self, container: str) -> str:
        """The container's URL with a read+list SAS, as an operator would hand it to import-references."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT, container, account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
        )  # fmt: skip
        return f"{self.endpoint}/{container}?{sas}"


def _node_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("NODE_OPTIONS",)}
