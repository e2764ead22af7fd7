"""What the command's tests share: a game small enough to solve in a second or two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: Two clusters, hourly steps, the coarsest SoE grid whose law converges in the continuous game.
SMALL = """
seed = 3
[scenario]
name = "small"
[time]
dt_h = 1.0
[clusters]
count = 2
households = 10
distances = { kind = "line" }
[solver]
soe_points = 41
"""


@pytest.fixture
def scenario(tmp_path) -> Path:
    """The small game's scenario file, ``small.toml`` in the test's directory."""
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def epsilon_args(tmp_path) -> Callable[..., list[str]]:
    """``cosim epsilon`` arguments with ``--out``, ``--work`` and ``--cache`` in ``tmp_path``,
    and ``--quiet`` (stderr holds only what the command reports)."""

    def args(scenario: Path, *options: str) -> list[str]:
        return [
            "epsilon",
            str(scenario),
            "--out",
            str(tmp_path / "out"),
            "--work",
            str(tmp_path / "work"),
            "--cache",
            str(tmp_path / "cache"),
            "--quiet",
            *options,
        ]

    return args
