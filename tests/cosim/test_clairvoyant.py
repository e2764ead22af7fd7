"""The full-information upper bound (price-clairvoyant relaxation): known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.studies.bracket import bracket_epsilon
from cosim.studies.clairvoyant import clairvoyant_upper
from cosim.studies.law_under_test import LawUnderTest
from market.pricing import Mode
from models.equilibrium import solve_equilibrium
from tests.cosim.test_bracket import _game, _samples


def test_stand_alone_clairvoyance_is_worth_nothing():
    """Prices depend on no one: knowing them in advance adds nothing, so the full-information
    upper bound is the local one (the law's continuous exploitability with its margin)."""
    law = LawUnderTest.from_equilibrium(solve_equilibrium(_game(), Mode.STANDALONE))
    hh = np.full(law.game.n_clusters, 5)
    samples = _samples(law, hh, 4, 1)
    local = bracket_epsilon(law, hh, samples, seed=2, copies=500).per_cluster
    full = clairvoyant_upper(law, hh, samples, seed=2, copies=500)
    np.testing.assert_allclose(full["upper"], local["upper"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(full["upper_se"], 0.0, atol=1e-12)


@pytest.mark.parametrize("per_cluster", [3, 40])
def test_clairvoyance_only_raises_the_upper_bound(per_cluster):
    """On the same samples and own paths, the relaxation with the day's prices known is at
    least the local one: the exploitability is convex in the prices (Jensen) and a minimum
    of the mean bill is at least the mean of the per-sample minima."""
    law = LawUnderTest.from_equilibrium(solve_equilibrium(_game(), Mode.COC))
    hh = np.full(law.game.n_clusters, per_cluster)
    samples = _samples(law, hh, 8, 3)
    local = bracket_epsilon(law, hh, samples, seed=4, copies=500).per_cluster
    full = clairvoyant_upper(law, hh, samples, seed=4, copies=500)
    assert (full["upper"] >= local["upper"] - 1e-12).all(), (full, local)
    assert (full["upper_lo"] <= full["upper"]).all()
