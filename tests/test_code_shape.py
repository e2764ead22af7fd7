"""The shape the packages keep: small modules, short functions, kernels with few parameters.

Limits from the project's style: a module is split before 600 lines, a
function stays under 80 lines (docstring included) unless it is a compiled
kernel, and a kernel takes at most 12 parameters — more are grouped into
typed tuples (``NamedTuple``), which numba accepts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cosim", "cosim_cli", "models", "market")
MODULE_LINES, FUNCTION_LINES, KERNEL_PARAMETERS = 600, 80, 12
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _is_kernel(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    decorators = [ast.unparse(d) for d in node.decorator_list]
    return any("jit" in d or "vectorize" in d for d in decorators)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_functions_and_kernels_stay_small(path: Path):
    source = path.read_text(encoding="utf-8")
    problems = []
    if len(source.splitlines()) > MODULE_LINES:
        problems.append(f"{len(source.splitlines())} lines (at most {MODULE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        count = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if _is_kernel(node) and count > KERNEL_PARAMETERS:
            problems.append(f"kernel {node.name}: {count} parameters")
        if not _is_kernel(node) and length > FUNCTION_LINES:
            problems.append(f"{node.name}: {length} lines")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_check_reads_every_package():
    assert {p.relative_to(ROOT).parts[0] for p in MODULES} == set(PACKAGES)
