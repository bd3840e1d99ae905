"""The layout's import rules (docs/architecture.md), read from the source, so it can't drift.

Every ``import`` in ``src/`` counts: at the top of a module, inside a function, and under
``if TYPE_CHECKING:`` (only the circle check skips those, as they never run). The files are
parsed, never imported, so nothing runs. A failure names the rule it breaks, then each
offending import: the importing file and line and what it imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
TESTS = ROOT / "tests"
PRODUCT = "m365sync"
EMULATORS = ("m365sim", "sfsim")

# The folders (and top-level modules) of src/m365sync, lowest first. A module imports its own
# folder and folders on earlier lines, never a later line; folders sharing a line are peers
# and don't import each other. The package itself (``m365sync/__init__.py``, its version) is
# the floor.
LAYERS: list[tuple[str, ...]] = [
    ("__init__",),
    ("errors",),
    ("settings",),
    ("crypto", "time_zones"),  # foundations: secrets at rest; time zones as people pick them
    ("metrics", "logs"),  # what an operator reads: Prometheus metrics, log format
    ("db", "microsoft", "salesforce"),  # storage, and the remote systems' clients
    ("migrations",),  # loaded by Alembic, over db
    # the capabilities, in the order they build on each other
    ("audit",),
    ("organizations",),
    ("auth",),
    ("connections",),
    ("crm",),
    ("sync",),
    ("scheduling",),
    ("operations",),  # backup, restore, retention, erasure: over every capability
    ("workers",),  # beside the doors: runs capability code in processes of its own
    ("web",),  # doors: the JSON API and the HTML pages
    ("demo",),  # ``m365sync serve`` and the demo: serves the web app, starts m365sim
    ("cli",),  # doors: the command line (``m365sync serve`` runs the web app)
    ("__main__",),
]
RANK = {folder: rank for rank, line in enumerate(LAYERS) for folder in line}
CAPABILITIES = ("organizations", "auth", "connections", "sync", "crm", "scheduling", "audit")
DOORS_AND_WORKERS = ("web", "cli", "workers")
REMOTE_SYSTEMS = ("microsoft", "salesforce")
FOUNDATIONS = ("db", "settings", "errors", "crypto")
EMULATOR_USERS = ("demo",)  # the one product module that may start an emulator
# The client libraries of a remote system, and the one folder that talks to that system.
CLIENT_LIBRARIES = {
    "msal": "microsoft",
    "exchangelib": "microsoft",
    "msgraph": "microsoft",
    "msgraph_core": "microsoft",
    "azure": "microsoft",
    "O365": "microsoft",
    "simple_salesforce": "salesforce",
}


@dataclass(frozen=True)
class Import:
    file: str  # as the failure names it: src/m365sync/...
    line: int
    importer: str  # dotted module name of the importing file
    target: str  # dotted name it imports (a module, or the module a name comes from)
    type_only: bool = False  # under ``if TYPE_CHECKING:``: read by type checkers, never run

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(path: Path, src: Path = SRC) -> Iterator[Import]:
    """Every import in the file at ``path`` (a module under ``src``), found anywhere in it."""
    importer = module_name(path, src)
    file = path.relative_to(src.parent).as_posix()
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, importer, alias.name, id(node) in type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                name = f"{source}.{alias.name}"
                # ``from m365sync.web import app`` imports the module m365sync.web.app;
                # ``from m365sync.db import Base``, the module m365sync.db.
                target = name if is_module(name, src) else source
                yield Import(file, node.lineno, importer, target, id(node) in type_only)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def is_module(name: str, src: Path) -> bool:
    path = src.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(
        found
        for package in (PRODUCT, *EMULATORS)
        for path in sorted((SRC / package).rglob("*.py"))
        for found in imports_in(path)
    )


def product_imports() -> list[Import]:
    return [i for i in all_imports() if top(i.importer) == PRODUCT]


def top(name: str) -> str:
    return name.partition(".")[0]


def folder(name: str) -> str:
    """The folder of src/m365sync a module lives in (``__init__`` for the package itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def ours(target: str) -> bool:
    return top(target) == PRODUCT


def check(rule: str, offences: list[str]) -> None:
    """Fail with the rule, then each offending import on a line of its own."""
    assert offences == [], "\n  ".join([rule, *offences])


def test_every_folder_has_a_place_in_the_layers() -> None:
    present = {
        path.stem if path.is_file() else path.name
        for path in (SRC / PRODUCT).iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    missing = sorted(present - set(RANK))
    assert missing == [], (
        f"src/m365sync/{missing} has no place in LAYERS (tests/m365sync/test_layout.py): add it "
        "on the line its imports allow, and say where it sits in docs/architecture.md"
    )


def test_capabilities_never_import_a_door_or_the_workers() -> None:
    check(
        "A capability folder holds rules; the doors (web, cli) and the workers run it, never "
        "the other way round:",
        [
            f"{i.where} imports {i.target}"
            for i in product_imports()
            if folder(i.importer) in CAPABILITIES
            and ours(i.target)
            and folder(i.target) in DOORS_AND_WORKERS
        ],
    )


def test_remote_systems_import_no_capability_door_or_worker() -> None:
    check(
        "microsoft/ and salesforce/ talk to one remote system each and know nothing of the "
        "capabilities, the doors or the workers:",
        [
            f"{i.where} imports {i.target}"
            for i in product_imports()
            if folder(i.importer) in REMOTE_SYSTEMS
            and ours(i.target)
            and folder(i.target) in (*CAPABILITIES, *DOORS_AND_WORKERS, "demo")
        ],
    )


def test_foundations_import_nothing_above_them() -> None:
    check(
        "db/, settings, errors and crypto are the floor: they import only each other, in the "
        "order LAYERS gives:",
        [
            f"{i.where} imports {i.target}"
            for i in product_imports()
            if folder(i.importer) in FOUNDATIONS
            and ours(i.target)
            and folder(i.target) not in (*FOUNDATIONS, "__init__")
        ],
    )


def test_only_the_remote_system_folders_use_their_client_libraries() -> None:
    check(
        "Only microsoft/ talks to Microsoft (MSAL, exchangelib, Microsoft's SDKs) and only "
        "salesforce/ to Salesforce (simple-salesforce); the rest of the product asks them:",
        [
            f"{i.where} imports {i.target}: that is {CLIENT_LIBRARIES[top(i.target)]}/'s job"
            for i in product_imports()
            if top(i.target) in CLIENT_LIBRARIES
            and folder(i.importer) != CLIENT_LIBRARIES[top(i.target)]
        ],
    )


def test_doors_import_no_emulator() -> None:
    check(
        "The web app and the command line are the product; they never import an emulator "
        "(m365sim, sfsim) — demo.py starts the demo tenant for `m365sync serve`:",
        [
            f"{i.where} imports {i.target}"
            for i in product_imports()
            if folder(i.importer) in ("web", "cli") and top(i.target) in EMULATORS
        ],
    )


def test_only_the_demo_imports_an_emulator() -> None:
    check(
        "The product imports an emulator only in demo.py (tests and benchmarks may):",
        [
            f"{i.where} imports {i.target}"
            for i in product_imports()
            if top(i.target) in EMULATORS and folder(i.importer) not in EMULATOR_USERS
        ],
    )


@pytest.mark.parametrize("emulator", EMULATORS)
def test_emulators_never_import_the_product(emulator: str) -> None:
    check(
        f"{emulator} stands in for a remote service: it never imports m365sync:",
        [
            f"{i.where} imports {i.target}"
            for i in all_imports()
            if top(i.importer) == emulator and ours(i.target)
        ],
    )


def test_imports_run_downhill() -> None:
    offences = []
    for i in product_imports():
        if not ours(i.target):
            continue
        source, target = folder(i.importer), folder(i.target)
        if source == target or source not in RANK or target not in RANK:
            continue  # a folder missing from LAYERS fails the test above
        if RANK[target] > RANK[source]:
            offences.append(f"{i.where} imports {i.target}: {target} sits above {source}")
        elif RANK[target] == RANK[source]:
            offences.append(f"{i.where} imports {i.target}: {source} and {target} are peers")
    check(
        "Imports run downhill only (LAYERS in tests/m365sync/test_layout.py, drawn in "
        "docs/architecture.md): a module imports its own folder or a lower one:",
        offences,
    )


def test_no_module_imports_itself_through_others() -> None:
    """Across folders, "downhill only" already rules circles out; this finds them inside one
    folder. Imports under ``if TYPE_CHECKING:`` never run, so a type named both ways (an error
    carrying a usage record, say) is no circle."""
    graph: dict[str, set[str]] = {}
    for i in product_imports():
        if ours(i.target) and not i.type_only and i.target != i.importer:
            graph.setdefault(i.importer, set()).add(i.target)
    check(
        "Modules that import each other, directly or round a circle (one circle per line):",
        [" -> ".join(_shortest_circle(graph, group)) for group in _circles(graph)],
    )


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for after in sorted(graph.get(node, ())):
            if after not in order:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], order[after])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return groups


def _shortest_circle(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """The shortest way from the group's first module round to itself, for the message."""
    start = group[0]
    paths = {after: [start, after] for after in graph.get(start, ()) if after in group}
    queue = sorted(paths)
    while start not in paths:
        node = queue.pop(0)
        for after in sorted(graph.get(node, ())):
            if after in group and after not in paths:
                paths[after] = [*paths[node], after]
                queue.append(after)
    return paths[start]


def test_tests_share_code_only_through_the_support_package() -> None:
    """Shared test code lives in tests/support, imported as ``support`` (pyproject's
    ``pythonpath``). Reaching into another test folder by putting it on ``sys.path``, by
    importing a sibling file by its bare name, or through ``tests.`` works only by accident
    of the directory pytest starts in, so none of those is allowed."""
    helpers = {
        path.stem
        for path in TESTS.rglob("*.py")
        if "support" not in path.relative_to(TESTS).parts[:1]
    }
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                if top(name) in helpers or top(name) == "tests":
                    offences.append(f"{where}:{node.lineno} imports {name}")
            if _changes_sys_path(node):
                offences.append(f"{where}:{node.lineno} changes sys.path")
    check(
        "Test code is shared through tests/support (``from support.<module> import ...``):",
        offences,
    )


def _changes_sys_path(node: ast.AST) -> bool:
    """``sys.path.insert(...)``, ``sys.path.append(...)``, ``sys.path[:0] = ...`` and the like."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _is_sys_path(node.func.value) and node.func.attr in (
            "insert",
            "append",
            "extend",
        )
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(_is_sys_path(t.value if isinstance(t, ast.Subscript) else t) for t in targets)
    return False


def _is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def test_the_rules_see_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    """The checks above would pass vacuously if the reader missed imports inside functions or
    under ``if TYPE_CHECKING:``; this reads a module that hides one of each."""
    path = tmp_path / PRODUCT / "sync" / "sample.py"
    path.parent.mkdir(parents=True)
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from m365sync.web.app import create_app\n"
        "def later():\n"
        "    from ..cli import main\n"
        "    import m365sync.workers.dispatch\n"
    )
    seen = sorted(
        (i.line, i.target, i.type_only) for i in imports_in(path, tmp_path) if ours(i.target)
    )
    assert seen == [
        (3, "m365sync.web.app", True),
        (5, "m365sync.cli", False),
        (6, "m365sync.workers.dispatch", False),
    ]
