"""The battery HJB step (models.hjb_step) against brute force, and the cubic interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from models.battery import move_costs, plugged_share
from models.config import EVConfig
from models.cubic import hermite, minimise_moves_cubic, node_slopes, smooth_expectation
from models.grids import build_battery_grid
from models.hjb_step import minimise_step
from models.kernels import minimise_moves_linear

DT = 0.25


def _interpolant(table: np.ndarray, spacing: float, smooth: bool):
    """The continuation as the step reads it, at grid positions."""
    slopes = np.empty_like(table)
    node_slopes(table, spacing, slopes)
    n = len(table)

    def at(pos: np.ndarray) -> np.ndarray:
        pos = np.clip(pos, 0.0, n - 1.0)
        if smooth:
            return np.array([hermite(table, slopes, p, spacing)[0] for p in pos])
        return np.interp(pos, np.arange(n), table)

    return at


def _brute_force(i, stay, gone, departure, grid, price, smooth):
    """Minimum of the step objective over 20 001 moves and every kink, at grid point ``i``."""
    hd, at, w = departure
    battery, h = grid.battery, grid.spacing
    up, down, lin_up, quad_up, lin_down, quad_down = move_costs(
        battery, price * DT, DT, plugged_share(hd, at, w)
    )
    n = len(grid.soe)
    lo, hi = -min(down, i * h), min(up, (n - 1 - i) * h)
    kinks = [(j - i) * h / f for f in (1.0, *at) for j in range(n) if f > 0]
    d = np.concatenate([np.linspace(lo, hi, 20001), [x for x in kinks if lo <= x <= hi], [0.0]])
    stage = np.where(d > 0, lin_up * d + quad_up * d * d, lin_down * d + quad_down * d * d)
    w_stay, w_gone = _interpolant(stay, h, smooth), _interpolant(gone, h, smooth)
    total = stage + (1.0 - hd) * w_stay(i + d / h)
    if hd > 0:
        for f, wq in zip(at, w, strict=True):
            total += hd * wq * w_gone(i + f * d / h)
    return float(total.min())


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("leaving", [False, True])
def test_the_step_minimum_is_no_worse_than_brute_force(smooth, leaving):
    """Convex and rough continuations, prices of both signs: the exact minimiser wins."""
    rng = np.random.default_rng(5)
    grid = build_battery_grid(EVConfig(), 41, 1, DT, np.arange(8) * DT)
    n = len(grid.soe)
    departure = (
        (0.4, np.array([0.2, 0.7]), np.array([0.5, 0.5]))
        if leaving
        else (0.0, np.ones(1), np.ones(1))
    )
    for trial in range(12):
        if trial % 2:  # rough: no convexity to lean on, every piece is examined
            stay, gone = (np.cumsum(rng.normal(0.0, 0.05, n)) for _ in range(2))
        else:  # convex: the bisection narrows the search to one grid segment
            stay, gone = (np.cumsum(np.sort(rng.normal(0.0, 0.05, n))) for _ in range(2))
        price = rng.uniform(-0.05, 0.3)
        value, control = np.empty(n), np.empty(n)
        args = (departure, grid.battery, grid.spacing, price * DT, DT, smooth, value, control)
        minimise_step(stay, gone, *args)
        for i in range(0, n, 3):
            best = _brute_force(i, stay, gone, departure, grid, price, smooth)
            assert value[i] <= best + 1e-12
            assert value[i] >= best - 1e-6  # the brute-force grid is 20 001 moves fine
        assert np.all(np.abs(control) <= 1.0)


def test_the_cubic_interpolant_is_exact_for_quadratics():
    x = np.linspace(2.0, 12.0, 21)
    h = x[1] - x[0]
    table = 0.3 * x**2 - 1.7 * x + 0.2
    slopes = np.empty_like(table)
    node_slopes(table, h, slopes)
    assert np.allclose(slopes, 0.6 * x - 1.7, rtol=0, atol=1e-12)
    for y in np.linspace(2.0, 12.0, 97):
        v, g = hermite(table, slopes, (y - x[0]) / h, h)
        assert v == pytest.approx(0.3 * y**2 - 1.7 * y + 0.2, abs=1e-12)
        assert g == pytest.approx(0.6 * y - 1.7, abs=1e-12)


def test_the_smooth_expectation_adds_no_spurious_variance():
    """E W(b + s) of a quadratic W is exact: the noise is the noise, not the grid's."""
    grid = build_battery_grid(EVConfig(), 41, 3, DT, np.arange(4) * DT)
    x, h = grid.soe, grid.spacing
    table = 0.02 * (x - 30.0) ** 2
    out = np.empty_like(table)
    smooth_expectation(table, grid.tables.noise_jumps, h, out)
    shift, prob = grid.tables.noise_jumps
    inner = slice(2, -2)  # away from the clipped ends
    exact = 0.02 * ((x[:, None] + shift[None, :] - 30.0) ** 2) @ prob
    assert np.allclose(out[inner], exact[inner], rtol=0, atol=1e-12)
    # splitting the jumped mass linearly instead — the transport's representation — does not
    linear = grid.noise_w * table[grid.noise_idx]
    assert np.max(np.abs(linear.sum(axis=1) - exact)[inner]) > 1e-4


def test_the_fast_paths_of_a_staying_battery_agree_with_the_general_step():
    """``minimise_moves_cubic`` and the linear walk give the general minimiser's answer."""
    rng = np.random.default_rng(8)
    grid = build_battery_grid(EVConfig(), 61, 1, DT, np.arange(4) * DT)
    n, h = len(grid.soe), grid.spacing
    stay_put = (0.0, np.ones(1), np.ones(1))
    for trial in range(10):
        table = np.cumsum(
            rng.normal(0.0, 0.05, n) if trial % 2 else np.sort(rng.normal(0.0, 0.05, n))
        )
        price_dt = rng.uniform(-0.05, 0.3) * DT
        for smooth in (False, True):
            general, fast = (np.empty(n), np.empty(n)), (np.empty(n), np.empty(n))
            minimise_step(table, table, stay_put, grid.battery, h, price_dt, DT, smooth, *general)
            if smooth:
                minimise_moves_cubic(table, grid.battery, h, price_dt, DT, *fast)
            else:
                slopes = np.diff(table) / h
                minimise_moves_linear(table, slopes, h, price_dt, grid.battery, DT, *fast)
            np.testing.assert_allclose(fast[0], general[0], rtol=0, atol=1e-12)
            np.testing.assert_allclose(fast[1], general[1], rtol=0, atol=1e-9)
