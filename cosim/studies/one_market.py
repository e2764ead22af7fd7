"""A one-market run end to end: the outer fixed point, the finite-N run, tables and summary.

``cosim run`` on a one-market scenario (``[[coc]]`` tables) calls
:func:`run_one_market` and writes :meth:`OneMarketOutcome.save`'s directory:

- ``fixed_point.parquet``: the outer fixed point's residuals per iteration;
- ``mean_field_lmp.parquet``: the expected day's LMP per market interval and bus;
- ``lmp.parquet``: the run's LMP per market interval and bus;
- ``cocs.parquet``: per interval and CoC: import, LMP at its bus, ``p_G``;
- ``aggregators.parquet``: per interval and aggregator: storage, mean SoE, belief;
- ``dispatch.parquet``: per interval: generation, shed, dumped, demand;
- ``coc-<i>/``: each CoC's simulation tables (:class:`~cosim.sim.simulation.SimulationResult`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.scenario.one_market import LoadedOneMarket
from cosim.sim.one_market import OneMarketRun, OneMarketRunResult
from cosim.studies.montecarlo import worker_pool
from market.metrics import ex_post_cost, imv
from models.checksums import write_checksums
from models.one_market import OneMarketEquilibrium, build_one_market, solve_one_market

__all__ = ["OneMarketOutcome", "run_one_market"]


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

    def summary(self) -> dict:
        """What the command prints: the fixed point, the run's checks, costs and prices."""
        eq, res = self.equilibrium, self.run
        market, rec = eq.market, res.record
        names = market.network.buses
        bids = rec.demand_mw
        return {
            "scenario": self.loaded.scenario.scenario.name,
            "fixed_point": {
                "converged": eq.converged,
                "iterations": len(eq.history),
                "last": eq.history[-1] if eq.history else {},
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
                "mean_lmp": float(rec.lmp.mean()),
                "imv_mean_over_buses": float(np.mean(imv(rec.lmp, axis=0))),
                "ex_post_cost": float(ex_post_cost(bids, rec.lmp, market.interval_h).sum()),
                "shed_mwh": float(rec.shed_mw.sum() * market.interval_h),
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


def run_one_market(
    loaded: LoadedOneMarket,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    on_law: Callable[[int, int], None] | None = None,
    households: list[int] | None = None,
    workers: int | None = None,
) -> OneMarketOutcome:
    """The outer fixed point, then the finite-N run of ``loaded`` (see the module docstring).

    The CoCs' responses of each outer iteration are solved side by side in
    ``workers`` processes (default: one per CoC, at most one per core); the
    numbers do not depend on it.
    """
    s = loaded.scenario
    start = time.perf_counter()
    games = tuple((g.scenario, g.base_dir) for g in loaded.games)
    market = build_one_market(s, loaded.network, loaded.coc_bus, loaded.aggregator_bus, games)
    workers = min(len(s.coc), os.cpu_count() or 1) if workers is None else workers
    if workers > 1:
        with worker_pool(workers) as pool:
            equilibrium = solve_one_market(
                market, s, on_iteration=on_iteration, on_law=on_law, map_tasks=pool.map
            )
    else:
        equilibrium = solve_one_market(market, s, on_iteration=on_iteration, on_law=on_law)
    solved = time.perf_counter()
    result = OneMarketRun(equilibrium, s, households).run()
    seconds = {
        "fixed_point": round(solved - start, 2),
        "finite_n_run": round(time.perf_counter() - solved, 2),
    }
    return OneMarketOutcome(loaded, equilibrium, result, seconds)
