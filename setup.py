"""Maps the repository's folders onto the one import name the wheel installs (metadata: pyproject.toml).

``bot/`` becomes ``teams_proactive.bot`` and ``connector/`` ``teams_proactive.connector``; no top-level
``bot`` or ``connector`` is ever installed, so the product can live inside another bot's project.
setuptools' ``packages.find`` cannot add a prefix, hence this file: the package list is found, not kept
by hand.
``power-automate-samples/`` becomes ``teams_proactive.samples``: its flows and their metadata are package data
(``connector/solution.py`` reads them with importlib.resources), so an installed wheel exports the same
solutions as the source tree.
"""

from setuptools import find_packages, setup

MAPPED = {"bot": "teams_proactive.bot", "connector": "teams_proactive.connector"}
# Folders that are data, not code: one package each, its files listed in pyproject's package-data.
DATA_PACKAGES = {"power-automate-samples": "teams_proactive.samples"}


def _packages() -> list[str]:
    found = ["teams_proactive", *DATA_PACKAGES.values()]
    for name in find_packages(include=[f"{folder}*" for folder in MAPPED]):
        folder, _, rest = name.partition(".")
        found.append(MAPPED[folder] + (f".{rest}" if rest else ""))
    return found


setup(
    packages=_packages(),
    package_dir={
        "teams_proactive": "teams_proactive",
        **{name: folder for folder, name in (MAPPED | DATA_PACKAGES).items()},
    },
)
