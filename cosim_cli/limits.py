"""Limits checked before a command starts: its memory against the machine's, its time noted.

Every command that solves or simulates prices its run from the scenario and
its options (:mod:`cosim.scenario.limits`) right after the scenario is
loaded, before any game is built or file written. A part that cannot fit in
memory is a violation like any other of the scenario — one line naming the
field or option that drives it, its value, the estimate and the memory there
is, exit status 2 — and ``cosim validate`` reports what ``cosim run`` would
need. A run estimated to take longer than ten minutes gets one note on
standard error (not under ``--quiet``); time is never refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

import numpy as np

from cosim.scenario.game import LoadedScenario, Scenario, ScenarioError
from cosim.scenario.limits import (
    MEMORY_VARIABLE,
    Cost,
    limit_violations,
    memory_limit,
    simulation_cost,
    solve_cost,
    time_note,
)
from cosim.scenario.one_market import LoadedOneMarket
from cosim_cli.epsilon import DEFAULT_SIZES, parse_counts
from market.schema import Violation

#: Equilibria each command solves (``validate`` checks what ``run`` would do).
SOLVES = {"validate": 3, "solve": 1, "compare-modes": 3, "simulate": 1, "run": 3, "epsilon": 1}
#: Commands that simulate the finite population as the scenario says.
SIMULATING = ("validate", "simulate", "run")


def check_limits(args: argparse.Namespace, loaded: LoadedScenario) -> None:
    """Refuse a run that cannot fit in memory; note on stderr one that will take long.

    Raises
    ------
    ScenarioError
        One violation per part of the run that cannot fit, naming the field or
        option that drives it (reported as an invalid scenario is: exit 2).
    """
    _check(args, run_costs(args, loaded.scenario))


def check_one_market_limits(args: argparse.Namespace, loaded: LoadedOneMarket) -> None:
    """:func:`check_limits` for a one-market scenario: each CoC's law and its finite-N run."""
    _check(args, one_market_costs(loaded))


def check_one_market_epsilon_limits(args: argparse.Namespace, loaded: LoadedOneMarket) -> None:
    """:func:`check_limits` for ``cosim epsilon`` on a one-market scenario: every CoC's law
    (the outer fixed point), and the study of ``--coc``'s game."""
    solves = [solve_cost(game.scenario, 1) for game in loaded.games]
    coc = args.coc if args.coc is not None and args.coc < len(loaded.games) else 0
    _check(args, solves + _epsilon_costs(args, loaded.games[coc].scenario)[1:])


def _check(args: argparse.Namespace, costs: list[Cost]) -> None:
    file = args.scenario
    try:
        limit = memory_limit()
    except ValueError as err:
        violation = Violation(MEMORY_VARIABLE, os.environ.get(MEMORY_VARIABLE), str(err))
        raise ScenarioError(file, [violation]) from None
    problems = limit_violations(costs, limit)
    if problems:
        raise ScenarioError(file, problems)
    note = time_note(costs)
    if note is not None and not getattr(args, "quiet", False):
        whose = "cosim run" if args.command == "validate" else "this"
        print(f"cosim {args.command}: note: {whose} will take {note}", file=sys.stderr)


def one_market_costs(loaded: LoadedOneMarket) -> list[Cost]:
    """Each CoC's equilibrium (all are kept) and its households simulated over the days.

    The households a CoC stands for are all simulated, split over its clusters
    as its game's ``clusters.households`` are; memory and time count every
    run of ``[compare]`` (each run's results are kept until the comparison is written).
    """
    s = loaded.scenario
    costs = []
    for i, (coc, game) in enumerate(zip(s.coc, loaded.games, strict=True)):
        config = game.scenario
        shares = np.broadcast_to(
            np.asarray(config.clusters.households, dtype=float), (config.clusters.count,)
        )
        per_cluster = [max(1, round(coc.households * h / shares.sum())) for h in shares]
        costs.append(solve_cost(config, 1))
        sim = simulation_cost(
            config, per_cluster, s.time.days, False, f"coc[{i}].households", "time.days"
        )
        # the message names the field's value, not its split over the clusters
        costs.append(sim if sim.path == "time.days" else replace(sim, value=coc.households))
    # [compare] runs them one after the other and keeps every run's results for the comparison
    runs = len(s.variants())
    if runs == 1:
        return costs
    return [
        replace(c, bytes=c.bytes * runs, seconds=c.seconds * runs, sizes=f"{c.sizes}, {runs} runs")
        for c in costs
    ]


def run_costs(args: argparse.Namespace, scenario: Scenario) -> list[Cost]:
    """The parts of the run ``args.command`` makes of ``scenario``, with their costs."""
    command = args.command
    if command == "epsilon":
        return _epsilon_costs(args, scenario)
    costs = [solve_cost(scenario, SOLVES.get(command, 1))]
    if command in SIMULATING:
        sim = scenario.simulation
        households_path, households = "clusters.households", scenario.clusters.households
        if getattr(args, "households_per_cluster", None):
            households_path, households = "--households-per-cluster", args.households_per_cluster
        elif sim.households_per_cluster is not None:
            households_path = "simulation.households_per_cluster"
            households = sim.households_per_cluster
        days_path, days = "simulation.days", sim.days
        if getattr(args, "days", None):
            days_path, days = "--days", args.days
        reference = bool(getattr(args, "reference_path", False))
        costs.append(
            simulation_cost(scenario, households, days, reference, households_path, days_path)
        )
    return costs


def _epsilon_costs(args: argparse.Namespace, scenario: Scenario) -> list[Cost]:
    """The law's solve (the largest ``--clusters``), and one replication per worker.

    A replication of the largest size is priced as a one-day simulation — the
    least a replication holds; its time, and the number of replications, are
    the study's own (the note gives the solve's alone).
    """
    clusters = parse_counts(args.clusters)
    sizes = parse_counts(args.sizes if args.sizes is not None else DEFAULT_SIZES)
    m = max(clusters) if clusters else scenario.clusters.count
    path = "--clusters" if clusters else "clusters.count"
    costs = [solve_cost(scenario, 1, m, path)]
    if sizes:
        population = simulation_cost(scenario, [max(sizes)] * m, 1, copies=args.workers)
        what = "a replication" if args.workers == 1 else f"{args.workers} replications at once"
        costs.append(Cost(what, "--sizes", max(sizes), population.bytes, 0.0, population.sizes))
    return costs
