"""The one-market mean-field layer: known answers of the outer fixed point."""

from __future__ import annotations

import numpy as np
import pytest

from market.network import Generator, Line, Network
from market.pricing import Mode
from market.wholesale_config import DispatchConfig
from models.equilibrium import solve_equilibrium
from models.one_market import (
    OuterFixedPoint,
    build_one_market,
    solve_one_market,
    storage_response,
)
from models.one_market_config import OneMarketScenario
from tests.models.conftest import small_config

HOUSEHOLDS = 20_000


def three_buses(cost_a: float, limit_mw: float = 400.0) -> Network:
    """A unit at G feeding A and B over identical lines: A and B are symmetric."""
    return Network(
        buses=("G", "A", "B"),
        lines=(Line(0, 1, 0.1, limit_mw, "G-A"), Line(0, 2, 0.1, limit_mw, "G-B")),
        generators=(Generator(0, "oil", 900.0, cost_a=cost_a, cost_b=20.0),),
        slack=0,
        demand_mw=(20.0, 60.0, 60.0),
        name="three-bus",
    )


def scenario(**outer: float) -> OneMarketScenario:
    return OneMarketScenario.model_validate(
        {
            "time": {"market_interval_h": 2.0},
            "coc": [
                {"bus": 1, "game_file": "a.toml", "households": HOUSEHOLDS},
                {"bus": 2, "game_file": "a.toml", "households": HOUSEHOLDS},
            ],
            "aggregators": {"buses": [0], "learning": {"play_temperature": 0.5}},
            "outer": {
                "max_iterations": 40,
                "tolerance_mw": 0.01,
                "damping_half_life": 1e9,  # a constant step: this small market does not herd
                **outer,
            },
        }
    )


def solve(network: Network, s: OneMarketScenario):
    cfg = small_config()
    market = build_one_market(s, network, (1, 2), (0,), ((cfg, None), (cfg, None)))
    return market, solve_one_market(market, s)


@pytest.fixture(scope="module")
def symmetric():
    return solve(three_buses(cost_a=0.02), scenario())


def test_identical_cocs_at_symmetric_buses_get_identical_laws(symmetric):
    _, eq = symmetric
    assert eq.converged, eq.history[-1]
    assert eq.history[-1]["import_residual_mw"] <= 0.01
    first, second = eq.laws
    np.testing.assert_allclose(first.flow.net_kw, second.flow.net_kw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(first.game.grid_price, second.game.grid_price, rtol=0, atol=1e-12)
    np.testing.assert_allclose(eq.imports_mw[0], eq.imports_mw[1], rtol=0, atol=1e-9)
    # the two CoCs matter: the LMP moves with their imports over the day, by a quadratic cost
    assert np.ptp(eq.lmp[:, 1]) > 0.1


def test_each_law_is_priced_by_the_lmp_of_all_the_flows(symmetric):
    """At the fixed point a CoC's p_G is the expected LMP of its own import, the others' and
    the storage's: without a bus-load draw it would be the deterministic dispatch's."""
    market, eq = symmetric
    for c, law in enumerate(eq.laws):
        link = law.game.wholesale
        own = link.interval_import_mw(law.game.clusters.shares @ law.flow.net_kw)
        np.testing.assert_allclose(own, eq.imports_mw[c], atol=0.1)  # within the tolerance
        lmp = (law.game.grid_price - link.retail_adder) * 1000.0
        per_interval = lmp.reshape(-1, market.steps_per_interval)
        assert np.all(np.abs(per_interval - per_interval[:, :1]) < 1e-12)  # one price per interval


def test_without_congestion_and_with_linear_costs_each_law_is_the_single_bus_answer():
    """Every LMP is the one unit's cost, whatever the flows: each CoC's law is its game's
    equilibrium at the flat grid price LMP/1000 + adder."""
    market, eq = solve(three_buses(cost_a=0.0), scenario(damping=1.0))
    assert eq.converged and len(eq.history) <= 3
    np.testing.assert_allclose(eq.lmp, 20.0, atol=1e-9)
    alone = solve_equilibrium(market.cocs[0].game.with_grid_price(np.full(24, 0.02 + 0.03)))
    for law in eq.laws:
        np.testing.assert_allclose(law.game.grid_price, 0.05, atol=1e-12)
        np.testing.assert_allclose(law.flow.net_kw, alone.flow.net_kw, rtol=0, atol=1e-9)
        assert law.cost == pytest.approx(alone.cost, abs=1e-12)


def test_non_convergence_is_reported_with_its_history():
    _, eq = solve(three_buses(cost_a=0.02), scenario(max_iterations=2, tolerance_mw=1e-6))
    assert not eq.converged and len(eq.history) == 2
    assert eq.history[-1]["import_residual_mw"] > 1e-6
    assert all(law.converged for law in eq.laws)  # the inner equilibria did converge


def test_storage_charges_when_cheap_and_discharges_when_dear():
    s = OneMarketScenario.model_validate(
        {
            "coc": [{"bus": 1, "game_file": "a.toml", "households": 1}],
            "aggregators": {"buses": [0], "prosumers_per_mw": 100.0},
        }
    )
    cfg = small_config()
    market = build_one_market(s, three_buses(0.02), (1,), (0,), ((cfg, None),))
    pools = market.aggregators
    belief = np.where(np.arange(24) < 12, 10.0, 50.0)[None, :]
    mw = storage_response(pools, belief, 1.0)[0]
    capacity = pools.capacity_mwh[0]  # 20 MW × 100 / MW × 10 kWh = 20 MWh
    assert capacity == pytest.approx(20.0)
    assert np.all(mw[:12] >= 0) and np.all(mw[12:] <= 0) and mw.max() > 0 > mw.min()
    # the day returns to its start: what is stored equals what is delivered, after losses
    eta = pools.model.efficiency
    assert eta * mw[mw > 0].sum() == pytest.approx(-mw[mw < 0].sum() / eta, rel=1e-9)
    largest = capacity * pools.model.max_action_levels / pools.model.soe_levels / eta
    assert np.all(np.abs(mw) <= largest + 1e-9)


def test_a_game_of_one_mode_is_solved_in_that_mode():
    s = scenario(damping=1.0)
    market = build_one_market(
        s, three_buses(0.0), (1, 2), (0,), ((small_config(), None), (small_config(), None))
    )
    eq = solve_one_market(market, s, Mode.RPC)
    assert all(law.mode == Mode.RPC for law in eq.laws)


def test_an_inflexible_coc_imports_its_passive_flow_whatever_the_others_do():
    """One CoC without flexibility beside a flexible one: its import is the passive law's
    from the first iteration on, and its law is priced by the LMP of all the flows."""
    s = scenario()
    rigid = s.coc[0].model_copy(update={"flexible": False})
    s = s.model_copy(update={"coc": [rigid, s.coc[1]]})
    market, eq = solve(three_buses(cost_a=0.02), s)
    assert eq.converged, eq.history[-1]
    passive = market.cocs[0].passive_import_mw(market.steps_per_interval)
    np.testing.assert_allclose(eq.imports_mw[0], passive, rtol=1e-12)  # (1 − θ)x + θx
    law = eq.laws[0]
    assert np.all(law.policy.ess == 0.0) and np.all(law.policy.controllable == 0.0)
    link = law.game.wholesale
    own = link.interval_import_mw(law.game.clusters.shares @ law.flow.net_kw)
    np.testing.assert_allclose(own, passive, rtol=1e-12)
    assert law.exploitability > 1e-3  # steering its devices would pay
    # the flexible CoC at the symmetric bus responds to prices: it imports otherwise
    assert np.max(np.abs(eq.imports_mw[1] - passive)) > 1.0


def test_the_scenarios_dispatch_prices_reach_every_dispatch():
    """``[dispatch]`` prices the market's dispatch and every CoC's LMP table alike."""
    prices = DispatchConfig(value_of_lost_load=500.0, curtailment_price=7.0)
    s = scenario().model_copy(update={"dispatch": prices})
    cfg = small_config()
    market = build_one_market(s, three_buses(0.02), (1, 2), (0,), ((cfg, None), (cfg, None)))
    options = market.dispatch.options
    assert (options.value_of_lost_load, options.surplus_penalty) == (500.0, 7.0)
    task = market.coc_task(0, np.zeros((2, 12)), np.zeros((1, 12)), Mode.COC)
    assert task.link().dispatch.options == options
    # a demand beyond the network's one unit is shed at the value of lost load
    short = market.dispatch.solve(np.array([0.0, 600.0, 600.0]))
    assert short.lmp[1] == pytest.approx(500.0)


def test_the_averaged_criterion_accepts_a_mixed_fixed_point_and_nothing_else():
    """Where a response jumps (storage against a price at the value of lost load) no pure
    response is near the flows: the flows at the mean of alternating responses are a fixed
    point of the averaged response; responses that all agree elsewhere are not."""
    s = scenario(averaging_window=4)
    cfg = small_config()
    market = build_one_market(s, three_buses(0.02), (1, 2), (0,), ((cfg, None), (cfg, None)))
    algo = OuterFixedPoint(market, Mode.COC, s.outer)
    flows = np.full(6, 10.0)
    alternating = tuple((flows, flows + (4.0 if n % 2 else -4.0)) for n in range(4))
    elsewhere = tuple((flows, flows + 4.0) for _ in range(4))
    drifting = tuple(
        (flows + 0.5 * n, flows + 0.5 * n + (4.0 if n % 2 else -4.0)) for n in range(4)
    )
    plain = {"import_residual_mw": 4.0, "storage_residual_mw": 4.0, "laws_converged": 1.0}
    verdicts = {}
    for name, recent in (("mixed", alternating), ("off", elsewhere), ("moving", drifting)):
        verdicts[name] = algo.is_converged({**plain, **algo.averaged_residuals(recent)})
    assert verdicts == {"mixed": True, "off": False, "moving": False}
    assert np.isnan(algo.averaged_residuals(alternating[:3])["averaged_residual_mw"])
