"""``.save()`` from Python writes a manifest too; a command's own, richer one replaces it."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cosim
import cosim.io.results
import models.provenance
from cosim.io.results import is_result_directory
from cosim_cli.main import main
from models.checksums import CHECKSUMS

SMALL_GAME = """seed = 5
[scenario]
name = "save-small"
[time]
dt_h = 1.0
[clusters]
count = 2
households = 10
distances = { kind = "line" }
[solver]
soe_points = 41
"""

SMALL_MARKET = """seed = 3
seeds = 1
[scenario]
name = "save-market"
[time]
days = 2
[metrics]
last_days = 1
settle_days = 1
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small.toml"
    path.write_text(SMALL_GAME, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def results(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One small object of each result class, by class name."""
    loaded = cosim.load_scenario(scenario)
    equilibrium = cosim.solve_equilibrium(cosim.build_game(loaded.scenario, loaded.base_dir), "coc")
    market = tmp_path_factory.mktemp("market") / "market.toml"
    market.write_text(SMALL_MARKET, encoding="utf-8")
    study = cosim.EpsilonStudy(
        table=pd.DataFrame({"households": [4, 40], "epsilon": [0.1, 0.01]}),
        gaps=pd.DataFrame({"cluster": [0, 1], "gap": [0.5, 0.25]}),
        rate={"slope": -1.0},
        law={"label": "gmfg", "mode": "coc"},
    )
    found = [
        equilibrium,
        cosim.simulate(equilibrium, households_per_cluster=2, seed=1),
        cosim.run_wholesale(market, storage=False),
        study,
    ]
    return {type(result).__name__: result for result in found}


NAMES = ["EquilibriumResult", "SimulationResult", "ExperimentResult", "EpsilonStudy"]


@pytest.mark.parametrize("name", NAMES)
def test_save_writes_a_manifest_with_versions_commit_and_time(results, name, tmp_path):
    directory = tmp_path / "new" / "result"  # neither exists yet
    old = os.umask(0o022)
    try:
        results[name].save(directory)
    finally:
        os.umask(old)
    found = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert found["tool"] == "prosumer-cosim" and found["saved"] == name
    assert found["versions"]["numpy"] and found["versions"]["python"]
    created = dt.datetime.fromisoformat(found["created_utc"])
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=5)
    assert found["git_commit"] is None or re.fullmatch("[0-9a-f]{40}", found["git_commit"])
    assert found["git_dirty"] in (True, False, None)
    assert is_result_directory(directory)
    assert (directory / CHECKSUMS).is_file()
    # the user's permissions, not a private temporary directory's
    assert directory.stat().st_mode & 0o777 == 0o755
    assert (directory / "manifest.json").stat().st_mode & 0o777 == 0o644
    assert (directory / CHECKSUMS).stat().st_mode & 0o777 == 0o644


def test_each_manifest_says_what_its_object_knows(results, tmp_path):
    for name in NAMES:
        results[name].save(tmp_path / name)
    manifests = {
        name: json.loads((tmp_path / name / "manifest.json").read_text()) for name in NAMES
    }
    equilibrium = manifests["EquilibriumResult"]
    assert equilibrium["seed"] == 5 and equilibrium["mode"] == "coc"
    assert equilibrium["config"]["clusters"]["count"] == 2
    assert equilibrium["config"]["scenario"]["name"] == "save-small"
    experiment = manifests["ExperimentResult"]
    assert experiment["seed"] == 3 and experiment["storage"] is False
    assert experiment["scenario"]["scenario"]["name"] == "save-market"
    assert manifests["EpsilonStudy"]["law"] == {"label": "gmfg", "mode": "coc"}


def test_the_commands_manifest_replaces_the_saved_one_and_the_result_still_loads(
    scenario, tmp_path, capsys
):
    out = tmp_path / "solved"
    assert main(["solve", str(scenario), "--out", str(out)]) == 0
    capsys.readouterr()
    found = json.loads((out / "manifest.json").read_text())
    assert found["command"] == "solve --mode coc" and len(found["scenario_sha256"]) == 64
    assert "summary" in found and found["versions"]["numpy"]
    # the manifest and the figures are not among the files checked on loading
    listed = {line.split("  ")[1] for line in (out / CHECKSUMS).read_text().splitlines()}
    assert "manifest.json" not in listed and "equilibrium.npz" in listed
    assert cosim.EquilibriumResult.load(out).mode == "coc"


def test_the_provenance_helpers_are_still_importable_from_cosim_io_results():
    for name in ("TOOL", "package_versions", "git_commit", "git_dirty"):
        assert getattr(cosim.io.results, name) is getattr(models.provenance, name)
