"""The wheel installs one top-level package, ``teams_proactive``: a bot project that has its own ``bot/``
or ``connector.py`` can install us without either shadowing the other."""

from __future__ import annotations

import re
import subprocess
import venv
import zipfile
from pathlib import Path

from tests.packaging.conftest import ROOT

OLD_IMPORT = re.compile(r"^\s*(from|import) (bot|connector)(\.|\s|$)")
SOURCE_FOLDERS = {"bot": "teams_proactive/bot", "connector": "teams_proactive/connector"}


def test_the_wheel_holds_every_module_under_the_one_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" not in n]
    assert {n.split("/", 1)[0] for n in names} == {"teams_proactive"}
    expected = {"teams_proactive/__init__.py"}
    for folder, installed_as in SOURCE_FOLDERS.items():
        for module in (ROOT / folder).rglob("*.py"):
            expected.add(f"{installed_as}/{module.relative_to(ROOT / folder).as_posix()}")
    assert expected <= set(names), sorted(expected - set(names))


def test_a_clean_venv_gets_teams_proactive_and_no_bot_or_connector(wheel: Path, tmp_path: Path) -> None:
    venv.create(tmp_path / "env", with_pip=True)
    python = tmp_path / "env" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    top_level = {p.name for p in Path(site).iterdir() if not p.name.endswith((".dist-info", ".pth"))}
    ours = top_level - {"pip", "setuptools", "_distutils_hack", "pkg_resources", "__pycache__"}
    assert ours == {"teams_proactive"}
    assert not {"bot", "connector", "bot.py", "connector.py"} & top_level
    # The console script names the packaged module.
    script = (tmp_path / "env" / "bin" / "teams-proactive").read_text()
    assert "from teams_proactive.connector.cli import main" in script


def test_no_source_file_imports_the_old_top_level_names() -> None:
    offenders = []
    for folder in ("teams_proactive", "bot", "connector", "tests", "bench"):
        for module in (ROOT / folder).rglob("*.py"):
            if "node_modules" in module.parts:
                continue
            for number, line in enumerate(module.read_text().splitlines(), 1):
                if OLD_IMPORT.match(line):
                    offenders.append(f"{module.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
