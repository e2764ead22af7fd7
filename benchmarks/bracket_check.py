"""Check: a deviation co-simulated on its own falls inside the local ε_N bracket.

The fine-grid price taker (the best response to the law's mean-field prices on
a SoE grid 8× finer than the law's, :mod:`cosim.studies.price_taker`) is a
feasible deviation of the local-information class, measured here the
independent way: co-simulated as the deviator against N − 1 households on the
law, paired runs with common random numbers. The bracket of
:mod:`cosim.studies.bracket` is computed on its own samples of the finite
game. Per cluster and size, with simultaneous 95 % intervals on both sides:

- ``gain_within_upper``: the co-simulated gain is not above the upper bound
  (its interval's lower end ≤ the upper bound's interval's upper end) — the
  upper bound bounds **every** deviation of the class;
- ``lower_not_below_gain``: the lower bound is not below that gain beyond the
  intervals (the lower bound's upper end ≥ the gain's lower end) — the lower
  bound's deviation is at least as good as this one.

Prints one JSON line per size and a JSON summary; the exit status is 1 when a
check fails.

    python benchmarks/bracket_check.py [SCENARIO] [--sizes 20,2000] [--reps 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cosim.scenario.game import load_scenario
from cosim.studies.epsilon import estimate_epsilon_nash
from cosim.studies.law_under_test import LawUnderTest
from cosim.studies.price_taker import measure_price_taker_gap
from models.equilibrium import solve_equilibrium
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]
#: How many times finer than the law's grid the co-simulated price taker's grid is.
DEVIATOR_REFINE = 8


def check_size(law: LawUnderTest, size: int, reps: int, seed: int, work: Path) -> dict:
    """The bracket and the co-simulated price taker's gain at ``size`` households per cluster."""
    households = np.full(law.game.n_clusters, size)
    t0 = time.perf_counter()
    bracket = estimate_epsilon_nash(law, households, reps, seed, work / f"n{size}").gaps
    t1 = time.perf_counter()
    gain = measure_price_taker_gap(law, households, reps, seed + 1, DEVIATOR_REFINE).per_cluster
    t2 = time.perf_counter()
    clusters = []
    for p, row in bracket.set_index("cluster").iterrows():
        g = gain.loc[p]
        clusters.append(
            {
                "cluster": int(p),
                "lower": [row["lower"], row["lower_lo"], row["lower_hi"]],
                "gain": [float(g["mean"]), float(g["lo"]), float(g["hi"])],
                "upper": [row["upper"], row["upper_lo"], row["upper_hi"]],
                "gain_within_upper": bool(g["lo"] <= row["upper_hi"]),
                "lower_not_below_gain": bool(row["lower_hi"] >= g["lo"]),
            }
        )
    return {
        "households": int(households.sum()),
        "replications": reps,
        "clusters": clusters,
        "passed": all(c["gain_within_upper"] and c["lower_not_below_gain"] for c in clusters),
        "seconds_bracket": round(t1 - t0, 1),
        "seconds_cosimulation": round(t2 - t1, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/eps_convergence.toml"))
    parser.add_argument("--sizes", default="20,2000", help="households per cluster")
    parser.add_argument("--reps", type=int, default=64, help="replications on each side")
    args = parser.parse_args()

    loaded = load_scenario(args.scenario)
    game = build_game(loaded.scenario, loaded.base_dir)
    result = solve_equilibrium(game, loaded.scenario.simulation.mode)
    law = LawUnderTest.from_equilibrium(result)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bracket-check-") as work:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(check_size(law, size, args.reps, loaded.scenario.seed, Path(work)))
            print(json.dumps(rows[-1]), flush=True)
    passed = all(r["passed"] for r in rows)
    print(
        json.dumps(
            {
                "check": "bracket_holds_cosimulated_price_taker",
                "scenario": loaded.scenario.scenario.name,
                "deviator_refine": DEVIATOR_REFINE,
                "sizes": [r["households"] for r in rows],
                "passed": passed,
            },
            indent=2,
        )
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
