"""Phantom sinks: does the dispatch dump energy where nothing can be curtailed?

Before the surplus was bounded by what a bus can curtail, the dispatch could
let a bus with no unit and no renewable "dump" energy, acting as a load that
does not exist: with the Oahu scenario's 0.01 $/MWh curtailment price, 6 of 40
random dispatches on Hawaii40's own limits had such sinks, their buses' LMPs
held at −0.01 $/MWh. This script draws random Oahu dispatches (a random slot,
per-bus demand factors, solar and wind factors, the costs redrawn by fuel) on
the scenario's own network and counts

* surplus at a bus beyond what it can curtail (its units' ``pmin`` and its
  renewables' output netted out of its demand) — a phantom sink;
* for information, the buses whose LMP sits at the curtailment price's floor
  although they have nothing to curtail: right when the marginal megawatt is
  curtailed elsewhere and no line between is congested, so not a failure.

Usage (Hawaii40 in ``$COSIM_DATA_DIR``, docs/data.md)::

    python benchmarks/phantom_sinks.py [--dispatches 40] [--seed 0]

Prints one JSON object; ``passed`` is true when no dispatch has a phantom sink.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cosim.scenario.game import ScenarioError
from cosim.scenario.wholesale import load_wholesale_scenario
from cosim.studies.wholesale import build_case, load_network
from market.dispatch import EconomicDispatch
from market.dispatch_model import DispatchOptions
from market.network import redraw_costs_by_fuel

ROOT = Path(__file__).resolve().parents[1]
#: Surplus or price differences below this are solver tolerance [MW, $/MWh].
TOLERANCE = 1e-6


def scan(dispatches: int, seed: int) -> dict:
    """``dispatches`` random Oahu dispatches; the phantom sinks found in each."""
    loaded = load_wholesale_scenario(ROOT / "scenarios" / "oahu37.toml")
    s = loaded.scenario
    rng = np.random.default_rng(seed)
    network = redraw_costs_by_fuel(load_network(loaded), rng)
    case = build_case(s, network, storage=False)
    grid = case.dispatch_network()
    penalty = s.dispatch.curtailment_price
    ed = EconomicDispatch(
        grid, DispatchOptions(s.dispatch.value_of_lost_load, surplus_penalty=penalty)
    )
    pmin = np.zeros(grid.n_buses)
    for g in grid.generators:
        pmin[g.bus] += g.pmin_mw
    rows = []
    for i in range(dispatches):
        slot = int(rng.integers(s.slots))
        demand = rng.uniform(0.5, 1.2, grid.n_buses)
        solar, wind = float(rng.uniform(0.0, 1.2)), float(rng.uniform(0.0, 1.0))
        load = case.base_bids_mw(slot, demand, solar) - case.renewable_mw(slot, solar, wind)
        result = ed.solve(load, time_step=i)
        curtailable = pmin + np.maximum(-(load + grid.shunt_load_mw), 0.0)
        sinks = np.flatnonzero(result.surplus_mw > curtailable + TOLERANCE)
        floor = np.flatnonzero((result.lmp <= -penalty + TOLERANCE) & (curtailable <= TOLERANCE))
        rows.append(
            {
                "dispatch": i,
                "surplus_mw": round(float(result.surplus_mw.sum()), 6),
                "shed_mw": round(float(result.shed_mw.sum()), 6),
                "phantom_sink_buses": [grid.buses[b] for b in sinks],
                "floor_price_buses": [grid.buses[b] for b in floor],
            }
        )
    bad = [r for r in rows if r["phantom_sink_buses"]]
    return {
        "dispatches": dispatches,
        "seed": seed,
        "curtailment_price": penalty,
        "with_surplus": sum(r["surplus_mw"] > TOLERANCE for r in rows),
        "with_shedding": sum(r["shed_mw"] > TOLERANCE for r in rows),
        "with_floor_price_elsewhere": sum(bool(r["floor_price_buses"]) for r in rows),
        "with_phantom_sinks": len(bad),
        "passed": not bad,
        "phantom": bad,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        out = scan(args.dispatches, args.seed)
    except ScenarioError as exc:  # Hawaii40 not found: say where it is looked for
        print(f"phantom_sinks: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0 if out["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
