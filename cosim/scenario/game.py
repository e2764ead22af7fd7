"""Scenario files: TOML → a typed, frozen :class:`Scenario`, validated before any work.

A scenario file holds everything a run needs. Validation happens once, here,
in two passes: the types and ranges of every field (pydantic, from the
configuration classes), then the rules that tie fields together (shapes,
windows, sums). Every violation is reported — not just the first — as
``FILE: path.to.field: value: rule``, and :class:`ScenarioError` carries them
all; the command line prints them and exits with status 2.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from market.schema import (
    UNION_TAGS,
    ConfigError,
    Frozen,
    ResultName,
    Violation,
    timezone_violations,
)
from models.config import GameConfig, PositiveFloat
from models.validation import MAX_STEPS, game_violations, time_violations

__all__ = [
    "MAX_DAYS",
    "MAX_SIMULATED_PER_CLUSTER",
    "MAX_STEPS",
    "LoadedScenario",
    "Scenario",
    "ScenarioError",
    "SimulationConfig",
    "Violation",
    "consistency_violations",
    "load_scenario",
    "parse_scenario",
    "pydantic_violations",
    "read_toml",
    "timezone_violations",
]


class ScenarioInfo(Frozen):
    """What the scenario is."""

    name: ResultName = Field(
        "scenario", description="Short name, used in result folders (letters, digits, . _ -)."
    )
    description: str = Field("", description="One paragraph on what the scenario studies.")


#: Longest simulation: ten years of days (and the most ``cosim simulate --days`` takes).
MAX_DAYS = 3650
#: Most households per cluster a simulation may override ``clusters.households`` with
#: (and the most ``cosim simulate --households-per-cluster`` takes).
MAX_SIMULATED_PER_CLUSTER = 10_000_000


class SimulationConfig(Frozen):
    """The finite-N co-simulation (SPEC §5)."""

    mode: Literal["standalone", "rpc", "coc"] = Field(
        "coc", description="Trading mode whose law the households apply and whose prices settle."
    )
    days: int = Field(1, ge=1, le=MAX_DAYS, description="Days simulated.")
    households_per_cluster: int | None = Field(
        None,
        ge=1,
        le=MAX_SIMULATED_PER_CLUSTER,
        description="Override of clusters.households for the simulation.",
    )
    record_households: int = Field(
        2, ge=0, le=1000, description="Households per cluster whose trajectories are recorded."
    )
    market_interval_h: PositiveFloat = Field(
        1.0,
        description="Interval of the simulation's market table, the population's net demand "
        "per interval [h]; a multiple of time.dt_h. Prices, LMPs included, clear every "
        "control step.",
    )


class Scenario(GameConfig):
    """A complete scenario: the game, the simulation, and what identifies the run."""

    scenario: ScenarioInfo = Field(default_factory=ScenarioInfo)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)


class ScenarioError(ConfigError):
    """A scenario file that cannot be used; ``violations`` lists every reason.

    Its message has one ``FILE: path.to.field: value: rule`` line per violation.
    """

    def __init__(self, file: str, violations: list[Violation]) -> None:
        super().__init__(violations, file)


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from."""

    scenario: Scenario
    path: Path | None
    sha256: str
    """Hash of the file's bytes (or of the canonical JSON for in-memory scenarios)."""

    @property
    def base_dir(self) -> Path | None:
        """Directory that relative paths in the scenario refer to."""
        return None if self.path is None else self.path.parent


def _loc(parts: tuple) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def pydantic_violations(error: ValidationError) -> list[Violation]:
    found: dict[tuple[str, str], Violation] = {}
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if p not in UNION_TAGS)
        rule = item["msg"]
        if item["type"] == "extra_forbidden":
            rule = "unknown field (not part of the scenario format)"
        elif item["type"] == "missing":
            rule = "required field is missing"
        elif item["type"] == "union_tag_invalid":
            rule = "unexpected shape"
        value = None if item["type"] == "missing" else item.get("input")
        found.setdefault((_loc(loc), rule), Violation(_loc(loc), value, rule))
    return list(found.values())


def consistency_violations(s: Scenario, base_dir: Path | None) -> list[Violation]:
    """Rules that tie fields together; empty when the scenario is consistent.

    The game's rules (:func:`models.validation.game_violations`), then the
    simulation's: the market interval is a whole number of control steps.
    """
    out = game_violations(s, base_dir)
    interval = s.simulation.market_interval_h
    ratio = interval / s.time.dt_h
    # the interval rule only makes sense on a valid control grid; a ratio that overflowed
    # (a huge interval over a small step) is no whole number of steps either
    off_grid = not math.isfinite(ratio) or abs(ratio - round(ratio)) > 1e-9 or ratio < 1
    if not time_violations(s.time) and off_grid:
        rule = f"must be a multiple of time.dt_h ({s.time.dt_h})"
        out.append(Violation("simulation.market_interval_h", interval, rule))
    return out


def parse_scenario(data: dict, file: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as a dictionary (as read from TOML).

    Raises
    ------
    ScenarioError
        With every violation found.
    """
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(file, pydantic_violations(exc)) from None
    problems = consistency_violations(scenario, base_dir)
    if problems:
        raise ScenarioError(file, problems)
    return scenario


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file.

    Raises
    ------
    ScenarioError
        For a missing or malformed file (with line and column) or any invalid field.
    """
    path = Path(path)
    data, raw = read_toml(path)
    if not data:
        rule = "empty file: a scenario names at least itself ([scenario] name = ...)"
        raise ScenarioError(str(path), [Violation("(file)", "", rule)])
    scenario = parse_scenario(data, str(path), path.parent)
    return LoadedScenario(scenario, path.resolve(), hashlib.sha256(raw).hexdigest())


def read_toml(path: Path) -> tuple[dict, bytes]:
    """The parsed TOML file and its bytes (for hashing).

    Raises
    ------
    ScenarioError
        When the file cannot be read, is not UTF-8, or is malformed TOML (with
        the line and column of the first error).
    """
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(
            file, [Violation("(file)", file, f"cannot read: {exc.strerror}")]
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError:
        raise ScenarioError(file, [Violation("(file)", "bytes", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, [Violation("(toml)", "", _toml_message(str(exc)))]) from None


def _toml_message(message: str) -> str:
    """``Expected ... (at line 3, column 5)`` → ``line 3, column 5: expected ...``."""
    if "(at line" in message:
        text, _, where = message.rpartition("(at ")
        return f"{where.rstrip(')')}: malformed TOML: {text.strip()}"
    return f"malformed TOML: {message}"
