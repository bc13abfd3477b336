"""The package's layering contract, checked on every module's imports (function-level ones included).

Layers, top to bottom (a module may import from its own layer or any layer below, never above):

1. entry points: ``yizhan.api``, ``yizhan.routes``, ``yizhan.pages``, ``yizhan.console``, ``yizhan.cli``,
   ``yizhan.demo``
2. services: ``yizhan.reports`` and ``yizhan.returns``, above ``yizhan.maps``
3. domain: ``yizhan.siting``, above ``yizhan.coverage``, above ``yizhan.weekly`` (hours of the week) and
   ``yizhan.capacity`` (seats against demand), above ``yizhan.stations`` and ``yizhan.data``
4. foundations: ``yizhan.geo``, ``yizhan.db``, ``yizhan.areas``, ``yizhan.keys``, ``yizhan.accounts``,
   ``yizhan.ratelimit``, ``yizhan.outputs``
5. ground: ``yizhan.settings``, ``yizhan.errors``, ``yizhan.arrays`` (and the package's own ``__init__``)

Besides the layers: ``yizhan.geo`` imports no domain package; no two top-level parts import each other, directly or
round a longer circle; and no module imports another module's private name (``from yizhan.a.b import _x``, or
``b._x`` through an imported module). A top-level module or package that is in no layer is itself a violation, so
a new one has to be placed here.

The checker reads the source with ``ast`` (nothing is imported), so it sees imports inside functions and under
``if TYPE_CHECKING:`` as well as the module-level ones.
"""

from __future__ import annotations

import ast
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "yizhan"
ROOT = Path(__file__).resolve().parent.parent  # the repository root is the package (package-dir)

# top to bottom; parts on one line share a rank (they may import each other, but not in a circle)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("api", "routes", "pages", "console", "cli", "demo"),
    ("reports", "returns"),
    ("maps",),
    ("siting",),
    ("coverage",),
    ("weekly", "capacity"),
    ("stations", "data"),
    ("geo", "db", "areas", "keys", "accounts", "ratelimit", "outputs"),
    ("settings", "errors", "arrays", "__init__"),
)
RANK: dict[str, int] = {part: len(LAYERS) - i for i, layer in enumerate(LAYERS) for part in layer}
DOMAIN = ("siting", "coverage", "weekly", "capacity", "stations", "data")
FORBIDDEN: dict[str, tuple[str, ...]] = {"geo": DOMAIN}
# folders under the root that are not part of the package
NOT_PACKAGE = {"tests", "benchmarks", "build", "static"}


@dataclass(frozen=True)
class Import:
    """One import of a package module: where it is and what it names."""

    file: str  # relative to the package root
    line: int
    importer: str  # dotted module name, e.g. yizhan.coverage.runs
    target: str  # dotted module name it resolves to (the module itself, not a name inside it)
    names: tuple[str, ...] = ()  # names taken from the target (``from target import a, b``), or attributes used


@dataclass(frozen=True)
class Violation:
    where: str  # file:line
    importer: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} -> {self.target}: {self.reason}"


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package under ``root`` by dotted name (``__init__.py`` gives the package's name)."""
    found: dict[str, Path] = {}
    for folder, subfolders, files in os.walk(root):
        # not into .venv, caches, tests, benchmarks or anything else that is no package folder
        subfolders[:] = sorted(d for d in subfolders if d.isidentifier() and d not in NOT_PACKAGE)
        rel = Path(folder).relative_to(root).parts
        for name in sorted(f for f in files if f.endswith(".py")):
            parts = [*rel] if name == "__init__.py" else [*rel, name[:-3]]
            found[".".join([package, *parts])] = Path(folder) / name
    return found


def part_of(module: str) -> str:
    """The top-level part a module belongs to: ``yizhan.coverage.runs`` -> ``coverage``; ``yizhan`` -> ``__init__``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def imports_of(module: str, path: Path, modules: dict[str, Path], root: Path) -> Iterator[Import]:
    """The package imports in one module's source, at any depth, resolved to module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root).as_posix()
    is_package = path.name == "__init__.py"
    bound: dict[str, str] = {}  # local name -> package module it is bound to (for ``alias._private`` uses)

    def inside(name: str) -> bool:
        return name == PACKAGE or name.startswith(PACKAGE + ".")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if inside(alias.name):
                    yield Import(rel, node.lineno, module, alias.name)
                    if alias.asname:
                        bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                      else node.module or "")
            if not inside(source):
                continue
            plain: list[str] = []
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:  # ``from yizhan.coverage import runs``: the module runs itself
                    yield Import(rel, node.lineno, module, sub)
                    bound[alias.asname or alias.name] = sub
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                yield Import(rel, node.lineno, module, source, tuple(plain))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and _private(node.attr)):
            yield Import(rel, node.lineno, module, bound[node.value.id], (node.attr,))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def collect(root: Path, package: str = PACKAGE) -> list[Import]:
    modules = module_files(root, package)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules, root)]


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one part (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def check(root: Path, package: str = PACKAGE) -> list[Violation]:
    """Every breach of the contract in the package under ``root``, in file order."""
    found: list[Violation] = []
    imports = collect(root, package)
    modules = module_files(root, package)
    for name in modules:
        if part_of(name) not in RANK:
            found.append(Violation(f"{modules[name].relative_to(root).as_posix()}:1", name, "-",
                                   f"{package}.{part_of(name)} is in no layer of the contract"))
    edges: dict[str, set[str]] = {}
    for imp in imports:
        where = f"{imp.file}:{imp.line}"
        src, dst = part_of(imp.importer), part_of(imp.target)
        private = [n for n in imp.names if _private(n)]
        if private and imp.target != imp.importer:
            found.append(Violation(where, imp.importer, imp.target,
                                   f"private name {', '.join(private)} of another module"))
        if src == dst or src not in RANK or dst not in RANK:
            continue
        edges.setdefault(src, set()).add(dst)
        if dst in FORBIDDEN.get(src, ()):
            found.append(Violation(where, imp.importer, imp.target, f"{package}.{src} imports no domain package"))
        elif RANK[dst] > RANK[src]:
            found.append(Violation(where, imp.importer, imp.target,
                                   f"upward import: {package}.{src} is below {package}.{dst}"))
    for group in _circles(edges):
        links = [imp for imp in imports if part_of(imp.importer) in group and part_of(imp.target) in group
                 and part_of(imp.importer) != part_of(imp.target)]
        # a circle needs an import that does not go down: name those (the downward ones are as they should be)
        closing = [imp for imp in links if RANK[part_of(imp.target)] >= RANK[part_of(imp.importer)]]
        for imp in closing or links:
            found.append(Violation(f"{imp.file}:{imp.line}", imp.importer, imp.target,
                                   f"import circle among {', '.join(package + '.' + p for p in group)}"))
    return sorted(set(found), key=lambda v: (v.where.split(":")[0], int(v.where.split(":")[1]), v.reason))


# the package itself


def test_the_package_keeps_its_layers() -> None:
    assert len(module_files(ROOT)) > 40, "the checker found too few modules: is ROOT the package?"
    violations = check(ROOT)
    assert not violations, "layering contract broken:\n" + "\n".join(map(str, violations))


def test_every_part_of_the_package_is_in_a_layer() -> None:
    parts = {part_of(m) for m in module_files(ROOT)}
    assert {"api", "cli", "coverage", "geo", "siting", "stations", "settings"} <= parts
    assert parts <= set(RANK), f"not in any layer: {sorted(parts - set(RANK))}"


# the checker, on small trees made for the purpose


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            (root / folder / "__init__.py").touch()
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


CLEAN = {
    "settings.py": "X = 1\n",
    "geo/projection.py": "from yizhan import settings\nfrom yizhan.errors import Oops\n",
    "errors.py": "class Oops(Exception): ...\n",
    "coverage/runs.py": "from yizhan.geo import projection\nfrom . import gaps\nfrom .gaps import find\n",
    "coverage/gaps.py": "def find(): ...\ndef _own(): ...\nx = _own()\n",
    "maps/run_map.py": "def draw():\n    from yizhan.coverage.runs import gaps\n",
    "api.py": "import yizhan.maps.run_map as rm\nfrom yizhan.cli import main\nrm.draw()\n",
    "cli.py": "def main(): ...\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, CLEAN)
    assert len(collect(root)) >= 8
    assert check(root) == []


def test_an_upward_import_inside_a_function_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "coverage/gaps.py": "def find():\n    from yizhan.reports import pdf\n",
                            "reports/pdf.py": "X = 1\n"})
    [v] = check(root)
    assert (v.where, v.importer, v.target) == ("coverage/gaps.py:2", "yizhan.coverage.gaps", "yizhan.reports.pdf")
    assert "upward import" in v.reason


def test_geo_importing_a_domain_package_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "geo/projection.py": "from ..stations.vocab import WORDS\n",
                            "stations/vocab.py": "WORDS = ()\n"})
    [v] = check(root)
    assert (v.where, v.target) == ("geo/projection.py:1", "yizhan.stations.vocab")
    assert "imports no domain package" in v.reason


def test_a_circle_between_parts_of_one_layer_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "db/engine.py": "from yizhan.areas import load\n",
                            "areas.py": "def load():\n    from yizhan.db import engine\n"})
    found = check(root)
    assert {v.where for v in found} == {"db/engine.py:1", "areas.py:2"}
    assert all("import circle among yizhan.areas, yizhan.db" in v.reason for v in found)


def test_a_private_name_from_another_module_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "coverage/runs.py": "from yizhan.coverage.gaps import _own, find\n",
                            "maps/run_map.py": "from yizhan.coverage import gaps\ngaps._own()\n"})
    found = check(root)
    assert [(v.where, v.target) for v in found] == [("coverage/runs.py:1", "yizhan.coverage.gaps"),
                                                    ("maps/run_map.py:2", "yizhan.coverage.gaps")]
    assert all("private name _own" in v.reason for v in found)


def test_an_upward_import_that_closes_a_circle_is_caught_twice(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "coverage/gaps.py": "import yizhan.maps.run_map\n"})
    reasons = {v.where: v.reason for v in check(root) if "upward" in v.reason}
    assert reasons == {"coverage/gaps.py:1": "upward import: yizhan.coverage is below yizhan.maps"}
    circle = {v.where: v.reason for v in check(root) if "circle" in v.reason}
    assert circle == {"coverage/gaps.py:1": "import circle among yizhan.coverage, yizhan.maps"}


def test_a_part_in_no_layer_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "plugins/extra.py": "X = 1\n"})
    assert [v.reason for v in check(root)] == ["yizhan.plugins is in no layer of the contract"] * 2


@pytest.mark.parametrize(("importer", "is_package", "level", "module", "expected"), [
    ("yizhan.coverage.runs", False, 1, "gaps", "yizhan.coverage.gaps"),
    ("yizhan.coverage.runs", False, 2, "geo.coords", "yizhan.geo.coords"),
    ("yizhan.coverage", True, 1, "runs", "yizhan.coverage.runs"),
    ("yizhan.coverage", True, 2, None, "yizhan"),
])
def test_relative_imports_resolve(importer: str, is_package: bool, level: int, module: str | None,
                                  expected: str) -> None:
    assert _resolve_relative(importer, is_package, level, module) == expected
