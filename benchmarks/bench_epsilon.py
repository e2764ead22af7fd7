"""Benchmark: an ε_N convergence study up to N = 2·10⁵ households with R = 16.

Prints JSON with the wall time of the whole study (equilibrium solve, then per
size the R replications of the finite game sampling the others' aggregates and
the bracket on them: the fine-grid deviation's and the law's own paths, 4000
copies per cluster, and the dynamic programs of both bounds), the time per
size, and the study's table (ε_N bracketed with both CIs, J^N − J^∞ and the
price error, local information).

Scenario: ``scenarios/eps_convergence.toml`` (M = 4, hourly steps); sizes 2 …
50 000 households per cluster, so N = 8 … 200 000. Target: ≤ 15 min on this
machine.

    python benchmarks/bench_epsilon.py [--workers W] [--reps R] [--max-per-cluster N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from cosim.scenario.game import load_scenario
from cosim.studies.epsilon import LawUnderTest
from cosim.studies.epsilon_study import run_study
from models.equilibrium import solve_equilibrium
from models.game import build_game

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "eps_convergence.toml"
TARGET_SECONDS = 900.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=16)
    parser.add_argument("--max-per-cluster", type=int, default=50_000)
    args = parser.parse_args()
    sizes = [n for n in (2, 20, 200, 2_000, 20_000, 50_000) if n <= args.max_per_cluster]

    start = time.perf_counter()
    loaded = load_scenario(SCENARIO)
    game = build_game(loaded.scenario, loaded.base_dir)
    equilibrium = solve_equilibrium(game, loaded.scenario.simulation.mode)
    solve_s = time.perf_counter() - start
    law = LawUnderTest.from_equilibrium(equilibrium)
    with tempfile.TemporaryDirectory() as work:
        table, _, rate = run_study(
            law,
            sizes,
            args.reps,
            args.reps,
            loaded.scenario.seed,
            Path(work),
            workers=args.workers,
            progress=False,
        )
    total = time.perf_counter() - start
    result = {
        "scenario": SCENARIO.name,
        "clusters": game.n_clusters,
        "steps_per_day": game.steps,
        "information_set": "local",
        "replications": args.reps,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "max_households": int(table["households"].max()),
        "solve_seconds": solve_s,
        "total_seconds": total,
        "target_seconds": TARGET_SECONDS,
        "within_target": total <= TARGET_SECONDS,
        "peak_rss_mib_driver": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rate": rate,
        "table": json.loads(
            table[
                [
                    "households",
                    "epsilon",
                    "epsilon_lo",
                    "epsilon_hi",
                    "upper",
                    "upper_lo",
                    "upper_hi",
                    "width",
                    "aim_met",
                    "bias",
                    "bias_lo",
                    "bias_hi",
                    "price_error",
                    "seconds",
                ]
            ].to_json(orient="records")
        ),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
