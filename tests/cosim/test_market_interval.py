"""The scenario's market interval sets the simulation's market table (it used to be ignored)."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.scenario.game import parse_scenario
from cosim.sim.simulation import simulate
from models.equilibrium import solve_equilibrium
from models.game import build_game


def _equilibrium(interval_h: float):
    scenario = parse_scenario(
        {
            "seed": 5,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 2, "households": 4, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
            "simulation": {"market_interval_h": interval_h},
        }
    )
    return solve_equilibrium(build_game(scenario), "coc")


def test_the_market_table_sums_the_steps_of_each_interval():
    hourly = simulate(_equilibrium(1.0), days=2, seed=9)
    three_hourly = simulate(_equilibrium(3.0), days=2, seed=9)
    net = hourly.market["net_demand_kwh"].to_numpy()
    assert len(net) == 48 and len(three_hourly.market) == 16
    np.testing.assert_allclose(
        three_hourly.market["net_demand_kwh"], net.reshape(16, 3).sum(axis=1), rtol=1e-12
    )
    np.testing.assert_array_equal(three_hourly.market["time_h"], np.arange(3, 49, 3))
    # the interval changes what is reported, not what happens
    np.testing.assert_array_equal(hourly.aggregates, three_hourly.aggregates)


def test_an_interval_that_is_not_whole_steps_is_refused():
    with pytest.raises(ValueError, match=r"market_interval_h = 1.5: must be a multiple"):
        simulate(_equilibrium(1.0), market_interval_h=1.5)
