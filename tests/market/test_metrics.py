"""IMV, ex-post cost and settling (market/metrics.py): hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from market.metrics import day_to_day_change, ex_post_cost, imv, settling


def test_imv_of_a_hand_sequence():
    # |12-10| + |9-12| + |9-9| + |13-9| = 2 + 3 + 0 + 4 = 9 over T = 4 increments
    assert imv([10.0, 12.0, 9.0, 9.0, 13.0]) == pytest.approx(9.0 / 4.0)


def test_imv_per_column_and_of_a_constant():
    prices = np.array([[10.0, 5.0], [12.0, 5.0], [9.0, 5.0]])
    np.testing.assert_allclose(imv(prices, axis=0), [2.5, 0.0])
    assert imv(np.full(7, 30.0)) == 0.0


def test_imv_needs_two_prices():
    with pytest.raises(ValueError, match="at least two"):
        imv([1.0])


def test_ex_post_cost_is_bid_times_price_times_hours():
    bids = np.array([[10.0, -2.0], [5.0, 0.0]])  # MW
    lmp = np.array([[20.0, 30.0], [40.0, 50.0]])  # $/MWh
    cost = ex_post_cost(bids, lmp, dt_h=2.0)
    # step 0: (10·20 − 2·30)·2 = 280; step 1: 5·40·2 = 400
    np.testing.assert_allclose(cost, [280.0, 400.0])
    assert cost.cumsum()[-1] == pytest.approx(680.0)
    with pytest.raises(ValueError, match="shape"):
        ex_post_cost(bids, lmp[:, :1], 1.0)


def test_day_to_day_change_and_settling():
    # three days of two slots: changes day0→1: (|2|+|4|)/2 = 3, day1→2: (0+1)/2 = 0.5
    prices = [10.0, 20.0, 12.0, 24.0, 12.0, 25.0]
    np.testing.assert_allclose(day_to_day_change(prices, 2), [3.0, 0.5])
    first, last = settling(prices, 2, 1)
    assert (first, last) == (pytest.approx(3.0), pytest.approx(0.5))
    with pytest.raises(ValueError, match="whole days"):
        day_to_day_change(prices[:5], 2)
    with pytest.raises(ValueError, match="window"):
        settling(prices, 2, 3)
