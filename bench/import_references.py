"""References imported per second from a folder of .json files and from an Azurite blob container.

    python -m bench.import_references [--references 10000] [--skip-blob]

Writes the references as files (one per person, every tenth person with a Microsoft 365 Copilot one
too; the three writers' shapes of tests/existing_bot/references.py), uploads the same to Azurite
(npm, tests/node), and runs the real ``teams-proactive import-references`` against a fresh SQLite
store for each source, then once more (a second import writes nothing). Prints references/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.existing_bot import references as refs
from tests.support.azurite import Azurite, AzuriteUnavailableError
from tests.support.server_process import SCRIPT

SERVICE_URL = "https://smba.trafficmanager.net/emea/"


def _import(store: str, args: list[str]) -> tuple[dict[str, Any], float]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "teams_proactive.connector.cli"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "import-references", *args], env={"STORE_URL": store, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout), time.monotonic() - started


def _report(label: str, count: int, store: str, args: list[str]) -> None:
    first, seconds = _import(store, args)
    again, seconds_again = _import(store, args)
    print(
        f"{label:<22} {count:>7,} references: {count / seconds:>7,.0f} references/s"
        f" (imported {first['imported']:,}, skipped {first['skipped']:,});"
        f" again: {count / seconds_again:,.0f} references/s, imported {again['imported']}, updated {again['updated']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, default=10_000)
    parser.add_argument("--skip-blob", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "refs"
        refs.write_folder(folder, args.references, SERVICE_URL)
        _report("folder of .json files", args.references, f"sqlite:///{root / 'folder.db'}", [str(folder)])
        if args.skip_blob:
            return
        try:
            azurite = Azurite().start()
        except AzuriteUnavailableError as exc:
            print(f"blob container: skipped ({exc})")
            return
        try:
            container = azurite.service_client().create_container("references")
            refs.upload_container(container, args.references, SERVICE_URL)
            url = azurite.container_url("references")
            _report("Azurite blob container", args.references, f"sqlite:///{root / 'blob.db'}",
                    ["--blob-container-url", url])  # fmt: skip
        finally:
            azurite.stop()


if __name__ == "__main__":
    main()
