"""The import graph of bot/ and connector/: no circle, no borrowed private name, the bot never needs the connector.

Read from the source with ``ast`` (nothing is imported), counting every import: at the top of a module,
inside functions, and under ``if TYPE_CHECKING:``. A circle hidden in a function still means two modules
that cannot be understood apart; a type-only one still means each has to be read with the other.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The repository's code folders and the import name setup.py gives each.
FOLDERS = {"bot": "teams_proactive.bot", "connector": "teams_proactive.connector", "teams_proactive": "teams_proactive"}

# The modules that may import one of ours inside a function, each with its reason. A late import is
# still counted in the circle check; it belongs here only for a genuine late choice (what to load is
# known at run time, or a module that must stay light), never as a way round a circle that a better
# home for the shared thing removes.
LATE_IMPORTERS: dict[str, str] = {
    "teams_proactive.bot.store": "STORE_URL picks the backend at run time; Cosmos' SDK loads only when asked for",
    "teams_proactive.connector": "importing any connector module runs this __init__ first: the app's parts"
    " (Flask-Smorest, the MCP SDK, the dashboard) load only when create_app builds one",
    # No circle is left behind these two since OPERATIONS left connector.openapi; the connector-by-resource
    # change reshapes both modules and can lift them to the top.
    "teams_proactive.connector.openapi": "the views are read when the API is built (to be lifted to the top)",
    "teams_proactive.connector.views.recipients": "PersonKey read late (to be lifted to the top)",
}
# The same for a whole package: the module or package itself and every module in it.
LATE_IMPORTER_PACKAGES: dict[str, str] = {
    "teams_proactive.connector.cli": "a command loads only what it runs: --help and `keys` start without the"
    " web app, the bot or the MCP SDK",
}


@dataclass(frozen=True, slots=True)
class Import:
    importer: str  # the module that imports
    target: str  # the module imported (a package's __init__ when a name comes from it)
    names: tuple[str, ...]  # names taken from the target with ``from target import ...``
    line: int
    in_function: bool


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module under the code folders: import name -> (file, is a package's __init__)."""
    found: dict[str, tuple[Path, bool]] = {}
    for folder, prefix in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            package = parts[-1] == "__init__"
            if package:
                parts.pop()
            found[".".join([prefix, *parts])] = (path, package)
    return found


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    _, package = MODULES[importer]
    base = importer.split(".")
    base = base[: len(base) - node.level + (1 if package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(importer: str) -> Iterator[Import]:
    path, _ = MODULES[importer]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    functions = {
        id(inner)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(fn)
    }
    for node in ast.walk(tree):
        lazy = id(node) in functions
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("teams_proactive"):
                    yield Import(importer, alias.name, (), node.lineno, lazy)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(importer, node)
            if not module.startswith("teams_proactive"):
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in MODULES:
                    yield Import(importer, submodule, (), node.lineno, lazy)
                else:
                    yield Import(importer, module, (alias.name,), node.lineno, lazy)


IMPORTS = [found for module in MODULES for found in _imports(module)]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in IMPORTS:
        if found.target in MODULES and found.target != found.importer:
            graph[found.importer].add(found.target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _a_circle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete circle inside a strongly connected group, for the failure message."""
    members = set(group)
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return group


def _where(importer: str, target: str) -> str:
    lines = sorted({f.line for f in IMPORTS if f.importer == importer and f.target == target})
    return f"{importer} -> {target} (line {', '.join(map(str, lines))})"


def test_the_modules_are_found() -> None:
    """Guards the test itself: it reads the real tree, and it sees imports inside functions."""
    assert "teams_proactive.bot.delivery.dispatcher" in MODULES
    assert "teams_proactive.connector.openapi" in MODULES
    assert any(found.in_function for found in IMPORTS)
    assert len(IMPORTS) > 500


def test_no_import_circle() -> None:
    graph = _graph()
    circles = [_a_circle(graph, group) for group in _strongly_connected(graph)]
    described = ["\n    ".join(_where(a, b) for a, b in itertools.pairwise(circle)) for circle in circles]
    assert not circles, "import circles:\n  " + "\n  ".join(described)


def _listed_late_importer(module: str) -> str | None:
    """The entry that lets ``module`` import late: itself in LATE_IMPORTERS, or a listed package it is in."""
    if module in LATE_IMPORTERS:
        return module
    for package in LATE_IMPORTER_PACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    return None


def test_late_imports_only_where_listed() -> None:
    """An import inside a function hides a dependency from the reader; only the listed modules have a reason."""
    late = sorted(
        {
            _where(found.importer, found.target)
            for found in IMPORTS
            if found.in_function and _listed_late_importer(found.importer) is None
        }
    )
    assert not late, "imports inside functions, in a module not listed:\n  " + "\n  ".join(late)
    # An exception nobody needs any more is removed, so the list stays the truth.
    used = {_listed_late_importer(found.importer) for found in IMPORTS if found.in_function}
    listed = set(LATE_IMPORTERS) | set(LATE_IMPORTER_PACKAGES)
    assert listed <= used, listed - used


def test_no_private_name_crosses_a_module() -> None:
    borrowed = [
        f"{found.importer} line {found.line}: {name} from {found.target}"
        for found in IMPORTS
        for name in found.names
        if name.startswith("_") and not name.startswith("__")
    ]
    borrowed += [
        f"{found.importer} line {found.line}: module {found.target}"
        for found in IMPORTS
        if _private_module_outside_its_package(found)
    ]
    assert not borrowed, "private names imported from another module:\n  " + "\n  ".join(borrowed)


def _private_module_outside_its_package(found: Import) -> bool:
    """``pkg._helpers`` may be imported inside ``pkg`` (that is what it is for), not from outside it."""
    package, _, last = found.target.rpartition(".")
    if not last.startswith("_") or last.startswith("__"):
        return False
    return not (found.importer == package or found.importer.startswith(package + "."))


def test_no_private_attribute_of_another_object() -> None:
    """``other._store`` from outside ``other``'s class reaches into its insides: it takes a public name.

    Only ``self``/``cls`` (and ``super()``) reach private attributes; a module-level ``_name`` of the
    module itself is read as a plain name, never through an attribute.
    """
    reached: list[str] = []
    for module, (path, _) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            if not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls"}:
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            reached.append(f"{module} line {node.lineno}: {ast.unparse(node)}")
    assert not reached, "private attributes reached from outside:\n  " + "\n  ".join(reached)


def test_the_bot_never_imports_the_connector() -> None:
    """The bot runs on its own (``teams-proactive bot``); the connector is built on top of it."""
    wrong = [
        _where(found.importer, found.target)
        for found in IMPORTS
        if found.importer.startswith("teams_proactive.bot") and found.target.startswith("teams_proactive.connector")
    ]
    assert not wrong, wrong
