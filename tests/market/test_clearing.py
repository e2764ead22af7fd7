"""The one clearing rule, eqs. (13), (16)–(20): a hand-solved case, and its callers agree."""

from __future__ import annotations

import numpy as np
import pytest

from market.clearing import (
    ClearingParameters,
    PriceFunction,
    clear_prices,
    clear_shifted,
    graphon_aggregates,
)

#: Two clusters, hard clip: prices by hand.
SHARES = np.array([0.25, 0.75])
GRAPHON = np.array([[1.0, 0.5], [0.5, 1.0]])
WEIGHTS = np.array([0.4, 0.3, 0.3])


def _rule(aggregate: str = "scalar", smoothing: float = 0.0) -> ClearingParameters:
    return ClearingParameters(
        local=PriceFunction(np.array([0.03, 0.04]), np.array([0.01, 0.005]), 0.02, smoothing),
        inter=PriceFunction(np.array([0.03, 0.03]), np.array([0.0075, 0.0075]), 0.02, smoothing),
        shares=SHARES,
        graphon=GRAPHON,
        aggregate=aggregate,
    )


def test_two_clusters_by_hand():
    m = np.array([2.0, -1.0])
    # A = W (λ m) = [[1, .5], [.5, 1]] @ [0.5, -0.75] = [0.125, -0.5]; M_g = λ·A = -0.34375
    cleared = clear_prices(_rule(), m, 0.07, WEIGHTS)
    assert cleared.seen == pytest.approx([0.125, -0.5])
    assert cleared.scalar == pytest.approx(-0.34375)
    assert cleared.rpc == pytest.approx([0.07 - 0.03 + 0.02, 0.07 - 0.04 - 0.005])
    coc = 0.07 - 0.03 + 0.0075 * -0.34375
    assert cleared.coc == pytest.approx([coc, coc])
    assert cleared.stage == pytest.approx(0.4 * cleared.rpc + 0.3 * cleared.coc + 0.3 * 0.07)
    per_cluster = clear_prices(_rule("per_cluster"), m, 0.07, WEIGHTS)
    assert per_cluster.coc == pytest.approx([0.04 + 0.0075 * 0.125, 0.04 + 0.0075 * -0.5])


def test_prices_stay_between_floor_and_grid_price():
    m = np.array([[1e3, -1e3, 0.0], [-1e3, 1e3, 0.0]])
    cleared = clear_prices(_rule(smoothing=0.002), m, 0.07, WEIGHTS)
    for price in (cleared.rpc, cleared.coc, cleared.stage):
        assert np.all((price >= 0.02) & (price <= 0.07))


@pytest.mark.parametrize("aggregate", ["scalar", "per_cluster"])
def test_one_cluster_is_that_row_of_the_full_clearing(aggregate: str):
    rng = np.random.default_rng(4)
    m = rng.normal(0.0, 2.0, (2, 5, 7))
    p_g = rng.uniform(0.05, 0.09, 7)
    full = clear_prices(_rule(aggregate, 0.002), m, p_g, WEIGHTS)
    for p in range(2):
        one = clear_prices(_rule(aggregate, 0.002), m, p_g, WEIGHTS, cluster=p)
        np.testing.assert_array_equal(one.stage, full.stage[p])
        np.testing.assert_array_equal(one.rpc, full.rpc[p])
        np.testing.assert_array_equal(one.coc, full.coc[p])


def test_weights_per_step_broadcast_over_clusters():
    rng = np.random.default_rng(5)
    m = rng.normal(0.0, 2.0, (2, 4))
    weights = rng.dirichlet(np.ones(3), size=4)  # (K, 3)
    cleared = clear_prices(_rule(), m, 0.07, weights)
    for k in range(4):
        step = clear_prices(_rule(), m[:, k], 0.07, weights[k])
        np.testing.assert_allclose(step.stage, cleared.stage[:, k], rtol=1e-15)


def test_aggregates_of_any_trailing_shape_match_the_definition():
    rng = np.random.default_rng(6)
    m = rng.normal(size=(2, 3, 4))
    seen, scalar = graphon_aggregates(GRAPHON, SHARES, m)
    assert seen.shape == m.shape and scalar.shape == (3, 4)
    expected = np.einsum("pq,q,qij->pij", GRAPHON, SHARES, m)
    np.testing.assert_allclose(seen, expected, rtol=1e-14)
    np.testing.assert_allclose(scalar, np.einsum("p,pij->ij", SHARES, expected), rtol=1e-14)


@pytest.mark.parametrize("aggregate", ["scalar", "per_cluster"])
def test_a_shifted_cluster_clears_as_the_shifted_vector(aggregate: str):
    """Moving one cluster's mean along many shifts at once gives the clearing of each
    shifted vector: the aggregates are linear in the means."""
    rng = np.random.default_rng(9)
    m = rng.normal(0.0, 2.0, (2, 5))  # (M, S)
    shift = rng.normal(0.0, 3.0, (5, 11))  # (S, X)
    p_g = rng.uniform(0.05, 0.09, (5, 1))
    rule = _rule(aggregate, 0.002)
    for p in range(2):
        moved = np.broadcast_to(m[:, :, None], (2, 5, 11)).copy()
        moved[p] += shift
        expected = clear_prices(rule, moved, p_g, WEIGHTS, cluster=p).stage
        np.testing.assert_allclose(
            clear_shifted(rule, m, shift, p_g, WEIGHTS, cluster=p), expected, rtol=0, atol=1e-15
        )
