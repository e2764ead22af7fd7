"""A one-market run end to end: the outer fixed point, the finite-N run, tables and summary.

``cosim run`` on a one-market scenario (``[[coc]]`` tables) calls
:func:`run_one_market` and writes :meth:`OneMarketOutcome.save`'s directory:

- ``fixed_point.parquet``: the outer fixed point's residuals per iteration;
- ``mean_field_lmp.parquet``: the expected day's LMP per market interval and bus;
- ``lmp.parquet``: the run's LMP per market interval and bus;
- ``cocs.parquet``: per interval and CoC: import, LMP at its bus, ``p_G``;
- ``aggregators.parquet``: per interval and aggregator: storage, mean SoE, belief;
- ``dispatch.parquet``: per interval: generation, shed, dumped, demand;
- ``coc-<i>/``: each CoC's simulation tables (:class:`~cosim.sim.simulation.SimulationResult`);
- with ``[compare]`` (:func:`run_comparison`): ``comparison.parquet``, one row of
  :meth:`OneMarketOutcome.measures` per run, and ``variants/<name>/``, each
  counterfactual's tables as above.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cosim.scenario.one_market import LoadedOneMarket
from cosim.sim.one_market import OneMarketRun, OneMarketRunResult
from cosim.studies.montecarlo import worker_pool
from market.metrics import ex_post_cost, imv, scarcity_steps
from models.checksums import write_checksums
from models.one_market import (
    OneMarketEquilibrium,
    build_one_market,
    criterion_met,
    solve_one_market,
)

__all__ = [
    "OneMarketComparison",
    "OneMarketOutcome",
    "run_comparison",
    "run_one_market",
    "solve_outer",
]


@dataclass
class OneMarketOutcome:
    """The outer fixed point and the finite-N run of one scenario."""

    loaded: LoadedOneMarket
    equilibrium: OneMarketEquilibrium
    run: OneMarketRunResult
    seconds: dict[str, float]

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table of the result (module docstring), long format."""
        eq, rec = self.equilibrium, self.run.record
        market = eq.market
        names = list(market.network.buses)
        rows, buses = rec.lmp.shape
        interval = np.arange(rows)
        hour = (interval % market.intervals) * market.interval_h
        time_cols = {"interval": interval, "day": interval // market.intervals, "hour": hour}

        def per(values: np.ndarray, key: str, labels: list) -> pd.DataFrame:
            n = values.shape[1]
            return pd.DataFrame(
                {
                    **{k: np.repeat(v, n) for k, v in time_cols.items()},
                    key: np.tile(labels, rows),
                    "value": values.ravel(),
                }
            )

        lmp = per(rec.lmp, "bus", names).rename(columns={"value": "lmp"})
        cocs = per(rec.imports_mw, "coc", list(range(len(market.cocs)))).rename(
            columns={"value": "import_mw"}
        )
        coc_bus = np.array([m.bus for m in market.cocs])
        adder = np.array([m.retail_adder for m in market.cocs])
        cocs["bus"] = np.tile([names[b] for b in coc_bus], rows)
        cocs["lmp"] = rec.lmp[:, coc_bus].ravel()
        cocs["p_grid"] = cocs["lmp"] / 1000.0 + np.tile(adder, rows)
        agg_bus = [] if market.aggregators is None else list(market.aggregators.bus)
        aggregators = per(rec.storage_mw, "aggregator", list(range(len(agg_bus))))
        aggregators = aggregators.rename(columns={"value": "storage_mw"})
        aggregators["bus"] = np.tile([names[b] for b in agg_bus], rows)
        aggregators["soe"] = rec.soe.ravel()
        aggregators["belief"] = rec.belief.ravel()
        dispatch = pd.DataFrame(
            {
                **time_cols,
                "generation_mw": rec.generation_mw,
                "shed_mw": rec.shed_mw,
                "surplus_mw": rec.surplus_mw,
                "demand_mw": rec.demand_mw.sum(axis=1),
            }
        )
        mf = eq.lmp
        mean_field = pd.DataFrame(
            {
                "interval": np.repeat(np.arange(mf.shape[0]), buses),
                "hour": np.repeat(np.arange(mf.shape[0]) * market.interval_h, buses),
                "bus": np.tile(names, mf.shape[0]),
                "lmp": mf.ravel(),
            }
        )
        return {
            "fixed_point": pd.DataFrame(eq.history),
            "mean_field_lmp": mean_field,
            "lmp": lmp,
            "cocs": cocs,
            "aggregators": aggregators,
            "dispatch": dispatch,
        }

    def criterion(self) -> str:
        """The criterion the outer fixed point met (:func:`models.one_market.criterion_met`)."""
        eq = self.equilibrium
        if not eq.converged:
            return "none"
        return criterion_met(eq.history[-1], self.loaded.scenario.outer.tolerance_mw)

    @cached_property
    def interval_costs(self) -> tuple[np.ndarray, np.ndarray]:
        """Ex-post cost of every market interval of the run [$] (seed 003 §5.2), and
        which intervals are scarcity intervals (:func:`market.metrics.scarcity_steps`)."""
        rec, interval_h = self.run.record, self.equilibrium.market.interval_h
        cost = ex_post_cost(rec.demand_mw, rec.lmp, interval_h)
        voll = self.loaded.scenario.dispatch.value_of_lost_load
        return cost, scarcity_steps(rec.lmp, rec.shed_mw, voll)

    def measures(self) -> dict[str, float]:
        """The run's market and household figures (what the comparisons set side by side).

        Over every market interval of the run: LMP mean and peak; IMV (eq. (16) of
        seed 003) per bus, averaged over all buses and over the CoCs' buses;
        ex-post cost (every bid × its LMP), also without the scarcity intervals
        (load shed or an LMP at the value of lost load); the CoCs' peak total
        import; the households' mean cost per household-day (bills and private
        costs, weighted by the households each CoC stands for).
        """
        market, res = self.equilibrium.market, self.run
        rec = res.record
        cost, scarce = self.interval_costs
        volatility = np.asarray(imv(rec.lmp, axis=0))
        weights = np.array([m.households for m in market.cocs], dtype=float)
        per_coc = np.array([c.households["cost"].mean() for c in res.cocs])
        return {
            "mean_lmp": float(rec.lmp.mean()),
            "peak_lmp": float(rec.lmp.max()),
            "imv_mean_over_buses": float(volatility.mean()),
            "imv_coc_buses": float(volatility[[m.bus for m in market.cocs]].mean()),
            "ex_post_cost": float(cost.sum()),
            "ex_post_cost_without_scarcity": float(cost[~scarce].sum()),
            "scarcity_intervals": int(scarce.sum()),
            "shed_mwh": float(rec.shed_mw.sum() * market.interval_h),
            "coc_import_peak_mw": float(rec.imports_mw.sum(axis=1).max()),
            "household_cost_per_day": float(weights @ per_coc / weights.sum()),
        }

    def summary(self) -> dict:
        """What the command prints: the fixed point, the run's checks, costs and prices."""
        eq, res = self.equilibrium, self.run
        market = eq.market
        names = market.network.buses
        return {
            "scenario": self.loaded.scenario.scenario.name,
            "fixed_point": {
                "converged": eq.converged,
                "iterations": len(eq.history),
                "last": eq.history[-1] if eq.history else {},
                "criterion": self.criterion(),
                "laws_converged": [law.converged for law in eq.laws],
            },
            "days": self.loaded.scenario.time.days,
            "market_interval_h": market.interval_h,
            "mean_field_lmp": {
                names[b]: [round(float(x), 4) for x in eq.lmp[:, b]] for b in range(len(names))
            },
            "run": {
                "checks": res.checks,
                "coc_checks": [c.checks for c in res.cocs],
                **self.measures(),
                "coc_cost_per_household_day": [
                    float(c.households["cost"].mean()) for c in res.cocs
                ],
            },
            "seconds": self.seconds,
        }

    def save(self, directory: Path) -> None:
        """Write every table (Parquet) and each CoC's simulation into ``directory``."""
        files = []
        for name, table in self.tables().items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
            files.append(f"{name}.parquet")
        write_checksums(directory, files)
        for c, sim in enumerate(self.run.cocs):
            sim.save(directory / f"coc-{c}")


def solve_outer(
    loaded: LoadedOneMarket,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    on_law: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> OneMarketEquilibrium:
    """The outer fixed point of ``loaded`` (:func:`models.one_market.solve_one_market`).

    The CoCs' responses of each outer iteration are solved side by side in
    ``workers`` processes (default: one per CoC, at most one per core); the
    numbers do not depend on it.
    """
    s = loaded.scenario
    games = tuple((g.scenario, g.base_dir) for g in loaded.games)
    market = build_one_market(s, loaded.network, loaded.coc_bus, loaded.aggregator_bus, games)
    workers = min(len(s.coc), os.cpu_count() or 1) if workers is None else workers
    if workers > 1:
        with worker_pool(workers) as pool:
            return solve_one_market(
                market, s, on_iteration=on_iteration, on_law=on_law, map_tasks=pool.map
            )
    return solve_one_market(market, s, on_iteration=on_iteration, on_law=on_law)


def run_one_market(
    loaded: LoadedOneMarket,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    on_law: Callable[[int, int], None] | None = None,
    households: list[int] | None = None,
    workers: int | None = None,
) -> OneMarketOutcome:
    """The outer fixed point (:func:`solve_outer`), then the finite-N run of ``loaded``."""
    start = time.perf_counter()
    equilibrium = solve_outer(loaded, on_iteration, on_law, workers)
    solved = time.perf_counter()
    result = OneMarketRun(equilibrium, loaded.scenario, households).run()
    seconds = {
        "fixed_point": round(solved - start, 2),
        "finite_n_run": round(time.perf_counter() - solved, 2),
    }
    return OneMarketOutcome(loaded, equilibrium, result, seconds)


@dataclass
class OneMarketComparison:
    """The scenario's run and its counterfactuals, paired on one seed
    (:meth:`models.one_market_config.OneMarketScenario.variants`)."""

    outcomes: dict[str, OneMarketOutcome]
    """``"as_given"`` first, then ``"no_flexibility"``, ``"no_storage"``, ``"neither"``
    as the scenario's ``[compare]`` asks."""

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per run: what changed, whether its fixed point converged, its measures.

        ``ex_post_cost_paired`` leaves out every interval that is a scarcity
        interval in *any* of the runs (paired: the same intervals in every row);
        ``ex_post_cost_without_scarcity`` leaves out the run's own.
        """
        kept = ~np.any([o.interval_costs[1] for o in self.outcomes.values()], axis=0)
        rows = []
        for name, outcome in self.outcomes.items():
            s, eq = outcome.loaded.scenario, outcome.equilibrium
            rows.append(
                {
                    "variant": name,
                    "flexible_cocs": sum(c.flexible for c in s.coc),
                    "aggregators": 0
                    if eq.market.aggregators is None
                    else eq.market.aggregators.bus.size,
                    "converged": eq.converged,
                    "criterion": outcome.criterion(),
                    "iterations": len(eq.history),
                    **outcome.measures(),
                    "ex_post_cost_paired": float(outcome.interval_costs[0][kept].sum()),
                    "intervals_paired": int(kept.sum()),
                }
            )
        return pd.DataFrame(rows)

    def save(self, directory: Path) -> None:
        """``comparison.parquet``, and every counterfactual's tables in ``variants/<name>/``
        (the scenario's own are the caller's to write)."""
        self.table.to_parquet(directory / "comparison.parquet", index=False)
        for name, outcome in self.outcomes.items():
            if name != "as_given":
                folder = directory / "variants" / name
                folder.mkdir(parents=True)
                outcome.save(folder)


def run_comparison(
    loaded: LoadedOneMarket,
    on_variant: Callable[[str], None] | None = None,
    **options: Any,
) -> OneMarketComparison:
    """:func:`run_one_market` on the scenario and on each counterfactual its
    ``[compare]`` table asks for (``options`` go to every run)."""
    outcomes = {}
    for name, scenario in loaded.scenario.variants().items():
        if on_variant is not None:
            on_variant(name)
        outcomes[name] = run_one_market(replace(loaded, scenario=scenario), **options)
    return OneMarketComparison(outcomes)
