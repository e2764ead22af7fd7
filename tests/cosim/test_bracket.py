"""The ε_N bracket (local information) in the co-simulation: known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cosim.studies.bracket import bracket_epsilon
from cosim.studies.deviator import owner_weight, typed_game
from cosim.studies.epsilon import SampleOthers
from cosim.studies.law_under_test import LawUnderTest
from market.pricing import Mode
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.exploitability import continuous_exploitability
from models.game import build_game


def _game():
    config = GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 2, "households": 6, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
        }
    )
    return build_game(config)


def _samples(law: LawUnderTest, households: np.ndarray, reps: int, seed: int) -> pd.DataFrame:
    children = np.random.SeedSequence(seed).spawn(reps)
    return pd.concat(
        [SampleOthers(law, households)(r, s).assign(replication=r) for r, s in enumerate(children)]
    )


@pytest.mark.parametrize("per_cluster", [2, 50])
def test_stand_alone_bracket_holds_the_continuous_exploitability(per_cluster):
    """No price depends on anyone: the relaxation drops nothing, so the upper bound is the
    law's exploitability in the continuous game (with the chain's margin), and the lower
    bound's interval reaches it."""
    law = LawUnderTest.from_equilibrium(solve_equilibrium(_game(), Mode.STANDALONE))
    game = law.game
    hh = np.full(game.n_clusters, per_cluster)
    bracket = bracket_epsilon(law, hh, _samples(law, hh, 4, 1), seed=2, copies=2000)
    for row in bracket.per_cluster.itertuples():
        w = owner_weight(game, per_cluster, row.cluster)
        typed = []
        for t in (True, False):
            x8, x16 = (
                continuous_exploitability(typed_game(game, t), law.stage_price, law.policy, r)
                for r in (8, 16)
            )
            typed.append(np.maximum(x8, x16) + np.abs(x8 - x16))
            assert x8[row.cluster] <= typed[-1][row.cluster]
        expected = w * typed[0][row.cluster] + (1.0 - w) * typed[1][row.cluster]
        assert row.upper == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert row.upper_lo == pytest.approx(row.upper, abs=1e-12)  # nothing random in it
        assert row.lower_lo <= row.upper, row
        assert row.lower_hi >= 0.8 * row.exploitability, row


def test_the_bracket_is_reproducible_and_ordered():
    """The same seed gives the same numbers; the lower bound's interval reaches below the
    upper bound's."""
    law = LawUnderTest.from_equilibrium(solve_equilibrium(_game(), Mode.COC))
    hh = np.full(law.game.n_clusters, 20)
    samples = _samples(law, hh, 6, 3)
    one = bracket_epsilon(law, hh, samples, seed=4, copies=1000)
    two = bracket_epsilon(law, hh, samples, seed=4, copies=1000)
    pd.testing.assert_frame_equal(one.per_cluster, two.per_cluster, check_exact=True)
    assert (one.per_cluster["lower_lo"] <= one.per_cluster["upper_hi"]).all()
    assert (one.per_cluster["upper"] >= 0.0).all()
