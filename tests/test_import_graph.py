"""The modules of ``models`` and ``market`` import each other without a cycle, one way.

The graph is read from the source with :mod:`ast`, so it holds every import:
at module level, inside functions and methods, and under ``TYPE_CHECKING``
(an import hidden in a function is still a dependency, and a cycle it closes
is still a cycle). An edge is an explicit import; the package ``__init__``
that Python runs before a submodule is not counted as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Packages whose modules must form an acyclic import graph.
ACYCLIC = ("models", "market")

#: What a package must not import: imports go CLI → cosim → models → market, and
#: neither layer below ``cosim`` knows about the engine, the agents or plotting.
FORBIDDEN = {
    "market": ("models", "cosim", "cosim_cli", "simpy", "mesa", "argparse", "matplotlib"),
    "models": ("cosim", "cosim_cli", "simpy", "mesa", "argparse", "matplotlib"),
}


def module_name(path: Path) -> str:
    """``models/game.py`` → ``models.game``; ``market/__init__.py`` → ``market``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages``, by dotted name."""
    return {
        module_name(path): path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Dotted names a module imports, and for ``from a import b`` also ``a.b``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def import_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module → the modules of ``packages`` it imports."""
    modules = modules_of(packages)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        names = imported(tree, name, path.name == "__init__.py")
        graph[name] = {n for n in names if n in modules and n != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions_and_under_type_checking():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.b import B\n"
        "def f():\n    from pkg import c\n"
        "from . import d\n"
    )
    names = imported(ast.parse(source), "pkg.a", is_package=False)
    assert {"pkg.b", "pkg.c", "pkg.d"} <= names
    graph = {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": set()}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize("package", ACYCLIC)
def test_package_modules_exist(package):
    assert len(modules_of((package,))) > 1


def test_models_and_market_import_without_cycles():
    graph = import_graph(ACYCLIC)
    assert cycles(graph) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    wrong = {
        f"{name} imports {target}"
        for name, path in modules_of((package,)).items()
        for target in imported(ast.parse(path.read_text()), name, path.name == "__init__.py")
        if target.split(".")[0] in FORBIDDEN[package]
    }
    assert sorted(wrong) == []
