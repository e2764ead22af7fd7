"""The GMFG fixed point: convergence, invariants, grid independence, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from market.pricing import Mode
from models import shiftable_kernels
from models.archive import load_equilibrium, save_equilibrium
from models.equilibrium import solve_equilibrium
from models.game import build_game, stage_prices
from models.response import best_response, population_flow


def _solve(config, mode=Mode.COC):
    return solve_equilibrium(build_game(config), mode)


@pytest.mark.parametrize("mode", list(Mode))
def test_small_game_converges_with_conserved_mass(make_config, mode):
    res = _solve(make_config(), mode)
    tol = res.game.config.solver
    assert res.converged, res.history[-3:]
    assert res.price_residual <= tol.price_tolerance
    assert res.exploitability <= tol.exploitability_tolerance
    assert res.mass_error <= 1e-9
    assert res.min_density >= 0.0
    # exploitability is a best-response gap: never negative beyond rounding
    assert np.all(res.exploitability_by_cluster >= -1e-9)
    assert res.monotonicity >= -1e-12


def test_standalone_prices_are_the_grid_price(make_config):
    res = _solve(make_config(), Mode.STANDALONE)
    assert np.array_equal(
        res.prices.stage, np.broadcast_to(res.game.grid_price, res.prices.stage.shape)
    )
    # prices that depend on no one: one iteration per phase (linear, then cubic)
    assert [row["cubic"] for row in res.history] == [0.0, 1.0]


def test_a_non_equilibrium_is_exploitable(make_config):
    """The best response to the grid price alone is far from a CoC equilibrium."""
    game = build_game(make_config())
    flat = np.broadcast_to(game.grid_price, (game.n_clusters, game.steps)).copy()
    policy, _ = best_response(game, flat)
    flow = population_flow(game, policy)
    prices = stage_prices(game, Mode.COC, flow.net_kw)
    _, optimal = best_response(game, prices.stage)
    gap = flow.cost(prices.stage, game.dt_h) - optimal
    assert gap.max() > 10 * game.config.solver.exploitability_tolerance


def test_equilibrium_does_not_depend_on_households_per_cluster(make_config):
    few = _solve(make_config(clusters={"households": 2}))
    many = _solve(make_config(clusters={"households": 2000}))
    assert np.array_equal(few.prices.stage, many.prices.stage)
    assert np.array_equal(few.cost, many.cost)


def test_costs_order_standalone_rpc_coc(make_config):
    game = build_game(make_config())
    costs = {mode: solve_equilibrium(game, mode) for mode in Mode}
    g = game.generic_cluster
    assert costs[Mode.STANDALONE].cost[g] > costs[Mode.RPC].cost[g] > costs[Mode.COC].cost[g]
    assert costs[Mode.STANDALONE].mean_cost > costs[Mode.RPC].mean_cost > costs[Mode.COC].mean_cost


def test_halving_grid_spacing_barely_moves_prices(make_config):
    """SPEC §4: < 0.5 % on average and < 2 % at the worst step (default SoE grid, 15-min steps)."""
    base = {"time": {"dt_h": 0.25}, "solver": {"soe_points": 101, "split_samples": 64}}
    fine = {"time": {"dt_h": 0.25}, "solver": {"soe_points": 201, "split_samples": 128}}
    coarse_res = _solve(make_config(**base))
    fine_res = _solve(make_config(**fine))
    assert coarse_res.converged and fine_res.converged
    rel = np.abs(coarse_res.prices.stage - fine_res.prices.stage) / fine_res.prices.stage
    assert rel.mean() < 0.005, rel.mean()
    assert rel.max() < 0.02, rel.max()


def test_saved_result_reloads_bit_identically(make_config, tmp_path):
    res = _solve(make_config())
    save_equilibrium(res, tmp_path / "eq")
    back = load_equilibrium(tmp_path / "eq")
    for name in ("stage", "rpc", "coc"):
        assert np.array_equal(getattr(res.prices, name), getattr(back.prices, name))
    for name in ("ess", "ev", "shiftable_run", "controllable"):
        assert np.array_equal(getattr(res.policy, name), getattr(back.policy, name))
    assert np.array_equal(res.flow.ess_density, back.flow.ess_density)
    assert np.array_equal(res.cost, back.cost)
    assert back.converged == res.converged and back.exploitability == res.exploitability
    assert back.history == res.history
    # and the rebuilt game is the same game
    assert np.array_equal(back.game.weights, res.game.weights)


def test_wardrop_split_equalises_the_cost_of_the_steps_used(make_config):
    game = build_game(make_config(time={"dt_h": 0.25}))
    res = solve_equilibrium(game, Mode.RPC)
    x = res.flow.shiftable_kw / game.config.household.shiftable.power_kw
    start, end = game.shiftable_window
    for p in range(game.n_clusters):
        used = x[p, start:end] > 1e-6
        price = res.prices.stage[p, start:end]
        assert x[p].sum() == pytest.approx(game.shiftable_quanta, abs=1e-6)
        # moving one quantum from the dearest step used to the cheapest unused one
        # gains no more than the equilibrium's exploitability tolerance
        if used.any() and (~used).any():
            quantum = game.config.household.shiftable.power_kw * game.dt_h
            gain = (price[used].max() - price[~used].min()) * quantum
            assert gain <= game.config.solver.exploitability_tolerance


def test_systematic_sampling_realises_the_split():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 30))
    x *= (4.0 / x.sum(axis=1))[:, None]
    x = np.minimum(x, 1.0)
    quanta = 4
    occ = np.empty((4, 31, quanta + 1))
    run = np.empty((4, 30, quanta + 1))
    shiftable_kernels.shiftable_split_flow(x, occ, run)
    assert np.allclose(occ.sum(axis=2), 1.0, atol=1e-12)
    assert np.allclose(run.sum(axis=2), x, atol=1e-12)
    assert occ.min() >= 0.0 and run.min() >= 0.0
    assert np.all(run <= occ[:, :-1, :] + 1e-12)
