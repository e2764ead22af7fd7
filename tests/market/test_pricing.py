"""Price functions of eqs. (19)–(20): increasing, Lipschitz, between floor and grid price."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.pricing import (
    Mode,
    WeightsConfig,
    hourly_to_steps,
    mode_weights,
    price_curve,
    price_curve_slope,
    smooth_clip,
)

aggregates = np.linspace(-20.0, 20.0, 4001)


@pytest.fixture(autouse=True, scope="module")
def _compiled_price_function():
    """Make the price ufunc once (it is built on first use), outside Hypothesis' deadline."""
    price_curve(aggregates, 0.07, 0.03, 0.0075, 0.02, 0.002)
    smooth_clip(aggregates, -0.5, 0.5, 0.1)


@given(
    delta=st.floats(0.0, 0.06),
    slope=st.floats(0.0, 0.05),
    width=st.floats(0.0, 0.01),
)
def test_price_is_increasing_and_within_floor_and_grid_price(delta, slope, width):
    p = price_curve(aggregates, 0.07, delta, slope, 0.02, width)
    assert np.all(np.diff(p) >= -1e-15)
    assert np.all(p <= 0.07 + 1e-15)
    assert np.all(p >= 0.02 - 1e-15)
    # Lipschitz with constant `slope`
    assert np.all(np.abs(np.diff(p)) <= slope * (aggregates[1] - aggregates[0]) + 1e-15)


def test_hard_clip_is_the_zero_width_limit():
    hard = price_curve(aggregates, 0.07, 0.03, 0.0075, 0.02, 0.0)
    soft = price_curve(aggregates, 0.07, 0.03, 0.0075, 0.02, 1e-6)
    assert np.max(np.abs(hard - soft)) < 1e-6
    assert hard[2000] == 0.07 - 0.03  # m = 0


def test_slope_matches_finite_differences():
    h = 1e-6
    for width in (0.0, 0.002):
        d = price_curve_slope(aggregates, 0.07, 0.03, 0.0075, 0.02, width)
        fd = (
            price_curve(aggregates + h, 0.07, 0.03, 0.0075, 0.02, width)
            - price_curve(aggregates - h, 0.07, 0.03, 0.0075, 0.02, width)
        ) / (2 * h)
        inside = np.abs(aggregates - np.round(aggregates)) > 1e-3  # away from hard kinks
        assert np.allclose(d[inside], fd[inside], atol=1e-7)


def test_smooth_clip_stays_inside_bounds_for_extremes():
    x = np.array([-1e6, -1.0, 0.0, 1.0, 1e6])
    y = smooth_clip(x, -0.5, 0.5, 0.1)
    assert np.all((y >= -0.5) & (y <= 0.5))
    assert y[0] == -0.5 and y[-1] == 0.5


def test_mode_weights():
    hours = np.arange(96) * 0.25
    cfg = WeightsConfig()
    assert np.array_equal(mode_weights(Mode.STANDALONE, cfg, hours), np.tile([0, 0, 1.0], (96, 1)))
    assert np.allclose(mode_weights(Mode.COC, cfg, hours), [0.4, 0.3, 0.3])
    hourly = WeightsConfig(coc=[[0.4, 0.3, 0.3]] * 12 + [[0.2, 0.2, 0.6]] * 12)
    w = mode_weights(Mode.COC, hourly, hours)
    assert np.allclose(w[47], [0.4, 0.3, 0.3]) and np.allclose(w[48], [0.2, 0.2, 0.6])


@pytest.mark.parametrize("mode", list(Mode))
def test_mode_weights_take_the_mode_or_its_name(mode: Mode):
    hours = np.arange(24.0)
    cfg = WeightsConfig()
    np.testing.assert_array_equal(
        mode_weights(mode.value, cfg, hours), mode_weights(mode, cfg, hours)
    )
    assert np.array_equal(mode_weights("rpc", cfg, hours)[0], [0.5, 0.0, 0.5])


def test_mode_weights_refuse_an_unknown_mode():
    with pytest.raises(ValueError, match="'p2p' is not a valid Mode"):
        mode_weights("p2p", WeightsConfig(), np.arange(24.0))


def test_hourly_tariff_expands_to_steps():
    tariff = [0.05] * 7 + [0.1] * 17
    p = hourly_to_steps(tariff, np.arange(96) * 0.25)
    assert p[27] == 0.05 and p[28] == 0.1 and p.shape == (96,)


def test_one_price_function_for_arrays_and_compiled_kernels():
    """``price_curve`` is ``price_at`` over arrays, and both are the softplus clip to the bit."""
    from market.pricing import price_at

    rng = np.random.default_rng(3)
    m = rng.normal(0.0, 3.0, 2000)
    p_g = rng.choice([0.07, 0.12], 2000)
    delta, slope, floor, width = 0.03, 0.0075, 0.02, 0.002
    arrays = price_curve(m, p_g, delta, slope, floor, width)
    pairs = zip(m, p_g, strict=True)
    scalars = np.array([price_at(x, g, delta, slope, floor, width) for x, g in pairs])
    assert np.array_equal(arrays, scalars)
    raw = p_g - delta + slope * m
    closed = np.clip(
        floor
        + width * np.logaddexp(0.0, (raw - floor) / width)
        - width * np.logaddexp(0.0, (raw - p_g) / width),
        floor,
        p_g,
    )
    assert np.array_equal(arrays, closed)
    hard = price_curve(m, p_g, delta, slope, floor, 0.0)
    assert np.array_equal(hard, np.clip(raw, floor, p_g))
