"""Benchmark: the households priced by the wholesale market (docs/coupling.md).

For each coupled scenario (the built-in PJM 5-bus one always, Hawaii40 when
``hawaii40.m`` is in ``$COSIM_DATA_DIR``, else in ``../shared/data``) prints
JSON: the seconds to build the game (the expected-LMP table: one dispatch per
step and import level), to solve its CoC equilibrium (warm JIT cache), and to
co-simulate the scenario's households for one day with one dispatch per step;
plus the LMP range and the wholesale energy balance of that run. No target in
SPEC §9: this is what the coupling costs.

    python benchmarks/bench_coupling.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from cosim.scenario.game import ScenarioError, load_scenario
from cosim.sim.simulation import simulate
from models.equilibrium import solve_equilibrium
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]
#: The user's data directory (docs/data.md), else the developers' copy beside the checkout.
DATA_DIR = Path(os.environ.get("COSIM_DATA_DIR") or ROOT.parent / "shared" / "data")
SCENARIOS = ("cosim_full_pjm5.toml", "cosim_full.toml")


def measure(path: Path) -> dict:
    """Build, solve and co-simulate one coupled scenario; seconds and what came out."""
    loaded = load_scenario(path)
    start = time.perf_counter()
    game = build_game(loaded.scenario, loaded.base_dir)
    built = time.perf_counter() - start
    start = time.perf_counter()
    result = solve_equilibrium(game, "coc")
    solved = time.perf_counter() - start
    run = simulate(result, seed=1)
    lmp = 1000.0 * (result.game.grid_price - game.wholesale.retail_adder)
    return {
        "scenario": path.name,
        "buses": game.wholesale.network.n_buses,
        "steps": game.steps,
        "lmp_table_points": int(game.wholesale.expected_lmp.size),
        "build_seconds": round(built, 3),
        "solve_seconds": round(solved, 3),
        "converged": result.converged,
        "iterations": result.iterations,
        "simulate_seconds": round(run.seconds, 3),
        "households": int(run.households["household"].nunique()),
        "lmp_mean_field_range": [float(np.min(lmp)), float(np.max(lmp))],
        "wholesale_balance": run.checks["wholesale_balance"],
    }


def main() -> None:
    os.environ["COSIM_DATA_DIR"] = str(DATA_DIR)  # what cosim_full.toml's network file names
    warm = load_scenario(ROOT / "scenarios" / SCENARIOS[0])  # compile the kernels first
    solve_equilibrium(build_game(warm.scenario, warm.base_dir), "coc")
    out = []
    for name in SCENARIOS:
        path = ROOT / "scenarios" / name
        try:
            out.append(measure(path))
        except ScenarioError as exc:  # Hawaii40 not downloaded
            out.append({"scenario": name, "skipped": str(exc).splitlines()[0]})
    print(json.dumps({"benchmark": "coupling", "runs": out}, indent=2))


if __name__ == "__main__":
    main()
