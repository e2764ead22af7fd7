"""The battery model, eqs. (5)–(12): known answers, bounds, and the HJB/FPK kernels built on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import battery, kernels
from models.battery import Battery
from models.config import StorageConfig
from models.grids import build_battery_grid
from models.hjb_step import minimise_step

#: 1–9 kWh, 4 kW in, 5 kW out, 80 % one way, 0.1 $/h wear, no noise.
BAT = Battery(1.0, 9.0, 4.0, 5.0, 0.8, 0.1, 0.0)


def _minimise_moves(cont, slopes, spacing, price_dt, bat, dt_h, value, control) -> None:
    """The linear HJB step of a battery that stays (``slopes`` are implied by ``cont``)."""
    stay = (0.0, np.ones(1), np.ones(1))
    minimise_step(cont, cont, stay, bat, spacing, price_dt, dt_h, False, value, control)


def test_stored_change_grid_power_and_wear_known_answers():
    # charging: the meter draws u·P_c, the battery stores η of it
    assert battery.grid_power(BAT, 0.5) == 2.0
    assert battery.stored_change(BAT, 0.5, 2.0) == pytest.approx(0.8 * 2.0 * 2.0)
    # discharging: the meter gets |u|·P_d, the battery gives 1/η of it
    assert battery.grid_power(BAT, -0.5) == -2.5
    assert battery.stored_change(BAT, -0.5, 2.0) == pytest.approx(-2.5 * 2.0 / 0.8)
    assert battery.stored_change(BAT, 0.0, 1.0) == 0.0
    # a kWh bought and sold back returns η² kWh at the meter
    stored = battery.stored_change(BAT, 1.0 / 4.0, 1.0)  # 1 kWh drawn
    u_back = -stored * 0.8 / 5.0  # discharge exactly what was stored
    assert battery.stored_change(BAT, u_back, 1.0) == pytest.approx(-stored)
    assert -battery.grid_power(BAT, u_back) * 1.0 == pytest.approx(0.8**2)
    assert battery.wear(BAT, -0.5, 2.0) == pytest.approx(0.1 * 0.25 * 2.0)


def test_a_move_is_clipped_to_bounds_and_reports_the_meter_power():
    after, power = battery.move(BAT, 8.0, 1.0, 1.0)  # would store 3.2 kWh
    assert after == 9.0 and power == 4.0
    after, power = battery.move(BAT, 2.0, -1.0, 1.0)  # would take 6.25 kWh
    assert after == 1.0 and power == -5.0
    after, power = battery.move(BAT, 5.0, 0.25, 0.5)
    assert after == pytest.approx(5.0 + 0.8 * 0.25 * 4.0 * 0.5) and power == 1.0


def test_the_clip_stops_a_full_step_at_the_bound():
    # 0.8 kWh of room above 8.2 kWh: a full hour may use 0.8/(0.8·4) = 0.25 of the power
    assert battery.feasible(BAT, 1.0, 8.2, 1.0) == pytest.approx(0.25)
    # 0.5 kWh above the floor: 0.5·0.8/5 = 0.08 of the discharge power
    assert battery.feasible(BAT, -1.0, 1.5, 1.0) == pytest.approx(-0.08)
    assert battery.feasible(BAT, 0.3, 5.0, 1.0) == 0.3
    assert battery.feasible(BAT, 1.0, 9.0, 1.0) == 0.0
    assert battery.feasible(BAT, -1.0, 1.0, 1.0) == 0.0
    u, after, power = battery.clipped_move(BAT, 1.0, 8.2, 1.0)
    assert u == pytest.approx(0.25) and after == pytest.approx(9.0) and power == 4.0 * u


@settings(max_examples=300, deadline=None)
@given(
    soe=st.floats(0.0, 1.0),
    u=st.floats(-1.0, 1.0),
    dt_h=st.floats(0.05, 2.0),
    charge=st.floats(0.5, 20.0),
    discharge=st.floats(0.5, 20.0),
    efficiency=st.floats(0.5, 1.0),
)
def test_a_clipped_control_keeps_a_full_step_in_bounds(soe, u, dt_h, charge, discharge, efficiency):
    bat = Battery(2.0, 12.0, charge, discharge, efficiency, 0.0, 0.0)
    b = 2.0 + 10.0 * soe
    clipped = battery.feasible(bat, u, b, dt_h)
    assert -1.0 <= clipped <= 1.0
    assert clipped * u >= 0.0 and abs(clipped) <= abs(u)  # only ever shortened
    after = b + battery.stored_change(bat, clipped, dt_h)
    assert 2.0 - 1e-9 <= after <= 12.0 + 1e-9
    if 2.0 + 1e-9 < b + battery.stored_change(bat, u, dt_h) < 12.0 - 1e-9:
        assert clipped == u  # a step inside the bounds is left alone


def test_from_device_reads_the_config_and_the_grid_ends():
    device = StorageConfig(capacity_kwh=10.0, min_fraction=0.2, degradation=0.03, noise_kwh=0.2)
    grid = build_battery_grid(device, 21, 3, 0.5, np.arange(48) * 0.5)
    bat = grid.battery
    assert bat == Battery(2.0, 10.0, 3.0, 3.0, 0.95, 0.03, 0.2)
    assert bat.soe_min == grid.soe[0] and bat.soe_max == grid.soe[-1]


def test_move_costs_are_the_stage_cost_of_the_model_move():
    """The HJB's reach and cost coefficients, eq. (22), agree with the model's move."""
    price_dt, dt_h, weight = 0.12 * 0.5, 0.5, 0.7
    up_max, down_max, lin_up, quad_up, lin_down, quad_down = battery.move_costs(
        BAT, price_dt, dt_h, weight
    )
    assert up_max == pytest.approx(battery.stored_change(BAT, 1.0, dt_h))
    assert down_max == pytest.approx(-battery.stored_change(BAT, -1.0, dt_h))
    for d in np.linspace(-down_max, up_max, 13):
        u = d / up_max if d > 0 else d / down_max
        assert battery.stored_change(BAT, u, dt_h) == pytest.approx(d, abs=1e-12)
        direct = weight * (price_dt * battery.grid_power(BAT, u) + battery.wear(BAT, u, dt_h))
        lin, quad = (lin_up, quad_up) if d > 0 else (lin_down, quad_down)
        assert lin * d + quad * d * d == pytest.approx(direct, abs=1e-12)


def test_the_fpk_moves_mass_and_draws_power_as_the_model_does():
    dt_h, steps = 0.5, 2
    device = StorageConfig(noise_kwh=0.0, initial_std_kwh=0.0, initial_mean_kwh=6.75)
    grid = build_battery_grid(device, 55, 1, dt_h, np.arange(steps) * dt_h)
    bat = grid.battery
    for i, u in ((10, 0.6), (30, -0.8), (53, 1.0), (1, -1.0)):  # the last two are clipped
        initial = np.zeros(len(grid.soe))
        initial[i] = 1.0
        control = np.full((1, steps, len(grid.soe)), u)
        density = np.empty((1, steps + 1, len(grid.soe)))
        away, power, other = np.empty_like(density), np.empty((1, steps)), np.empty(1)
        kernels.battery_forward(
            control, initial, dt_h, bat, grid.tables, density, away, power, other
        )
        after, drawn = battery.move(bat, grid.soe[i], u, dt_h)
        assert power[0, 0] == drawn
        assert density[0, 1] @ grid.soe == pytest.approx(after, abs=1e-9)


def test_the_hjb_control_moves_the_state_by_the_model_move():
    """The HJB minimises over stored energy; its control, put through the model, costs its value."""
    dt_h = 1.0
    grid = build_battery_grid(StorageConfig(noise_kwh=0.0), 31, 1, dt_h, np.arange(4) * dt_h)
    bat = grid.battery
    rng = np.random.default_rng(2)
    for _ in range(10):
        cont = np.cumsum(np.sort(rng.normal(0.0, 0.1, len(grid.soe))))
        value, control = np.empty(len(grid.soe)), np.empty(len(grid.soe))
        price_dt = rng.uniform(0.0, 0.2) * dt_h
        _minimise_moves(
            cont, np.diff(cont) / grid.spacing, grid.spacing, price_dt, bat, dt_h, value, control
        )
        for i, u in enumerate(control):
            after, power = battery.move(bat, grid.soe[i], u, dt_h)
            cost = price_dt * power + battery.wear(bat, u, dt_h) + np.interp(after, grid.soe, cont)
            assert cost == pytest.approx(value[i], abs=1e-9)
