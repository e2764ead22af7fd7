"""Battery HJB (eq. (22)) and FPK (eq. (28)): known answers, adjointness, Monte Carlo agreement."""

from __future__ import annotations

import numpy as np
import pytest

from models import kernels
from models.config import StorageConfig
from models.grids import BatteryGrid, build_battery_grid
from models.hjb_step import minimise_step

DT = 1.0
STEPS = 24
HOURS = np.arange(STEPS) * DT


def _minimise_moves(cont, slopes, spacing, price_dt, bat, dt_h, value, control) -> None:
    """The linear HJB step of a battery that stays (``slopes`` are implied by ``cont``)."""
    stay = (0.0, np.ones(1), np.ones(1))
    minimise_step(cont, cont, stay, bat, spacing, price_dt, dt_h, False, value, control)


def battery(**overrides) -> StorageConfig:
    params = {
        "capacity_kwh": 10.0,
        "min_fraction": 0.1,
        "charge_kw": 3.0,
        "discharge_kw": 3.0,
        "efficiency": 0.95,
        "noise_kwh": 0.0,
        "initial_mean_kwh": 5.5,
        "initial_std_kwh": 0.0,
        "degradation": 0.02,
    }
    params.update(overrides)
    return StorageConfig(**params)


def solve(grid: BatteryGrid, price: np.ndarray):
    price = np.atleast_2d(price)
    m, s = price.shape[0], len(grid.soe)
    value = np.empty((m, STEPS + 1, s))
    away = np.empty_like(value)
    control = np.empty((m, STEPS, s))
    kernels.battery_backward(price, DT, *grid.kernel_args(), value, away, control)
    density = np.empty((m, STEPS + 1, s))
    density_away = np.empty_like(density)
    power = np.empty((m, STEPS))
    other = np.empty(m)
    kernels.battery_forward(
        control, grid.initial, DT, *grid.kernel_args(), density, density_away, power, other
    )
    return value, control, density, power, other


def test_flat_price_means_no_cycling():
    # exact end-of-day penalty: starting at its reference level there is nothing to gain
    grid = build_battery_grid(battery(terminal_smoothing_kwh=0.0), 91, 1, DT, HOURS)
    value, _, _, power, _ = solve(grid, np.full(STEPS, 0.07))
    start = np.argmax(grid.initial)
    assert grid.soe[start] == pytest.approx(5.5)
    assert np.max(np.abs(power)) < 1e-12
    assert value[0, 0, start] == pytest.approx(0.0, abs=1e-12)


def test_flat_price_with_smoothed_penalty_sells_a_little_and_never_cycles():
    # the smoothed ramp has a zero slope at the reference level, so selling up to a
    # fraction of its width pays; but energy never goes both ways
    dev = battery(terminal_smoothing_kwh=0.5)
    grid = build_battery_grid(dev, 91, 1, DT, HOURS)
    _, _, _, power, _ = solve(grid, np.full(STEPS, 0.07))
    assert np.all(power <= 1e-12)
    assert -power.sum() * DT <= dev.terminal_smoothing_kwh


def test_cheap_then_dear_charges_early_and_discharges_late():
    price = np.where(HOURS < 12, 0.03, 0.12)
    grid = build_battery_grid(battery(), 91, 1, DT, HOURS)
    _, _, density, power, _ = solve(grid, price)
    assert power[0, :12].sum() > 1.0  # kWh bought in the cheap half
    assert power[0, 12:].sum() < -1.0  # sold back in the dear half
    assert np.all(power[0, :12] >= -1e-12) and np.all(power[0, 12:] <= 1e-12)
    mean = density[0] @ grid.soe
    assert mean[12] > mean[0] + 1.0


def test_closed_form_minimiser_beats_a_fine_control_search():
    rng = np.random.default_rng(3)
    dev = battery()
    grid = build_battery_grid(dev, 31, 1, DT, HOURS)
    s = len(grid.soe)
    for trial in range(40):
        if trial % 2:  # rough, non-convex continuation: every segment is examined
            cont = np.cumsum(rng.normal(0.0, 0.05, s))
        else:  # convex continuation: the outward walk stops early
            cont = np.cumsum(np.sort(rng.normal(0.0, 0.05, s)))
        price = rng.uniform(-0.02, 0.15)
        slopes = np.diff(cont) / grid.spacing
        value = np.empty(s)
        control = np.empty(s)
        _minimise_moves(
            cont,
            slopes,
            grid.spacing,
            price * DT,
            grid.battery,
            DT,
            value,
            control,
        )
        for i in range(s):
            b = grid.soe[i]
            # a fine control grid plus the controls landing exactly on grid points (the kinks)
            d = grid.soe - b
            u_kinks = np.where(
                d > 0,
                d / (dev.efficiency * dev.charge_kw * DT),
                d * dev.efficiency / (dev.discharge_kw * DT),
            )
            u = np.concatenate([np.linspace(-1.0, 1.0, 20001), u_kinks[np.abs(u_kinks) <= 1]])
            y = np.where(
                u > 0,
                b + dev.efficiency * u * dev.charge_kw * DT,
                b + u * dev.discharge_kw * DT / dev.efficiency,
            )
            ok = (y >= grid.soe[0] - 1e-12) & (y <= grid.soe[-1] + 1e-12)
            g = np.where(u > 0, u * dev.charge_kw, u * dev.discharge_kw)
            brute = price * DT * g + dev.degradation * u**2 * DT + np.interp(y, grid.soe, cont)
            best = brute[ok].min()
            assert value[i] <= best + 1e-12
            assert value[i] >= best - 1e-9
            # and the reported control attains the reported value
            uc = control[i]
            yc = (
                b
                + (
                    dev.efficiency * uc * dev.charge_kw
                    if uc > 0
                    else uc * dev.discharge_kw / dev.efficiency
                )
                * DT
            )
            gc = uc * (dev.charge_kw if uc > 0 else dev.discharge_kw)
            attained = (
                price * DT * gc + dev.degradation * uc**2 * DT + np.interp(yc, grid.soe, cont)
            )
            assert attained == pytest.approx(value[i], abs=1e-10)


def noisy_grid() -> BatteryGrid:
    return build_battery_grid(
        battery(noise_kwh=0.3, initial_std_kwh=1.0, degradation=0.05), 61, 3, DT, HOURS
    )


def random_prices(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.02, 0.12, STEPS)


def test_fpk_conserves_mass_and_stays_non_negative():
    grid = noisy_grid()
    _, _, density, _, _ = solve(grid, np.stack([random_prices(s) for s in range(4)]))
    assert np.max(np.abs(density.sum(axis=2) - 1.0)) < 1e-12
    assert density.min() >= 0.0


def test_hjb_value_equals_forward_cost_of_its_policy():
    """Adjointness: the value read at t = 0 equals the cost the FPK accumulates."""
    grid = noisy_grid()
    price = random_prices(5)
    value, _, _, power, other = solve(grid, price)
    forward = DT * np.sum(price * power[0]) + other[0]
    assert value[0, 0] @ grid.initial == pytest.approx(forward, rel=1e-12, abs=1e-12)


def simulate_chain(grid: BatteryGrid, control: np.ndarray, price: np.ndarray, n: int, seed: int):
    """Monte Carlo of the Markov chain the scheme defines, sampled household by household."""
    rng = np.random.default_rng(seed)
    dev = grid.device
    idx = rng.choice(len(grid.soe), size=n, p=grid.initial)
    cost = np.zeros(n)
    soe_mean = [grid.soe[idx].mean()]
    for k in range(STEPS):
        u = control[0, k, idx]
        b = grid.soe[idx]
        y = np.where(
            u > 0,
            np.minimum(b + dev.efficiency * u * dev.charge_kw * DT, grid.soe[-1]),
            np.maximum(b + u * dev.discharge_kw * DT / dev.efficiency, grid.soe[0]),
        )
        g = np.where(u > 0, u * dev.charge_kw, u * dev.discharge_kw)
        cost += price[k] * g * DT + dev.degradation * u**2 * DT
        pos = (y - grid.soe[0]) / grid.spacing
        j = np.minimum(np.floor(pos).astype(int), len(grid.soe) - 2)
        idx = j + (rng.random(n) < (pos - j))
        # noise: pick a row entry of the noise map with its probability
        cum = np.cumsum(grid.noise_w[idx], axis=1)
        pick = (rng.random(n)[:, None] > cum).sum(axis=1)
        idx = grid.noise_idx[idx, np.minimum(pick, grid.noise_idx.shape[1] - 1)]
        soe_mean.append(grid.soe[idx].mean())
    cost += grid.terminal[idx]
    return cost, np.array(soe_mean)


def test_hjb_value_equals_monte_carlo_cost_of_its_policy():
    grid = noisy_grid()
    price = random_prices(8)
    value, control, _, _, _ = solve(grid, price)
    cost, _ = simulate_chain(grid, control, price, 40_000, seed=1)
    se = cost.std(ddof=1) / np.sqrt(len(cost))
    assert abs(cost.mean() - value[0, 0] @ grid.initial) < 4 * se + 1e-12


def test_fpk_moments_equal_monte_carlo_of_the_same_policy():
    grid = noisy_grid()
    price = random_prices(9)
    _, control, density, _, _ = solve(grid, price)
    n = 40_000
    _, soe_mean = simulate_chain(grid, control, price, n, seed=2)
    fpk_mean = density[0] @ grid.soe
    fpk_sd = np.sqrt(np.maximum(density[0] @ grid.soe**2 - fpk_mean**2, 0.0))
    assert np.all(np.abs(soe_mean - fpk_mean) < 4 * fpk_sd / np.sqrt(n) + 1e-9)
