"""The passive law in the co-simulation: households left to themselves import what its FPK says.

The engine clips every control to what the battery can take (as a HEMS does),
the mean-field chain pushes the law's table as given: the two agree only when
the table holds feasible controls — a full EV asked to charge draws nothing.
"""

from __future__ import annotations

import numpy as np

from cosim.sim.engine import CoSimulation
from cosim.sim.simulation import collect
from models.feedback import FeedbackLaw
from models.game import build_game
from models.passive import passive_equilibrium
from tests.models.conftest import small_config

HOUSEHOLDS = 600


def test_the_simulated_households_import_the_passive_laws_flow():
    game = build_game(small_config())
    law = passive_equilibrium(game)
    sim = CoSimulation(
        law.game,
        FeedbackLaw.from_equilibrium(law),
        law.mode,
        np.full(game.n_clusters, HOUSEHOLDS),
        days=1,
        seed=5,
    )
    sim.run()
    realised = collect(sim, 0.0).aggregates["m_kw"].to_numpy().reshape(game.steps, -1).T
    expected = law.flow.net_kw
    # 600 households per cluster: the mean exchange is within a few tenths of a kW
    assert np.max(np.abs(realised - expected)) < 0.4
    # once the EVs are full (the last steps) neither side counts them charging
    late = slice(game.steps - 3, game.steps)
    assert np.max(np.abs(realised[:, late] - expected[:, late])) < 0.2
    assert np.all(law.flow.ev_kw[:, late] < 0.1)
