"""Wholesale scenario files: TOML → a typed, frozen :class:`WholesaleScenario`.

The wholesale experiment of seed 003 has its own scenario format
(:mod:`market.wholesale_config`); it is validated here once, before any
work, with the helpers and the reporting of :mod:`cosim.scenario.game`: every
violation as ``FILE: path.to.field: value: rule``, collected in a
:class:`~cosim.scenario.ScenarioError` (the command exits with status 2).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cosim.scenario.game import (
    ScenarioError,
    Violation,
    pydantic_violations,
    read_toml,
    timezone_violations,
)
from market.matpower import load_matpower
from market.wholesale_config import WholesaleScenario, consistency_rules
from models.config import missing_file_rule, scenario_path

__all__ = [
    "LoadedWholesale",
    "load_wholesale_scenario",
    "parse_wholesale_scenario",
    "with_overrides",
]


@dataclass(frozen=True)
class LoadedWholesale:
    """A validated wholesale scenario with where it came from."""

    scenario: WholesaleScenario
    path: Path | None
    sha256: str
    """Hash of the file's bytes (or of the canonical JSON for in-memory scenarios)."""

    @property
    def base_dir(self) -> Path | None:
        """Directory that relative paths in the scenario refer to."""
        return None if self.path is None else self.path.parent

    def network_file(self) -> Path | None:
        """The MATPOWER file, resolved against the scenario's directory; None = built-in."""
        name = self.scenario.network.file
        return None if name is None else scenario_path(name, self.base_dir)


def parse_wholesale_scenario(
    data: dict, file: str = "<scenario>", base_dir: Path | None = None
) -> WholesaleScenario:
    """Validate a wholesale scenario given as a dictionary (as read from TOML).

    Raises
    ------
    ScenarioError
        With every violation found.
    """
    try:
        scenario = WholesaleScenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(file, pydantic_violations(exc)) from None
    problems = [Violation(*rule) for rule in consistency_rules(scenario)]
    problems += timezone_violations("site.timezone", scenario.site.timezone)
    problems += network_file_violations(scenario.network.file, base_dir)
    problems += _learner_violations(scenario.learning.learner)
    pro, dem = scenario.prosumers, scenario.demand
    # a prosumer's peak gross load on the H0 shape is at most ~0.1 of its daily energy per hour
    if pro.per_mw * pro.daily_kwh * 0.1 / 1000.0 > dem.peak_fraction:
        problems.append(
            Violation(
                "prosumers.per_mw",
                pro.per_mw,
                "prosumers' gross load alone would exceed the bus's peak demand",
            )
        )
    if problems:
        raise ScenarioError(file, problems)
    return scenario


def network_file_violations(name: str | None, base_dir: Path | None) -> list[Violation]:
    """``network.file`` names a MATPOWER case that exists and loads (None: the built-in case)."""
    if name is None:
        return []
    net = scenario_path(name, base_dir)
    if not net.is_file():
        return [Violation("network.file", name, missing_file_rule(name, base_dir))]
    try:
        load_matpower(net)
    except ValueError as exc:
        return [Violation("network.file", name, str(exc))]
    return []


def _learner_violations(learner: str) -> list[Violation]:
    """PPO needs the optional ``[rl]`` extra; say so before any work is done."""
    if learner != "ppo":
        return []
    missing = [m for m in ("sb3_contrib", "torch") if importlib.util.find_spec(m) is None]
    if not missing:
        return []
    rule = (
        f"needs the optional [rl] extra ({', '.join(missing)} not installed): "
        "pip install 'prosumer-cosim[rl]', or make test-rl in a clone"
    )
    return [Violation("learning.learner", learner, rule)]


def load_wholesale_scenario(path: str | Path) -> LoadedWholesale:
    """Read and validate a wholesale scenario file.

    Parameters
    ----------
    path
        A TOML wholesale scenario (e.g. ``scenarios/oahu37.toml``).

    Raises
    ------
    ScenarioError
        For a missing or malformed file (with line and column) or any invalid field.
    """
    path = Path(path)
    data, raw = read_toml(path)
    scenario = parse_wholesale_scenario(data, str(path), path.parent)
    return LoadedWholesale(scenario, path.resolve(), hashlib.sha256(raw).hexdigest())


def with_overrides(
    loaded: LoadedWholesale,
    *,
    days: int | None = None,
    seeds: int | None = None,
    learner: str | None = None,
    network_file: str | Path | None = None,
) -> LoadedWholesale:
    """The scenario with command-line overrides, validated again.

    ``network_file`` is taken relative to the working directory.
    """
    data = loaded.scenario.model_dump(mode="python")
    if days is not None:
        data["time"]["days"] = days
        m = data["metrics"]
        m["last_days"] = min(m["last_days"], days)
        m["settle_days"] = max(1, min(m["settle_days"], days // 2))
    if seeds is not None:
        data["seeds"] = seeds
    if learner is not None:
        data["learning"]["learner"] = learner
    if network_file is not None:
        data["network"]["file"] = str(Path(network_file).expanduser().resolve())
    file = str(loaded.path) if loaded.path is not None else "<scenario>"
    scenario = parse_wholesale_scenario(data, file, loaded.base_dir)
    return LoadedWholesale(scenario, loaded.path, loaded.sha256)
