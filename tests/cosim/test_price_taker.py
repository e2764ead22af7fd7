"""The fine-grid price taker: a deviation that shares none of the law's discretisation."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.studies.deviation import FineTables
from cosim.studies.epsilon import MeasureGap
from cosim.studies.gap_statistics import Precision
from cosim.studies.law_under_test import LawUnderTest
from cosim.studies.price_taker import measure_price_taker_gap
from market.pricing import Mode
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.game import build_game

HOUSEHOLDS = np.array([6, 6])


@pytest.fixture(scope="module")
def standalone():
    """A two-cluster game in stand-alone mode: no price depends on anyone."""
    config = GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 2, "households": 6, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
        }
    )
    return solve_equilibrium(build_game(config), Mode.STANDALONE)


def test_deviating_to_the_laws_own_tables_gains_nothing(standalone):
    law = LawUnderTest.from_equilibrium(standalone)
    game = law.game
    own = FineTables(
        ess=law.policy.ess,
        ev=law.policy.ev,
        ess_grid=(float(game.ess.soe[0]), game.ess.spacing),
        ev_grid=(float(game.ev.soe[0]), game.ev.spacing),
    )
    rows = MeasureGap(law, HOUSEHOLDS, own)(0, np.random.SeedSequence(4))
    assert np.all(np.abs(rows["gap"]) <= 1e-12)


def test_in_standalone_its_gain_is_the_laws_continuous_exploitability(standalone):
    """The known answer: with prices fixed, E[gain] is what the law loses in the continuous game.

    Every cluster's simultaneous interval holds the solver's figure, and the
    gain pooled over clusters is positive beyond its interval: the deviation
    finds the loss the law's own grid cannot see.
    """
    law = LawUnderTest.from_equilibrium(standalone)
    measured = measure_price_taker_gap(law, HOUSEHOLDS, 40, seed=5)
    frame, per, (_, lo, hi, _) = measured.rows, measured.per_cluster, measured.largest
    expected = standalone.exploitability_continuous_by_cluster
    assert np.all((per["lo"] <= expected) & (expected <= per["hi"])), (per, expected)
    assert lo <= np.max(expected) <= hi
    pooled = frame["gap"]
    assert pooled.mean() - 2.0 * pooled.std(ddof=1) / np.sqrt(len(pooled)) > 0.0
    assert standalone.exploitability <= 0.1 * np.max(expected)  # invisible on the law's grid


def test_replications_are_added_until_the_interval_is_precise_enough(standalone):
    """Batches extend one another (same seed children); the stopping rule says why it stopped."""
    law = LawUnderTest.from_equilibrium(standalone)
    one = measure_price_taker_gap(law, HOUSEHOLDS, 4, seed=5)
    assert (one.replications, one.stopped) == (4, "fixed")
    loose = measure_price_taker_gap(law, HOUSEHOLDS, 4, seed=5, precision=Precision(floor=1.0))
    assert (loose.replications, loose.stopped) == (4, "precise")
    strict = Precision(relative=1e-6, max_replications=12)
    capped = measure_price_taker_gap(law, HOUSEHOLDS, 4, seed=5, precision=strict)
    assert (capped.replications, capped.stopped) == (12, "max_replications")
    first = capped.rows[capped.rows["replication"] < 4].reset_index(drop=True)
    assert first.equals(one.rows)  # the first batch is the one-batch run, bit for bit
