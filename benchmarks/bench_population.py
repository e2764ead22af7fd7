"""Benchmark: the finite-N population and the full discrete-event co-simulation.

Prints JSON with, measured in one run:

* ``compiled_household_steps_per_second`` — the compiled HEMS kernel on one
  core (numba threads = 1), 100 000 households over a day;
* ``reference_household_steps_per_second`` — the per-agent Python path (each
  Mesa household steps itself) on the same law, and the ratio of the two;
* ``des_seconds_100x200`` — one day of the full DES (SimPy processes, EV events,
  clearing, settlement, recording) for the paper scenario's 100 clusters × 200
  households, after a warm-up run;
* ``million_households`` — one day for 10⁶ households (100 × 10 000), run in a
  child process whose peak resident memory is reported;
* the mean absolute gap between realised and mean-field stage prices [$/kWh]
  with 20, 200 and 2000 households per cluster.

Targets (SPEC §9): ≥ 20 M household-steps/s and ≥ 100× the per-agent path;
≤ 2 s for 100 × 200; 10⁶ completes with peak RSS ≤ 4 GiB.

    python benchmarks/bench_population.py [--skip-million]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

from cosim.scenario.game import load_scenario
from cosim.sim.engine import CoSimulation
from cosim.sim.simulation import price_error, simulate
from models.equilibrium import solve_equilibrium
from models.feedback import FeedbackLaw
from models.game import build_game

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "paper_gmfg.toml"


def control_rate(sim: CoSimulation, steps: int) -> float:
    """Household-steps per second of ``sim``'s control step (compiled or per-agent path)."""
    if not sim.reference:
        sim.control_step(0, 0)  # compile / warm
    start = time.perf_counter()
    for step in range(steps):
        sim.control_step(step, step % sim.game.steps)
    return sim.population.size * steps / (time.perf_counter() - start)


def million(per_cluster: int) -> None:
    """Child process: one day for 100 clusters × ``per_cluster`` households."""
    loaded = load_scenario(SCENARIO)
    eq = solve_equilibrium(build_game(loaded.scenario, loaded.base_dir), "coc")
    start = time.perf_counter()
    res = simulate(eq, households_per_cluster=per_cluster, record=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # GiB (ru_maxrss in KiB)
    print(json.dumps({"seconds": seconds, "peak_rss_gib": peak, "checks": res.checks}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--child-million", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_million:
        million(args.child_million)
        return

    loaded = load_scenario(SCENARIO)
    game = build_game(loaded.scenario, loaded.base_dir)
    eq = solve_equilibrium(game, "coc")
    law = FeedbackLaw.from_equilibrium(eq)
    threads = numba.get_num_threads()

    numba.set_num_threads(1)
    big = CoSimulation(game, law, "coc", np.full(game.n_clusters, 1000), seed=1)
    compiled = control_rate(big, game.steps)
    small = CoSimulation(game, law, "coc", np.full(game.n_clusters, 5), seed=1, reference=True)
    reference = control_rate(small, game.steps)
    numba.set_num_threads(threads)

    simulate(eq, households_per_cluster=200)  # warm-up
    start = time.perf_counter()
    res = simulate(eq, households_per_cluster=200)
    des = time.perf_counter() - start

    convergence = {
        str(n): price_error(simulate(eq, households_per_cluster=n, record=0), eq)
        for n in (20, 200, 2000)
    }

    out = {
        "benchmark": "population",
        "compiled_household_steps_per_second": round(compiled),
        "reference_household_steps_per_second": round(reference),
        "compiled_over_reference": round(compiled / reference, 1),
        "targets": {
            "compiled": 20e6,
            "ratio": 100,
            "des_seconds": 2.0,
            "million_peak_rss_gib": 4.0,
        },
        "des_seconds_100x200": round(des, 3),
        "des_checks": res.checks,
        "threads_for_des": threads,
        "price_error_vs_mean_field_by_households_per_cluster": convergence,
    }
    if not args.skip_million:
        child = subprocess.run(
            [sys.executable, __file__, "--child-million", "10000"],
            capture_output=True,
            text=True,
            check=True,
        )
        out["million_households"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
