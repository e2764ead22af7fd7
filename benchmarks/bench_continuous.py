"""Benchmark: the law's exploitability in the continuous game against grid, scheme and seconds.

For each variant — SoE grid points of the home battery and of the EV, and the
continuation's interpolation (``cubic`` or ``linear``) — solves the scenario's
equilibrium (warm JIT cache) and prints, as JSON, its seconds (the solve, and
the continuous-game measurement on a grid ``CONTINUOUS_REFINE`` times finer),
its iterations, its own-grid residual and its exploitability in the continuous
game (max and median over clusters). This is the table of docs/performance.md,
"Exploitability in the continuous game".

    python benchmarks/bench_continuous.py [SCENARIO] [--variants cubic:101:201,linear:101:101]
        [--check-refine 16]

``--check-refine R`` also measures the last variant's law against a grid ``R``
times finer, to show the reference has settled.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cosim.scenario.game import load_scenario
from models.equilibrium import solve_equilibrium
from models.exploitability import continuous_exploitability
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = "linear:101:101,cubic:101:101,cubic:101:201,cubic:101:397,linear:201:201"


def _variant(text: str) -> tuple[str, int, int]:
    scheme, ess, ev = text.split(":")
    return scheme, int(ess), int(ev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/paper_gmfg.toml"))
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--check-refine", type=int, default=0)
    args = parser.parse_args()

    loaded = load_scenario(args.scenario)
    mode = loaded.scenario.simulation.mode
    rows = []
    for scheme, ess, ev in map(_variant, args.variants.split(",")):
        solver = loaded.scenario.solver.model_copy(
            update={"soe_points": ess, "ev_soe_points": ev, "continuation": scheme}
        )
        game = build_game(loaded.scenario.model_copy(update={"solver": solver}), loaded.base_dir)
        solve_equilibrium(game, mode)  # warm the JIT cache for these grids
        t0 = time.perf_counter()
        result = solve_equilibrium(game, mode)
        seconds = time.perf_counter() - t0
        row = {
            "continuation": scheme,
            "ess_points": ess,
            "ev_points": ev,
            "seconds": round(seconds, 2),
            "solve_seconds": round(seconds - result.continuous_seconds, 2),
            "measure_seconds": round(result.continuous_seconds, 2),
            "iterations": result.iterations,
            "own_grid_residual": result.exploitability,
            "exploitability_continuous_max": result.exploitability_continuous,
            "exploitability_continuous_median": float(
                np.median(result.exploitability_continuous_by_cluster)
            ),
            "tolerance": solver.exploitability_tolerance,
            "converged": result.converged,
        }
        if args.check_refine:
            finer = continuous_exploitability(
                result.game, result.prices, result.policy, args.check_refine
            )
            row[f"exploitability_continuous_max_refine_{args.check_refine}"] = float(np.max(finer))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "continuous_exploitability",
                "scenario": loaded.scenario.scenario.name,
                "mode": mode,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
