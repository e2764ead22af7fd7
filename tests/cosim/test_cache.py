"""The equilibrium cache: a law is reused only for the very game it solves."""

from __future__ import annotations

import numpy as np

from cosim.io.cache import game_hash
from models.config import GameConfig
from models.game import build_game

DISTANCES = np.array([[0.0, 0.25, 0.75], [0.25, 0.0, 0.5], [0.75, 0.5, 0.0]])


def _config() -> GameConfig:
    return GameConfig.model_validate(
        {
            "time": {"dt_h": 1.0},
            "clusters": {
                "count": 3,
                "households": 20,
                "distances": {"kind": "file", "file": "distances.csv"},
            },
            "solver": {"soe_points": 41},
        }
    )


def test_a_distance_file_is_keyed_by_its_content_not_its_name(tmp_path):
    np.savetxt(tmp_path / "distances.csv", DISTANCES, delimiter=",")
    first = game_hash(build_game(_config(), tmp_path))
    assert game_hash(build_game(_config(), tmp_path)) == first

    edited = DISTANCES.copy()
    edited[0, 2] = edited[2, 0] = 0.5
    np.savetxt(tmp_path / "distances.csv", edited, delimiter=",")
    assert game_hash(build_game(_config(), tmp_path)) != first

    other = tmp_path / "elsewhere"
    other.mkdir()
    np.savetxt(other / "distances.csv", DISTANCES, delimiter=",")
    assert game_hash(build_game(_config(), other)) == first  # same content, other place
