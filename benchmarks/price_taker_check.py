"""Check: what the fine-grid price taker gains against the law in the co-simulation.

The deviator plays the best response to the law's mean-field prices on a SoE
grid 8× finer (:mod:`cosim.studies.price_taker`), at its own continuous state;
every other household applies the law. Paired runs (common random numbers),
one day each, one deviator per cluster. Prints JSON per size: the per-cluster
mean gains with simultaneous 95 % intervals, the largest with its interval,
the gain pooled over clusters with its standard error, and the law's
exploitability in the continuous game — what the gain tends to when the
deviator's own price effect vanishes.

    python benchmarks/price_taker_check.py [SCENARIO] [--sizes 2,20,200,2000] [--reps 32]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from cosim.scenario.game import load_scenario
from cosim.studies.law_under_test import LawUnderTest
from cosim.studies.price_taker import measure_price_taker_gap
from models.equilibrium import solve_equilibrium
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/eps_convergence.toml"))
    parser.add_argument("--sizes", default="2,20,200,2000", help="households per cluster")
    parser.add_argument("--reps", type=int, default=32)
    args = parser.parse_args()

    loaded = load_scenario(args.scenario)
    game = build_game(loaded.scenario, loaded.base_dir)
    result = solve_equilibrium(game, loaded.scenario.simulation.mode)
    law = LawUnderTest.from_equilibrium(result)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        households = np.full(game.n_clusters, size)
        t0 = time.perf_counter()
        measured = measure_price_taker_gap(law, households, args.reps, loaded.scenario.seed)
        per, (worst, lo, hi, cluster) = measured.per_cluster, measured.largest
        gap = measured.rows["gap"]
        rows.append(
            {
                "households": int(households.sum()),
                "replications": args.reps,
                "gain_by_cluster": per["mean"].round(8).tolist(),
                "interval_by_cluster": per[["lo", "hi"]].round(8).values.tolist(),
                "gain_max": worst,
                "gain_max_interval": [lo, hi],
                "gain_max_cluster": cluster,
                "gain_pooled": float(gap.mean()),
                "gain_pooled_se": float(gap.std(ddof=1) / np.sqrt(len(gap))),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "check": "price_taker_gain",
                "scenario": loaded.scenario.scenario.name,
                "converged": result.converged,
                "exploitability_continuous_by_cluster": (
                    result.exploitability_continuous_by_cluster.tolist()
                ),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
