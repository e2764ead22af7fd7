"""Benchmark: GMFG solve of the paper scenario (100 clusters, K = 96, default grids).

Prints JSON: wall-clock seconds of a warm solve (JIT cache warm: one solve runs
first) — including the law's exploitability in the continuous game, measured on
a grid 8× finer (``continuous_seconds`` of it) — fixed-point iterations, seconds
per iteration, and the battery HJB's
state–control evaluations per second (one evaluation = one SoE grid point at
one step, minimised exactly over its continuous control). Target (SPEC §9): ≤ 10 s on 2 cores,
independent of the number of households.

    python benchmarks/bench_gmfg.py [SCENARIO] [--mode coc]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numba
import numpy as np

from cosim.scenario.game import load_scenario
from models import kernels
from models.equilibrium import solve_equilibrium
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]


def hjb_throughput(game, repeats: int = 3) -> float:
    """Battery HJB grid-point evaluations per second (both batteries, all clusters), with
    the scenario's continuation."""
    m, k = game.n_clusters, game.steps
    smooth = game.config.solver.continuation == "cubic"  # the scheme the solve uses
    price = np.full((m, k), float(np.mean(game.grid_price)) * 0.8)
    points = 0
    start = time.perf_counter()
    for _ in range(repeats):
        for grid in (game.ess, game.ev):
            s = len(grid.soe)
            value = np.empty((m, k + 1, s))
            away = np.empty_like(value)
            control = np.empty((m, k, s))
            kernels.battery_backward(
                price, game.dt_h, *grid.kernel_args(), value, away, control, smooth
            )
            points += m * k * s
    return points / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/paper_gmfg.toml"))
    parser.add_argument("--mode", default="coc")
    args = parser.parse_args()

    loaded = load_scenario(args.scenario)
    t0 = time.perf_counter()
    game = build_game(loaded.scenario, loaded.base_dir)
    build_seconds = time.perf_counter() - t0
    solve_equilibrium(game, args.mode)  # warm the JIT cache
    t0 = time.perf_counter()
    result = solve_equilibrium(game, args.mode)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "benchmark": "gmfg_solve",
                "scenario": loaded.scenario.scenario.name,
                "mode": args.mode,
                "clusters": game.n_clusters,
                "steps": game.steps,
                "soe_points": len(game.ess.soe),
                "seconds": round(seconds, 3),
                "target_seconds": 10.0,
                "iterations": result.iterations,
                "seconds_per_iteration": round(seconds / result.iterations, 4),
                "converged": result.converged,
                "exploitability": result.exploitability,
                "exploitability_continuous": result.exploitability_continuous,
                "continuous_seconds": round(result.continuous_seconds, 3),
                "price_residual": result.price_residual,
                "hjb_state_control_evaluations_per_second": round(hjb_throughput(game)),
                "game_build_seconds": round(build_seconds, 3),
                "threads": numba.get_num_threads(),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
