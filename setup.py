"""Maps the repository's folders onto the one import name the wheel installs (metadata: pyproject.toml).

``bot/`` becomes ``teams_proactive.bot`` and ``connector/`` ``teams_proactive.connector``; no top-level
``bot`` or ``connector`` is ever installed, so the product can live inside another bot's project.
setuptools' ``packages.find`` cannot add a prefix, hence this file: the package list is found, not kept
by hand.
"""

from setuptools import find_packages, setup

MAPPED = {"bot": "teams_proactive.bot", "connector": "teams_proactive.connector"}


def _packages() -> list[str]:
    found = ["teams_proactive"]
    for name in find_packages(include=[f"{folder}*" for folder in MAPPED]):
        folder, _, rest = name.partition(".")
        found.append(MAPPED[folder] + (f".{rest}" if rest else ""))
    return found


setup(
    packages=_packages(),
    package_dir={"teams_proactive": "teams_proactive", **{name: folder for folder, name in MAPPED.items()}},
)
