"""A pip-installed service exports the same two solutions as the source tree: the wheel installed into a
clean venv (its dependencies seen through the project's environment, never our source tree) runs
``teams-proactive export-solution`` and both zips hold what Power Platform needs."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.connector.support import operations
from tests.connector.test_samples import steps
from tests.connector.test_solution import ORGANISATION_LITERALS, _strings, unpack, workflows, xml

CONNECTOR_ZIP = "ProactiveMessagesConnector_"
SAMPLES_ZIP = "ProactiveMessagesSamples_"


def _installed(wheel: Path, tmp_path: Path) -> Path:
    """A venv holding the wheel; a .pth adds the project's site-packages (the dependencies) after its own,
    without running the project's .pth files, so the editable install of the work tree stays out."""
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
         str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env


def test_the_installed_wheel_exports_both_solutions(wheel: Path, tmp_path: Path) -> None:
    env = _installed(wheel, tmp_path)
    elsewhere = tmp_path / "cwd"  # not the repository: nothing importable from the work tree
    elsewhere.mkdir()
    where = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import teams_proactive.samples as s, teams_proactive as t;"
         " print(t.__file__); print(s.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, check=True,
    ).stdout.split()  # fmt: skip
    assert all(path.startswith(str(env)) for path in where), where
    out = tmp_path / "solutions"
    exported = subprocess.run(
        [str(env / "bin" / "teams-proactive"), "export-solution", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    (connector_zip,) = out.glob(f"{CONNECTOR_ZIP}*.zip")
    (samples_zip,) = out.glob(f"{SAMPLES_ZIP}*.zip")
    assert len(list(out.iterdir())) == 2

    connector = unpack(connector_zip.read_bytes())
    assert not [name for name in connector if name.startswith("Workflows/")]
    (element,) = xml(connector["customizations.xml"]).findall("Connectors/Connector")
    definition = json.loads(connector[element.findtext("openapidefinition", "").lstrip("/")])
    known = {op["operationId"] for _, _, op in operations(definition)}

    samples = unpack(samples_zip.read_bytes())
    customizations = xml(samples["customizations.xml"])
    flows = workflows(samples, customizations)
    assert len(flows) >= 10
    assert customizations.findall("connectionreferences/connectionreference")
    variables = [name for name in samples if name.endswith("/environmentvariabledefinition.xml")]
    assert len(variables) >= 5
    manifest = xml(samples["solution.xml"]).find("SolutionManifest")
    assert manifest is not None
    required = {r.get("schemaName") for r in manifest.findall("MissingDependencies/MissingDependency/Required")}
    assert required == {element.findtext("name")}
    called = 0
    for name, flow in flows.items():
        body = flow["properties"]["definition"]
        for value in _strings({"triggers": body["triggers"], "actions": body["actions"]}):
            assert not any(p.search(value) for p in ORGANISATION_LITERALS), f"{name}: {value!r}"
        for call in [*body["triggers"].values(), *(a for _, a, _ in steps(body["actions"]))]:
            host = call.get("inputs", {}).get("host") if isinstance(call.get("inputs"), dict) else None
            api = (flow["properties"]["connectionReferences"].get(host.get("connectionName", "")) or {}) if host else {}
            if api.get("api", {}).get("logicalName") == element.findtext("name"):
                assert host["operationId"] in known, f"{name}: {host['operationId']}"
                called += 1
    assert called >= 10
