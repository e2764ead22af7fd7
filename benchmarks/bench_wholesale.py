"""Wall time of seed 003's experiment (50 days × 5 seeds); prints JSON.

Runs :func:`cosim.studies.wholesale.run_experiment` on ``scenarios/oahu37.toml`` as
``cosim wholesale`` does (every seed with storage, the paired run without
storage, and the DP-versus-RL comparison on the final beliefs), without
writing tables or figures, and reports the wall time against the SPEC §9
target of ≤ 5 min. The Hawaii40 file is ``$COSIM_DATA_DIR/hawaii40.m`` (else
``../shared/data/hawaii40.m``); without it the experiment runs on the
built-in PJM 5-bus case and says so.

Usage: ``python benchmarks/bench_wholesale.py [--learner dp|rl|ppo] [--days D] [--seeds S]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

from cosim.studies.wholesale import (
    LoadedWholesale,
    load_wholesale_scenario,
    run_experiment,
    with_overrides,
)
from models.config import scenario_path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "oahu37.toml"
#: The user's data directory (docs/data.md), else the developers' copy beside the checkout.
DATA_DIR = Path(os.environ.get("COSIM_DATA_DIR") or ROOT.parent / "shared" / "data")
TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", choices=["dp", "rl", "ppo"], default="dp")
    parser.add_argument("--days", type=int, default=None, help="default: the scenario's (50)")
    parser.add_argument("--seeds", type=int, default=None, help="default: the scenario's (5)")
    args = parser.parse_args()

    import tomllib

    os.environ["COSIM_DATA_DIR"] = str(DATA_DIR)  # what the scenario's network file names
    data = tomllib.loads(SCENARIO.read_text(encoding="utf-8"))
    network = scenario_path(data["network"]["file"], SCENARIO.parent).resolve()
    note = None
    if network.is_file():
        loaded = load_wholesale_scenario(SCENARIO)
    else:  # run the same experiment on the built-in network
        data["network"] = {}
        from cosim.scenario.wholesale import parse_wholesale_scenario

        loaded = LoadedWholesale(parse_wholesale_scenario(data, str(SCENARIO)), SCENARIO, "")
        note = f"{network} not found: measured on the built-in PJM 5-bus case instead of Hawaii40"
    loaded = with_overrides(loaded, days=args.days, seeds=args.seeds, learner=args.learner)
    s = loaded.scenario

    start = time.perf_counter()
    cpu0 = time.process_time()
    result = run_experiment(loaded)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    summary = result.summary()
    means = summary["mean_over_seeds"]
    steps = s.seeds * s.time.days * s.slots
    out = {
        "benchmark": "seed-003 wholesale experiment",
        "network": "Hawaii40" if note is None else "PJM 5-bus",
        "note": note,
        "learner": s.learning.learner,
        "days": s.time.days,
        "seeds": s.seeds,
        "steps_per_run": s.time.days * s.slots,
        "market_steps": 2 * steps,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "ms_per_market_step": round(1000.0 * wall / (2 * steps), 2),
        "target_s": TARGET_S,
        "meets_target": wall <= TARGET_S,
        "imv_last_days": {run: round(v["imv_last_days"], 4) for run, v in means.items()},
        "ex_post_cost_last_days": {
            run: round(v["ex_post_cost_last_days"], 1) for run, v in means.items()
        },
        "checks": summary.get("checks"),
        "learners": {k: v for k, v in summary.get("learners", {}).items() if k != "per_seed"},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "numpy": metadata.version("numpy"),
            "highspy": metadata.version("highspy"),
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
