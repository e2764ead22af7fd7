"""EV HJB/FPK with departures inside a step (the co-simulation's event times), eq. (22)/(28)."""

from __future__ import annotations

import numpy as np
import pytest

from models import kernels
from models.config import EVConfig
from models.grids import build_battery_grid, departure_quadrature

DT = 1.0
STEPS = 24
HOURS = np.arange(STEPS) * DT


@pytest.fixture(scope="module")
def grid():
    ev = EVConfig(departure_window_h=[6.5, 9.0], noise_kwh=0.3)
    return build_battery_grid(ev, 41, 3, DT, HOURS, trip_nodes=3)


def prices(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.03, 0.3, size=(2, STEPS))


def solve(grid, price):
    m, s = price.shape[0], len(grid.soe)
    value, away = np.empty((m, STEPS + 1, s)), np.empty((m, STEPS + 1, s))
    control = np.empty((m, STEPS, s))
    kernels.battery_backward(price, DT, *grid.kernel_args(), value, away, control)
    density, density_away = np.empty_like(value), np.empty_like(value)
    power, other = np.empty((m, STEPS)), np.empty(m)
    kernels.battery_forward(
        control, grid.initial, DT, *grid.kernel_args(), density, density_away, power, other
    )
    return value, away, density, density_away, power, other


def test_departure_fractions_cover_the_window_inside_each_step():
    at, w = departure_quadrature((6.5, 9.0), HOURS, DT)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # step 6 holds the window's first half hour: fractions in [0.5, 1]; step 7 all of [0, 1]
    assert at[6].min() > 0.5 and at[6].max() < 1.0
    assert np.sum(w[6] * at[6]) == pytest.approx(0.75)
    assert np.sum(w[7] * at[7]) == pytest.approx(0.5)


def test_hjb_value_equals_forward_cost_with_departures(grid):
    """Adjointness survives the in-step departures: value at t = 0 = the cost the FPK pushes."""
    price = prices(3)
    value, _, density, density_away, power, other = solve(grid, price)
    total = density.sum(axis=2) + density_away.sum(axis=2)
    assert np.max(np.abs(total - 1.0)) < 1e-12
    assert min(density.min(), density_away.min()) >= 0.0
    assert density_away[:, 10].sum(axis=1) == pytest.approx(1.0)  # everyone has left by 10 h
    forward = DT * np.sum(price * power, axis=1) + other
    np.testing.assert_allclose(value[:, 0] @ grid.initial, forward, rtol=1e-12, atol=1e-12)


def test_leaving_minimiser_beats_a_fine_control_search(grid):
    """The kink-by-kink minimiser is the exact minimum of the step's objective."""
    price = prices(5)[0]
    value, away, *_ = solve(grid, price[None])
    dev = grid.device
    k = 7
    at, w, hd = grid.leave_at[k], grid.leave_w[k], grid.depart[k]
    stay = np.empty(len(grid.soe))
    kernels._apply_rows(grid.noise_idx, grid.noise_w, value[0, k + 1], stay)
    trip = np.empty(len(grid.soe))
    kernels._apply_rows(grid.trip_idx, grid.trip_w, away[0, k + 1], trip)
    gone = grid.depart_cost + trip
    plugged = 1.0 - hd + hd * np.sum(w * at)
    u = np.linspace(-1.0, 1.0, 40_001)
    for i in range(0, len(grid.soe), 4):
        b = grid.soe[i]
        lo = -min(1.0, (b - grid.soe[0]) * dev.efficiency / (dev.discharge_kw * DT))
        hi = min(1.0, (grid.soe[-1] - b) / (dev.efficiency * dev.charge_kw * DT))
        uu = np.clip(u, lo, hi)
        d = (
            np.where(
                uu > 0, dev.efficiency * uu * dev.charge_kw, uu * dev.discharge_kw / dev.efficiency
            )
            * DT
        )
        g = np.where(uu > 0, uu * dev.charge_kw, uu * dev.discharge_kw)
        cost = plugged * (price[k] * g * DT + dev.degradation * uu**2 * DT)
        cost = cost + (1 - hd) * np.interp(b + d, grid.soe, stay)
        cost = cost + hd * sum(
            wq * np.interp(b + f * d, grid.soe, gone) for f, wq in zip(at, w, strict=True)
        )
        assert value[0, k, i] <= cost.min() + 1e-12
        assert value[0, k, i] >= cost.min() - 1e-6  # the search's own resolution
