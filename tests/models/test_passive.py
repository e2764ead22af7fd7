"""Households without flexibility: every device left to itself, whatever the prices."""

from __future__ import annotations

import numpy as np
import pytest

from models.equilibrium import solve_equilibrium
from models.game import build_game
from models.passive import passive_equilibrium
from tests.models.conftest import small_config


@pytest.fixture(scope="module")
def game():
    return build_game(small_config())


def test_the_import_does_not_depend_on_the_prices(game):
    cheap = passive_equilibrium(game.with_grid_price(np.full(game.steps, 0.02)))
    dear = passive_equilibrium(game.with_grid_price(np.full(game.steps, 0.40)))
    assert np.array_equal(cheap.flow.net_kw, dear.flow.net_kw)
    assert not np.allclose(cheap.cost, dear.cost)


def test_each_device_is_left_to_itself(game):
    law = passive_equilibrium(game)
    flow, hh = law.flow, game.config.household
    assert np.all(flow.ess_kw == 0.0)  # the home battery idles
    assert np.all(flow.controllable_kw == hh.controllable.duty * hh.controllable.power_kw)
    assert np.all(flow.controllable_cost == 0.0)
    start = game.shiftable_window[0]
    quanta = game.shiftable_quanta
    # the appliance runs from its window's start, one quantum per step, to its end
    np.testing.assert_allclose(flow.shiftable_kw[:, start : start + quanta], hh.shiftable.power_kw)
    np.testing.assert_allclose(flow.shiftable_kw[:, :start], 0.0)
    np.testing.assert_allclose(flow.shiftable_kw[:, start + quanta :], 0.0)
    assert np.all(flow.shiftable_cost == 0.0)
    assert np.all(flow.ev_kw >= 0.0)  # the EV only ever charges


def test_the_ev_charges_at_rated_power_until_full(game):
    law = passive_equilibrium(game)
    rated = game.clusters.ev_share * game.ev.battery.charge_kw
    # at midnight the connected EVs are (all but a 1e-9 tail) below full: rated power
    np.testing.assert_allclose(law.flow.ev_kw[:, 0], rated, rtol=1e-6)
    assert np.all(law.flow.ev_kw <= rated[:, None] * (1.0 + 1e-12))
    density = law.flow.ev_density  # connected EVs per SoE grid point
    assert density is not None
    full = density[:, -1, -1] / density[:, -1, :].sum(axis=1)
    assert np.all(full > 0.9)  # by the day's end nearly every connected EV is full
    # a full EV draws nothing: the power follows the connected EVs below full, no more
    soe = game.ev.soe
    below = density[:, :-1, :] @ np.where(soe < soe[-1] - 1e-9, 1.0, 0.0)
    assert np.all(law.flow.ev_kw <= rated[:, None] * below * (1.0 + 1e-9) + 1e-12)
    assert np.all(law.flow.ev_kw[:, -1] < 0.1 * rated)


def test_the_passive_law_costs_more_than_the_equilibrium_and_says_by_how_much(game):
    passive, gmfg = passive_equilibrium(game), solve_equilibrium(game)
    assert passive.converged and passive.history == []
    assert np.all(passive.exploitability_by_cluster > 1e-3)  # flexibility is worth something
    assert passive.mean_cost > gmfg.mean_cost
    assert abs(passive.mass_error) < 1e-9
