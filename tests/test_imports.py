"""Imports go one way — cosim_cli → cosim → models → market — and ``import cosim`` stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("cosim", "models", "market")
#: ``python -m cosim``: the one library file that calls the command line.
SHIM = ROOT / "cosim" / "__main__.py"

EVERY_LIBRARY_MODULE = """
import importlib, json, pkgutil, sys

skipped = []
for package in {packages!r}:
    path = importlib.import_module(package).__path__
    for info in pkgutil.walk_packages(path, package + "."):
        if info.name == "cosim.__main__":
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as err:  # an optional extra (e.g. gymnasium) is missing
            if err.name.split(".")[0] in {packages!r} + ("cosim_cli",):
                raise
            skipped.append(info.name)
print(json.dumps({{"modules": sorted(sys.modules), "skipped": skipped}}))
"""


def in_fresh_interpreter(code: str) -> object:
    """What ``code``, run by a fresh interpreter from the project's root, prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_no_library_module_imports_the_command_line():
    found = in_fresh_interpreter(EVERY_LIBRARY_MODULE.format(packages=LIBRARY))
    assert "cosim.api" in found["modules"] and "market.dispatch" in found["modules"]
    assert [m for m in found["modules"] if m.split(".")[0] == "cosim_cli"] == []


def test_no_library_function_imports_the_command_line():
    """Also the imports inside functions, which importing a module does not run."""
    offenders = []
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == SHIM:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                if any(name.split(".")[0] == "cosim_cli" for name in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_import_cosim_loads_no_plotting_backend_and_no_solver():
    found = in_fresh_interpreter("import cosim, json, sys; print(json.dumps(sorted(sys.modules)))")
    heavy = ("matplotlib.pyplot", "pyomo", "highspy")
    assert [m for m in found if m in heavy or m.split(".")[0] in heavy] == []


def test_the_heavy_names_load_on_first_use():
    code = (
        "import cosim, json, sys\n"
        "before = 'cosim.sim.simulation' in sys.modules\n"
        "run = cosim.simulate\n"
        "print(json.dumps([before, 'cosim.sim.simulation' in sys.modules, run.__module__]))"
    )
    assert in_fresh_interpreter(code) == [False, True, "cosim.sim.simulation"]
