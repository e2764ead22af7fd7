"""The aggregators' learners against each other: seconds and value gap to the DP optimum; JSON.

Seed 003's Algorithm 1 trains every aggregator's learner once per market
step against its LMP belief. This benchmark holds the beliefs fixed (37
aggregators × 12 two-hour slots, an evening-peak day with a level and noise
per aggregator, seeded) and trains each learner of ``scenarios/oahu37.toml``
for ``--phases`` training phases (default 120: ten days of the paper's run):

- ``dp``: exact policy iteration (one cold solve, then warm re-solves);
- ``rl``: tabular Q-learning with the scenario's ``[learning.rl]`` settings;
- ``ppo``: masked PPO with the scenario's ``[learning.ppo]`` settings (needs
  the optional ``[rl]`` extra; skipped with a note without it).

For each it prints the seconds spent training and, at a few checkpoints, the
exact value (eq. (13)) of its greedy policy as a share of the DP optimum's
(mean over aggregators, slots and SoE levels). There is no target: the
figures document what each learner costs (docs/wholesale.md, "Learners").

Usage: ``python benchmarks/bench_learners.py [--phases N] [--seed S]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np

from cosim.studies.wholesale import storage_model
from market.learners import DynamicProgrammingLearner, greedy_value, make_learner
from market.wholesale_config import WholesaleScenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "oahu37.toml"
AGGREGATORS = 37


def beliefs(slots: int, rng: np.random.Generator) -> np.ndarray:
    """An evening-peak LMP day per aggregator ($/MWh): level ±20 %, noise 5 $/MWh."""
    hour = np.arange(slots) * 24.0 / slots
    day = 30.0 + 20.0 * np.sin(2.0 * np.pi * (hour - 12.0) / 24.0)
    level = rng.uniform(0.8, 1.2, (AGGREGATORS, 1))
    return day[None, :] * level + rng.normal(0.0, 5.0, (AGGREGATORS, slots))


def run(scenario: WholesaleScenario, learner: str, belief: np.ndarray, phases: int, seed: int):
    """Seconds of training and the greedy policy's share of the optimum at checkpoints."""
    model = storage_model(scenario)
    optimum = DynamicProgrammingLearner(model, AGGREGATORS, scenario.slots)
    optimum.train(belief)
    best = float(optimum.values.mean())
    trainee = make_learner(scenario.learning, model, AGGREGATORS, scenario.slots, learner)
    rng = np.random.default_rng(seed)
    checkpoints = sorted({1, phases // 10, phases // 2, phases} - {0})
    seconds, shares = 0.0, {}
    for phase in range(1, phases + 1):
        start = time.perf_counter()
        trainee.train(belief, rng)
        seconds += time.perf_counter() - start
        if phase in checkpoints:
            shares[phase] = float(greedy_value(model, belief, trainee).mean()) / best
    return {
        "seconds": round(seconds, 3),
        "seconds_per_phase": round(seconds / phases, 5),
        "share_of_optimum": {str(k): round(v, 4) for k, v in shares.items()},
        "value_gap": round(best * (1.0 - shares[phases]), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", type=int, default=120, help="training phases per learner")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = WholesaleScenario.model_validate(tomllib.loads(SCENARIO.read_text("utf-8")))
    belief = beliefs(scenario.slots, np.random.default_rng(args.seed))
    optimum = DynamicProgrammingLearner(storage_model(scenario), AGGREGATORS, scenario.slots)
    optimum.train(belief)
    out: dict = {
        "benchmark": "learners",
        "aggregators": AGGREGATORS,
        "slots": scenario.slots,
        "phases": args.phases,
        "dp_value": round(float(optimum.values.mean()), 6),
        "value_unit": "$ per MWh of storage capacity (eq. (13), mean over states)",
        "learners": {},
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for learner in ("dp", "rl", "ppo"):
        if learner == "ppo" and importlib.util.find_spec("sb3_contrib") is None:
            out["learners"]["ppo"] = {"note": "the [rl] extra is not installed (make test-rl)"}
            continue
        out["learners"][learner] = run(scenario, learner, belief, args.phases, args.seed)
    if importlib.util.find_spec("torch") is not None:
        out["torch"] = metadata.version("torch")
        out["stable_baselines3"] = metadata.version("stable-baselines3")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
