"""Cross-field rules of the game's configuration, enforced by build_game as by the loader."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from cosim.scenario.game import ScenarioError, load_scenario
from market.schema import ConfigError, Violation
from models.config import GameConfig
from models.game import build_game
from models.validation import game_violations

#: Three clusters, two household counts, and a step that does not divide the day.
INCONSISTENT = {
    "clusters": {"count": 3, "households": [10, 20]},
    "time": {"dt_h": 0.7},
}
INCONSISTENT_TOML = """\
[clusters]
count = 3
households = [10, 20]

[time]
dt_h = 0.7
"""


def test_build_game_refuses_what_the_loader_refuses(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text(INCONSISTENT_TOML, encoding="utf-8")
    with pytest.raises(ScenarioError) as loader:
        load_scenario(path)
    with pytest.raises(ConfigError) as built:
        build_game(GameConfig.model_validate(INCONSISTENT))
    prefix = f"{path}: "
    loader_lines = str(loader.value).splitlines()
    assert all(line.startswith(prefix) for line in loader_lines)
    assert str(built.value).splitlines() == [line.removeprefix(prefix) for line in loader_lines]
    assert [v.path for v in built.value.violations] == ["time.dt_h", "clusters.households"]
    assert "clusters.households: [10, 20]: needs one value per cluster (3)" in str(built.value)


@pytest.mark.parametrize("horizon_h", [12.0, 23.0, 48.0])
def test_the_game_covers_one_day(horizon_h: float):
    config = GameConfig.model_validate({"time": {"dt_h": 1.0, "horizon_h": horizon_h}})
    with pytest.raises(ConfigError) as info:
        build_game(config)
    (violation,) = info.value.violations
    assert violation.path == "time.horizon_h" and violation.value == horizon_h
    assert "must be 24 h" in violation.rule


def test_a_consistent_configuration_has_no_violations():
    assert game_violations(GameConfig()) == []


def test_a_config_error_survives_pickling():
    error = ConfigError([Violation("time.dt_h", 0.7, "must divide time.horizon_h (24.0)")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ConfigError
    assert again.violations == error.violations and str(again) == str(error)
    scenario = ScenarioError("f.toml", error.violations)
    again = pickle.loads(pickle.dumps(scenario))
    assert type(again) is ScenarioError and again.file == "f.toml"
    assert str(again) == str(scenario)
