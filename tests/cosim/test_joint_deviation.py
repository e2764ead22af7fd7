"""The deviator's joint DP over all its devices (local information, SPEC §7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cosim.studies.epsilon import LawUnderTest
from cosim.studies.joint_deviation import AWAY, CONNECTED, cluster_stage_price, joint_policy
from market.pricing import Mode
from models import devices, kernels, shiftable_kernels
from models.config import GameConfig
from models.game import build_game, stage_prices


@pytest.fixture(scope="module")
def game():
    config = GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 3, "households": 20, "distances": {"kind": "line"}},
            # the joint DP interpolates linearly: so does the law it is checked against
            "solver": {"soe_points": 31, "ev_soe_points": 31, "continuation": "linear"},
        }
    )
    return build_game(config)


@pytest.mark.parametrize("mode", list(Mode))
def test_the_deviator_prices_by_the_solvers_rule(game, mode: Mode):
    rng = np.random.default_rng(9)
    m = rng.normal(0.0, 2.0, (game.n_clusters, game.steps))
    solver = stage_prices(game, mode, m).stage
    for k in range(game.steps):
        samples = np.stack([m[:, k], m[:, k]])  # (samples, M), as the deviator holds them
        for p in range(game.n_clusters):
            price = cluster_stage_price(game, mode, k, p, samples)
            np.testing.assert_allclose(price, solver[p, k], rtol=1e-14, atol=0)


def device_values(game, price: np.ndarray, p: int) -> dict[str, np.ndarray | float]:
    """Each device's optimal cost-to-go at t = 0 facing ``price`` — the decoupled problems."""
    m, k = price.shape
    out = {}
    for name in ("ess", "ev"):
        grid = getattr(game, name)
        s = len(grid.soe)
        value, away, control = np.empty((m, k + 1, s)), np.empty((m, k + 1, s)), np.empty((m, k, s))
        kernels.battery_backward(price, game.dt_h, *grid.kernel_args(), value, away, control)
        out[name] = value[p, 0]
    sh = game.config.household.shiftable
    quantum = sh.power_kw * game.dt_h
    levels = game.shiftable_quanta + 1
    sh_value, run = np.empty((m, k + 1, levels)), np.empty((m, k, levels), np.int8)
    shiftable_kernels.shiftable_backward(
        price, quantum, *game.shiftable_window, sh.shortfall_penalty * quantum, sh_value, run
    )
    out["shiftable"] = sh_value[p, 0, game.shiftable_quanta]
    cc = game.config.household.controllable
    u_c = devices.controllable_response(price, cc.power_kw, cc.duty, cc.discomfort)
    out["rest"] = (
        game.dt_h
        * np.sum(
            price * (game.exogenous_kw + cc.duty * cc.power_kw * (1 + u_c))
            + cc.discomfort * u_c**2,
            axis=1,
        )[p]
    )
    return out


def test_a_price_taker_joint_dp_is_the_sum_of_the_device_problems(game):
    """With no own-price effect the devices decouple: the joint value is their sum, exactly.

    Standalone mode prices every kWh at the grid price whatever the aggregate,
    and the law is the best response to it, so the joint DP's candidate set
    holds every device's optimum.
    """
    law = LawUnderTest.flat_price_response(game, "standalone")
    price = np.ascontiguousarray(np.broadcast_to(game.grid_price, (3, game.steps)))
    p = 1
    rows = pd.DataFrame(
        {
            "step": np.arange(game.steps),
            **{f"m_{q}": np.full(game.steps, 1.0 + q) for q in range(3)},
            "own_kwh": np.zeros(game.steps),
            "own_exo_kwh": game.exogenous_kw[p] * game.dt_h,
        }
    )
    v = device_values(game, price, p)
    base = v["shiftable"] + v["rest"]
    r = game.shiftable_quanta
    owner = joint_policy(game, law.mode, law.policy, p, rows, 10**6, has_ev=True)
    expected = v["ess"][:, None] + v["ev"][None, :] + base
    np.testing.assert_allclose(owner.value0[:, :, CONNECTED, r], expected, rtol=0, atol=1e-10)
    other = joint_policy(game, law.mode, law.policy, p, rows, 10**6, has_ev=False)
    np.testing.assert_allclose(other.value0[:, 0, AWAY, r], v["ess"] + base, rtol=0, atol=1e-10)
