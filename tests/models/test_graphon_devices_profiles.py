"""Graphon (eq. (14), (17)–(18)), device physics and the shipped profiles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import battery, devices, graphon, profiles
from models.battery import Battery


@given(m=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), alpha=st.floats(0.0, 10.0))
@settings(max_examples=40, deadline=None)
def test_distances_are_valid_and_the_graphon_is_monotone(m, seed, alpha):
    for make in (graphon.radial_feeder_distances, graphon.line_distances):
        e = make(m, np.random.default_rng(seed))
        assert graphon.distance_violations(e, m) == []
        w = graphon.graphon_weights(e, alpha)
        assert np.all((w > 0) & (w <= 1))
        shares = np.random.default_rng(seed).dirichlet(np.ones(m))
        # tree and line metrics give a positive semi-definite exp(−α e)
        assert graphon.monotonicity_eigenvalue(w, shares) >= -1e-10


def test_distance_violations_name_each_rule():
    e = np.array([[0.0, 0.5], [0.4, 0.1]])
    rules = graphon.distance_violations(e, 2)
    assert "must be symmetric" in rules and "diagonal must be zero" in rules
    assert graphon.distance_violations(np.zeros((2, 3)), 2)[0].startswith("must be 2×2")
    assert graphon.distance_violations(np.array([[0, 2.0], [2.0, 0]]), 2) == [
        "entries must lie in [0, 1]"
    ]


def test_graphon_aggregates_match_the_definition():
    rng = np.random.default_rng(1)
    m, k = 5, 7
    w = graphon.graphon_weights(graphon.line_distances(m, rng), 2.0)
    shares = rng.dirichlet(np.ones(m))
    mean = rng.normal(size=(m, k))
    seen, scalar = graphon.graphon_aggregates(w, shares, mean)
    for p in range(m):
        for t in range(k):
            assert seen[p, t] == pytest.approx(
                sum(w[p, q] * shares[q] * mean[q, t] for q in range(m))
            )
    assert np.allclose(scalar, shares @ seen)


def test_uniform_window_hazards_reproduce_the_uniform_cdf():
    dt_h = 0.25
    hours = np.arange(96) * dt_h
    h = devices.uniform_window_hazard((7.0, 9.0), hours, dt_h)
    survive = np.cumprod(1.0 - h)  # P(not yet happened) at the end of each step
    expected = 1.0 - np.clip((hours + dt_h - 7.0) / 2.0, 0.0, 1.0)
    assert np.allclose(survive, expected, atol=1e-12)
    assert h[:28].sum() == 0 and h[36:].sum() == 0


def test_positive_part_mean_matches_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for eps in (0.1, 0.5, 1.5):
        mc = np.maximum(0.0, 1.0 + eps * z).mean()
        assert devices.positive_part_mean(eps) == pytest.approx(mc, abs=5e-3 * max(eps, 0.3))


def test_battery_moves_respect_bounds_and_efficiency():
    soe = np.linspace(1.0, 10.0, 19)
    bat = Battery(1.0, 10.0, 3.0, 3.0, 0.9, degradation=0.0, noise_kwh=0.0)
    lo = np.array([battery.feasible(bat, -1.0, b, 0.5) for b in soe])
    hi = np.array([battery.feasible(bat, 1.0, b, 0.5) for b in soe])
    assert np.all((lo >= -1) & (lo <= 0) & (hi >= 0) & (hi <= 1))
    for u in (lo, hi):
        after = soe + np.array([battery.stored_change(bat, x, 0.5) for x in u])
        assert np.all((after >= 1.0 - 1e-12) & (after <= 10.0 + 1e-12))
    # a round trip of 1 kWh from the grid returns 0.81 kWh
    stored = battery.stored_change(bat, 1 / 3, 1.0)
    assert stored == pytest.approx(0.9)
    drawn = battery.stored_change(bat, -0.9 * 0.9 / 3, 1.0)
    assert drawn == pytest.approx(-0.9)


def test_controllable_response_minimises_its_stage_cost():
    prices = np.linspace(0.0, 0.2, 41)
    u = devices.controllable_response(prices, 2.5, 0.2, 0.05)
    grid = np.linspace(-1, 1, 20001)
    for p, ui in zip(prices, u, strict=True):
        cost = p * 0.5 * (1 + grid) + 0.05 * grid**2
        assert p * 0.5 * (1 + ui) + 0.05 * ui**2 <= cost.min() + 1e-12


def test_ar1_noise_is_stationary_with_unit_variance():
    z = devices.ar1_noise(np.random.default_rng(4), (20_000, 50), 0.9)
    assert np.allclose(z.std(axis=0), 1.0, atol=0.03)
    lag = np.mean(z[:, 1:] * z[:, :-1])
    assert lag == pytest.approx(0.9, abs=0.02)


def test_pv_profile_is_zero_at_night_and_plausible_by_day():
    pv = profiles.pv_per_kwp(45.5, -73.57, 50.0, "America/Montreal", dt.date(2025, 6, 21), 0.25, 96)
    assert pv.shape == (96,)
    assert np.all(pv[:16] == 0) and np.all(pv[-8:] == 0)  # before 04:00, after 22:00
    assert 0.6 < pv.max() < 1.0  # kW per kWp under clear sky, after losses
    daily = pv.sum() * 0.25
    assert 5.0 < daily < 9.0  # kWh per kWp on a clear June day at 45.5° N
    assert 11.0 <= np.argmax(pv) * 0.25 <= 15.0  # solar noon ≈ 13:00 local (EDT)


def test_base_load_is_the_bdew_h0_shape_scaled_to_one_kwh():
    z = profiles.base_load_per_kwh(dt.date(2025, 6, 21), 0.25, 96)
    assert z.sum() * 0.25 == pytest.approx(1.0, rel=1e-12)
    assert z.min() > 0
    night, evening = z[12:20].mean(), z[72:84].mean()  # 03–05 h vs 18–21 h
    assert evening > 1.5 * night
    hourly = profiles.base_load_per_kwh(dt.date(2025, 6, 21), 1.0, 24)
    assert np.allclose(hourly, z.reshape(24, 4).mean(axis=1))
