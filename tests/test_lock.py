"""The lock file pins what pyproject.toml asks for, and this environment is installed from it.

``requirements/lock.txt`` (``make lock``) constrains every install the Makefile does
(``pip install -c requirements/lock.txt -e ".[test,docs]"``). These tests fail when a
dependency added to pyproject.toml is missing from the lock, when a pin falls outside
its pyproject range, when an install rule stops using the lock, or when the running
environment has drifted from the pinned versions.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
# the extras `make test` installs; the others (e.g. rl) are not locked
LOCKED_EXTRAS = ("test", "docs")


def declared() -> list[Requirement]:
    """The requirements of ``[project] dependencies`` and of the locked extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def pins() -> dict[str, Version]:
    """Canonical name → pinned version of every entry in the lock."""
    found: dict[str, Version] = {}
    for number, raw in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        where = f"{LOCK.name}:{number}: {line!r}"
        assert not req.extras, f"{where}: a constraints file takes no extras"
        assert req.marker is None and req.url is None, f"{where}: a plain pin, please"
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{where}: not pinned with =="
        name = canonicalize_name(req.name)
        assert name not in found, f"{where}: {name} pinned twice"
        found[name] = Version(specs[0].version)
    return found


def test_lock_pins_every_declared_dependency_within_its_range() -> None:
    locked = pins()
    problems = []
    for req in declared():
        name = canonicalize_name(req.name)
        if name not in locked:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{req.name}=={locked[name]} is outside pyproject's {req}")
    assert not problems, "run `make lock LOCK_FLAGS=`:\n" + "\n".join(problems)


REINSTALL = 'reinstall with `pip install -c requirements/lock.txt -e ".[test,docs]"`'


@pytest.mark.parametrize("name", sorted({canonicalize_name(req.name) for req in declared()}))
def test_installed_version_is_the_locked_one(name: str) -> None:
    locked = pins().get(name)
    if locked is None:
        pytest.fail(f"{name} is declared in pyproject.toml but not pinned in the lock")
    try:
        installed = Version(version(name))
    except PackageNotFoundError:
        pytest.fail(f"{name} is not installed: {REINSTALL}")
    assert installed == locked, (
        f"{name} {installed} is installed, the lock pins {locked}: {REINSTALL}"
    )


def test_the_whole_locked_closure_is_installed_at_its_pins() -> None:
    # the lock is the closure of .[test,docs], so in the environment `make test` builds
    # every entry is installed (transitive ones included, e.g. dask[distributed]'s distributed)
    drifted = []
    for name, locked in pins().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            drifted.append(f"{name}: not installed, locked {locked}")
            continue
        if installed != locked:
            drifted.append(f"{name}: {installed} installed, locked {locked}")
    assert not drifted, f"{REINSTALL}:\n" + "\n".join(drifted)


def test_every_install_rule_is_constrained_by_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^LOCK\s*:?=\s*requirements/lock\.txt\s*$", makefile, re.M)
    installs = [line for line in makefile.splitlines() if "pip install" in line and " -e " in line]
    assert len(installs) >= 3, installs  # .installed, .installed-test, .installed-docs
    for line in installs:
        assert "-c $(LOCK)" in line, f"Makefile installs without the lock: {line.strip()!r}"
    for target in (".installed", ".installed-test", ".installed-docs"):
        rule = re.search(rf"^\$\(VENV\)/{re.escape(target)}:([^|\n]*)", makefile, re.M)
        assert rule and "$(LOCK)" in rule[1].split(), f"{target} does not depend on the lock"
