"""Every code example in the documentation runs.

Conventions (also the rules for writing new examples):

* A fenced ``python`` block in ``docs/*.md`` or ``README.md`` runs. The blocks of
  one page run in order in one namespace, like a Python session, in a fresh
  temporary directory that holds a copy of ``scenarios/`` (so paths such as
  ``scenarios/default.toml`` work and results land in the temporary directory).
  Put ``<!-- docs-test: skip -->`` on the line before a block that must not run.
* A fenced ``bash`` block is an illustration and does not run, unless the line
  before it is ``<!-- docs-test: run -->``: then each of its ``cosim …`` lines
  runs (in the page's temporary directory, before the page's Python blocks that
  follow it) and must exit with status 0; such a block may hold nothing else.
* Keep examples cheap: a few seconds each (small scenarios, few replications).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cosim_cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:^<!-- docs-test: (?P<mark>run|skip) -->\n)?^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```",
    re.M | re.S,
)


def examples(page: Path) -> list[tuple[str, str, int]]:
    """``(kind, code, line)`` of the blocks of ``page`` that run: ``python`` or ``cosim``."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        lang, mark, body = match["lang"], match["mark"], match["body"]
        line = text.count("\n", 0, match.start("body")) + 1
        if lang == "python" and mark != "skip":
            found.append(("python", body, line))
        elif lang in ("bash", "sh", "console") and mark == "run":
            found.append(("cosim", body, line))
    return found


def run_cosim_lines(body: str, where: str) -> None:
    for offset, raw in enumerate(body.splitlines()):
        argv = shlex.split(raw, comments=True)
        if not argv:
            continue
        assert argv[0] in ("cosim", ".venv/bin/cosim"), (
            f"{where}+{offset}: a docs-test: run block holds only cosim commands, not {raw!r}"
        )
        assert main(argv[1:]) == 0, f"{where}+{offset}: {raw!r} failed"


@pytest.mark.parametrize(
    "page", [p for p in PAGES if examples(p)], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for kind, body, line in examples(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if kind == "python":
            exec(compile(body, where, "exec"), namespace)
        else:
            run_cosim_lines(body, where)


def test_the_conventions_pick_the_right_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n"
        "<!-- docs-test: skip -->\n```python\nraise SystemExit\n```\n"
        "```bash\nmake run\n```\n"
        "<!-- docs-test: run -->\n```bash\ncosim validate a.toml\n```\n",
        encoding="utf-8",
    )
    assert [(kind, body) for kind, body, _ in examples(page)] == [
        ("python", "x = 1\n"),
        ("cosim", "cosim validate a.toml\n"),
    ]
    tutorial = {kind for kind, _, _ in examples(ROOT / "docs" / "tutorial.md")}
    assert tutorial == {"python", "cosim"}


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    """``make docs`` in strict mode: a broken link or a bad docstring fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("cli", "scenario-reference", "api", "tutorial"):
        assert (tmp_path / page / "index.html").exists(), page


def _equation_table_names() -> list[str]:
    """Dotted names in the tables of docs/model.md's "Where each equation is implemented"."""
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    section = text.split("## Where each equation is implemented", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| (") or "Theorem" in line]
    return sorted(
        {name for row in rows for name in re.findall(r"`((?:cosim|models|market)\.[\w.]+)`", row)}
    )


def test_the_equation_table_names_code_that_exists():
    import importlib

    names = _equation_table_names()
    assert len(names) >= 30  # both papers' tables were read
    missing = []
    for name in names:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, f"docs/model.md names code that does not exist: {missing}"
