"""Small games for the mean-field tests: a few clusters, hourly steps, coarse grids."""

from __future__ import annotations

import pytest

from models.config import GameConfig


def small_config(**overrides: dict) -> GameConfig:
    """A fast game: 3 clusters, hourly steps, 41 SoE points; ``overrides`` per section."""
    data = {
        "seed": 11,
        "time": {"dt_h": 1.0},
        "clusters": {"count": 3, "households": 20, "distances": {"kind": "line"}},
        "solver": {"soe_points": 41},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return GameConfig.model_validate(data)


@pytest.fixture
def make_config():
    """Factory of small game configurations."""
    return small_config
