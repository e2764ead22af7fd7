"""A saved equilibrium reloads the same game wherever it is loaded from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from market.pricing import Mode
from market.schema import ConfigError
from models.archive import load_equilibrium, save_equilibrium
from models.equilibrium import solve_equilibrium
from models.game import build_game
from models.result import EquilibriumResult

#: Distances of three clusters, read from a CSV file named relative to the scenario.
DISTANCES = np.array([[0.0, 0.25, 0.75], [0.25, 0.0, 0.5], [0.75, 0.5, 0.0]])


@pytest.fixture
def scenario_dir(tmp_path):
    """A scenario's directory holding its distances file; the working directory elsewhere."""
    directory = tmp_path / "scenario"
    directory.mkdir()
    np.savetxt(directory / "distances.csv", DISTANCES, delimiter=",")
    (tmp_path / "elsewhere").mkdir()
    return directory


@pytest.fixture
def solved(make_config, scenario_dir):
    """A solved game whose distances come from ``distances.csv`` beside the scenario."""
    config = make_config(clusters={"distances": {"kind": "file", "file": "distances.csv"}})
    return solve_equilibrium(build_game(config, scenario_dir), Mode.STANDALONE)


def assert_same(back: EquilibriumResult, res: EquilibriumResult) -> None:
    assert np.array_equal(back.game.distances, DISTANCES)
    assert np.array_equal(back.game.weights, res.game.weights)
    assert np.array_equal(back.prices.stage, res.prices.stage)
    assert np.array_equal(back.cost, res.cost)


def test_relative_files_are_read_beside_the_scenario_from_any_directory(
    solved, tmp_path, monkeypatch
):
    save_equilibrium(solved, tmp_path / "eq")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert_same(load_equilibrium(tmp_path / "eq"), solved)
    assert_same(EquilibriumResult.load(tmp_path / "eq"), solved)


def test_a_relative_base_dir_is_kept_as_an_absolute_one(make_config, tmp_path, monkeypatch):
    (tmp_path / "scenario").mkdir()
    np.savetxt(tmp_path / "scenario" / "distances.csv", DISTANCES, delimiter=",")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    config = make_config(clusters={"distances": {"kind": "file", "file": "distances.csv"}})
    game = build_game(config, Path("scenario"))
    assert game.base_dir == (tmp_path / "scenario").resolve()
    solved = solve_equilibrium(game, Mode.STANDALONE)
    solved.save("eq")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert_same(EquilibriumResult.load(tmp_path / "eq"), solved)


def test_a_result_saved_without_base_dir_loads_as_before(
    solved, scenario_dir, tmp_path, monkeypatch
):
    save_equilibrium(solved, tmp_path / "eq")
    for name in ("paths.json", "checksums.sha256"):  # as an earlier version of the project saved it
        (tmp_path / "eq" / name).unlink()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="file not found"):
        load_equilibrium(tmp_path / "eq")  # relative names: the working directory
    assert_same(load_equilibrium(tmp_path / "eq", base_dir=scenario_dir), solved)
    monkeypatch.chdir(scenario_dir)
    assert_same(load_equilibrium(tmp_path / "eq"), solved)
