"""The wheel installs one top-level package, ``teams_proactive``: a bot project that has its own ``bot/``
or ``connector.py`` can install us without either shadowing the other."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLD_IMPORT = re.compile(r"^\s*(from|import) (bot|connector)(\.|\s|$)")
SOURCE_FOLDERS = {"bot": "teams_proactive/bot", "connector": "teams_proactive/connector"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel as `pip wheel` builds it, from a copy of the tree (no build/ left in the work tree)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("teams_proactive", *SOURCE_FOLDERS):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = work.glob("teams_proactive-*.whl")
    return found


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
