"""The ε_N study with M growing: the scenario rebuilt with M clusters drawn from its graphon."""

from __future__ import annotations

import pytest

from cosim.scenario.game import load_scenario
from cosim.studies.epsilon_study import scenario_with_clusters
from models.game import build_game

SCENARIO = """seed = 4
[scenario]
name = "eps-m"
[time]
dt_h = 1.0
[clusters]
count = 2
households = 10
distances = {distances}
[solver]
soe_points = 41
"""


def loaded_scenario(tmp_path, distances: str = '{ kind = "line" }'):
    path = tmp_path / "eps.toml"
    path.write_text(SCENARIO.format(distances=distances))
    return load_scenario(path)


def test_clusters_are_redrawn_from_the_graphon(tmp_path):
    loaded = loaded_scenario(tmp_path)
    games = {m: build_game(scenario_with_clusters(loaded.scenario, m)) for m in (2, 5)}
    for m, game in games.items():
        assert game.n_clusters == m and game.weights.shape == (m, m)
        assert len(set(game.clusters.pv_kwp)) == m  # M draws of the type distribution
        assert game.clusters.shares.sum() == pytest.approx(1.0)


def test_fixed_distances_belong_to_one_m(tmp_path):
    loaded = loaded_scenario(tmp_path, '{ kind = "matrix", matrix = [[0.0, 0.5], [0.5, 0.0]] }')
    with pytest.raises(ValueError, match=r"clusters\.distances\.kind = 'matrix': growing M needs"):
        scenario_with_clusters(loaded.scenario, 3)
