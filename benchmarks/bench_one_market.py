"""One market on Hawaii40, end to end: seconds of the outer fixed point and the finite-N run; JSON.

``scenarios/one_market_hawaii40.toml`` as ``cosim run`` runs it (without
writing tables and figures): clusters-of-clusters of 20 000 households at five
buses, storage aggregators at the other 22 buses with demand, 2-hour market
intervals, 15-minute control steps, 30 days. Target (issue 14): ≤ 5 minutes on
this project's 2-core machine. The Hawaii40 file is
``$COSIM_DATA_DIR/hawaii40.m`` (else ``../shared/data/hawaii40.m``); without
it the JSON says so and nothing is measured.

Usage: ``python benchmarks/bench_one_market.py [--days D]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "one_market_hawaii40.toml"
TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="override time.days")
    args = parser.parse_args()
    os.environ.setdefault("COSIM_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    out: dict = {"benchmark": "one_market", "scenario": SCENARIO.name, "target_s": TARGET_S}
    if not (Path(os.environ["COSIM_DATA_DIR"]) / "hawaii40.m").is_file():
        out["note"] = "Hawaii40 not found in $COSIM_DATA_DIR (docs/data.md): nothing measured"
        print(json.dumps(out, indent=2))
        return
    from cosim.scenario.one_market import load_one_market_scenario
    from cosim.studies.one_market import run_one_market

    loaded = load_one_market_scenario(SCENARIO)
    if args.days is not None:
        time_config = loaded.scenario.time.model_copy(update={"days": args.days})
        scenario = loaded.scenario.model_copy(update={"time": time_config})
        loaded = dataclasses.replace(loaded, scenario=scenario)
    start = time.perf_counter()
    outcome = run_one_market(loaded)
    total = time.perf_counter() - start
    eq = outcome.equilibrium
    out.update(
        {
            "days": loaded.scenario.time.days,
            "households": int(sum(c.households for c in loaded.scenario.coc)),
            "aggregators": 0
            if eq.market.aggregators is None
            else int(eq.market.aggregators.bus.size),
            "outer_iterations": len(eq.history),
            "converged": eq.converged,
            "fixed_point_s": outcome.seconds["fixed_point"],
            "finite_n_run_s": outcome.seconds["finite_n_run"],
            "total_s": round(total, 2),
            "within_target": total <= TARGET_S,
            "balance_worst_mw": max(outcome.run.checks.values()),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "python": platform.python_version(),
            "numpy": np.__version__,
        }
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
