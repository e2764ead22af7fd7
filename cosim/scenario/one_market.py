"""One-market scenario files: TOML → :class:`LoadedOneMarket` (scenario, network, games).

A one-market scenario (:mod:`models.one_market_config`) is recognised by its
``[[coc]]`` tables. Everything is checked before any work, every violation
reported as ``FILE: path.to.field: value: rule`` in one
:class:`~cosim.scenario.ScenarioError` (exit status 2):

- the fields' types and ranges, and the market interval dividing 24 h;
- the network file (exists and loads) and every bus named (an index in range
  or a bus name of the case);
- no bus holding two clusters-of-clusters, no aggregator on a bus with a
  cluster-of-clusters, no aggregator bus listed twice;
- each cluster-of-clusters' game scenario (it loads; its own violations are
  reported under ``coc[i].game_file``), with no ``[wholesale]`` table of its own, a
  one-day horizon, and a control step that divides the market interval and is
  the same for every cluster-of-clusters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cosim.scenario.game import (
    LoadedScenario,
    ScenarioError,
    Violation,
    load_scenario,
    pydantic_violations,
    read_toml,
)
from cosim.scenario.wholesale import network_file_violations
from market.matpower import load_matpower
from market.network import Network, pjm5bus
from models.config import scenario_path
from models.one_market_config import Bus, OneMarketScenario

__all__ = ["LoadedOneMarket", "is_one_market_file", "load_one_market_scenario"]


@dataclass(frozen=True)
class LoadedOneMarket:
    """A validated one-market scenario with its network, buses and games resolved."""

    scenario: OneMarketScenario
    path: Path | None
    sha256: str
    """Hash of the file's bytes."""
    network: Network
    """The case as published (costs are redrawn, if asked, from the run's seed)."""
    coc_bus: tuple[int, ...]
    """Bus index of each cluster-of-clusters."""
    aggregator_bus: tuple[int, ...]
    """Bus index of each aggregator (empty without ``[aggregators]``)."""
    games: tuple[LoadedScenario, ...]
    """Each cluster-of-clusters' game scenario."""


def is_one_market_file(data: dict) -> bool:
    """A one-market scenario has ``[[coc]]`` tables."""
    return "coc" in data


def load_one_market_scenario(path: str | Path) -> LoadedOneMarket:
    """Read and validate a one-market scenario file and every file it names.

    Raises
    ------
    ScenarioError
        With every violation found.
    """
    path = Path(path)
    data, raw = read_toml(path)
    file = str(path)
    try:
        scenario = OneMarketScenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(file, pydantic_violations(exc)) from None
    base = path.parent
    problems: list[Violation] = []
    interval = scenario.time.market_interval_h
    if abs(24.0 / interval - round(24.0 / interval)) > 1e-9:
        problems.append(Violation("time.market_interval_h", interval, "must divide 24 h"))
    problems += network_file_violations(scenario.network.file, base)
    problems += _compare_violations(scenario)
    network = None
    if not problems or all(v.path != "network.file" for v in problems):
        name = scenario.network.file
        network = pjm5bus() if name is None else load_matpower(scenario_path(name, base))
    coc_bus, aggregator_bus = _bus_violations(scenario, network, problems)
    games = _game_violations(scenario, base, problems)
    if problems:
        raise ScenarioError(file, problems)
    assert network is not None
    return LoadedOneMarket(
        scenario,
        path.resolve(),
        hashlib.sha256(raw).hexdigest(),
        network,
        tuple(coc_bus),
        tuple(aggregator_bus),
        tuple(games),
    )


def _compare_violations(s: OneMarketScenario) -> list[Violation]:
    """A comparison must change something."""
    out = []
    if s.compare.storage and s.aggregators is None:
        rule = "compares with the aggregators' storage, but there is no [aggregators] table"
        out.append(Violation("compare.storage", True, rule))
    if s.compare.flexibility and not any(c.flexible for c in s.coc):
        rule = "compares with the households' flexibility, but every coc has flexible = false"
        out.append(Violation("compare.flexibility", True, rule))
    return out


def _resolve(bus: Bus, network: Network) -> int | str:
    """The bus index, or the rule it breaks."""
    n = network.n_buses
    if isinstance(bus, int):
        return bus if 0 <= bus < n else f"is not a bus index of {network.name} (0..{n - 1})"
    if bus in network.buses:
        return network.buses.index(bus)
    return f"is not a bus name of {network.name} (e.g. {', '.join(network.buses[:3])})"


def _bus_violations(
    s: OneMarketScenario, network: Network | None, problems: list[Violation]
) -> tuple[list[int], list[int]]:
    """Resolve every bus named; append what breaks a rule."""
    if network is None:
        return [], []
    coc_bus: list[int] = []
    for i, coc in enumerate(s.coc):
        found = _resolve(coc.bus, network)
        if isinstance(found, str):
            problems.append(Violation(f"coc[{i}].bus", coc.bus, found))
        elif found in coc_bus:
            other = coc_bus.index(found)
            rule = f"holds coc[{other}] already: one cluster-of-clusters per bus"
            problems.append(Violation(f"coc[{i}].bus", coc.bus, rule))
        coc_bus.append(found if isinstance(found, int) else -1)
    if s.aggregators is None:
        return coc_bus, []
    if s.aggregators.buses == "rest":
        nominal = network.nominal_demand_mw
        rest = [b for b in range(network.n_buses) if nominal[b] > 0 and b not in coc_bus]
        return coc_bus, rest
    aggregator_bus: list[int] = []
    for j, bus in enumerate(s.aggregators.buses):
        where = f"aggregators.buses[{j}]"
        found = _resolve(bus, network)
        if isinstance(found, str):
            problems.append(Violation(where, bus, found))
        elif found in coc_bus:
            rule = f"holds coc[{coc_bus.index(found)}]: an aggregator shares no bus with one"
            problems.append(Violation(where, bus, rule))
        elif found in aggregator_bus:
            problems.append(Violation(where, bus, "is listed twice"))
        aggregator_bus.append(found if isinstance(found, int) else -1)
    return coc_bus, aggregator_bus


def _game_violations(
    s: OneMarketScenario, base: Path, problems: list[Violation]
) -> list[LoadedScenario]:
    """Load each cluster-of-clusters' game scenario; append what breaks a rule."""
    games: list[LoadedScenario] = []
    interval = s.time.market_interval_h
    for i, coc in enumerate(s.coc):
        where = f"coc[{i}].game_file"
        file = scenario_path(coc.game_file, base)
        if not file.is_file():
            problems.append(Violation(where, coc.game_file, f"file not found ({file})"))
            continue
        try:
            loaded = load_scenario(file)
        except ScenarioError as exc:
            problems += [
                Violation(where, coc.game_file, f"{v.path}: {v.value!r}: {v.rule}")
                for v in exc.violations
            ]
            continue
        game = loaded.scenario
        if game.wholesale is not None:
            rule = "has a [wholesale] table: the one-market scenario names the network and bus"
            problems.append(Violation(where, coc.game_file, rule))
        if abs(game.time.horizon_h - 24.0) > 1e-9:
            problems.append(Violation(where, coc.game_file, "time.horizon_h must be 24 h"))
        ratio = interval / game.time.dt_h
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            rule = f"its control step {game.time.dt_h} h must divide time.market_interval_h"
            problems.append(Violation(where, coc.game_file, rule))
        elif games and game.time.dt_h != games[0].scenario.time.dt_h:
            first = games[0].scenario.time.dt_h
            rule = f"its control step {game.time.dt_h} h differs from the first's ({first} h)"
            problems.append(Violation(where, coc.game_file, rule))
        games.append(loaded)
    return games
