"""``cosim epsilon``: the ε_N study with M fixed, and with M growing (``--clusters``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cosim.io.cache import game_hash
from cosim.scenario.game import load_scenario
from cosim.studies.epsilon import INFO_LOCAL
from cosim.studies.epsilon_study import scenario_with_clusters
from cosim_cli.main import main
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
LINE = '{ kind = "line" }'


def write(tmp_path, distances: str = LINE, extra: str = ""):
    path = tmp_path / "eps.toml"
    path.write_text(SCENARIO.format(distances=distances) + extra)
    return path


def test_epsilon_command_writes_table_figure_and_manifest(tmp_path, capsys):
    scenario = tmp_path / "eps.toml"
    scenario.write_text(
        'seed = 4\n[scenario]\nname = "eps"\n[time]\ndt_h = 1.0\n'
        '[clusters]\ncount = 2\nhouseholds = 10\ndistances = { kind = "line" }\n'
        "[solver]\nsoe_points = 41\n"
    )
    out = tmp_path / "out"
    args = ["epsilon", str(scenario), "--sizes", "2,20", "--reps", "4", "--json"]
    args += ["--out", str(out), "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "c")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["info"] == INFO_LOCAL and summary["sizes"] == [2, 20]
    table = pd.read_parquet(out / "epsilon.parquet")
    assert list(table["households"]) == [4, 40]
    assert {"epsilon", "epsilon_lo", "epsilon_hi", "bias", "price_error"} <= set(table.columns)
    assert (out / "epsilon.png").stat().st_size > 0
    assert json.loads((out / "manifest.json").read_text())["command"] == "epsilon"
    # run again: every replication is reused, the table is the same
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(
        table.drop(columns="seconds"),
        pd.read_parquet(out / "epsilon.parquet").drop(columns="seconds"),
        check_exact=True,
    )


def test_each_m_solves_its_own_game_and_fills_one_row(tmp_path, capsys, epsilon_args):
    scenario = write(tmp_path)
    args = epsilon_args(scenario, "--clusters", "2,3", "--sizes", "2", "--reps", "2")
    assert main([*args, "--build-reps", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["study"] == "clusters growing" and summary["clusters"] == [2, 3]

    table = pd.read_parquet(tmp_path / "out" / "epsilon.parquet")
    assert list(table["clusters"]) == [2, 3]
    assert list(table["households_per_cluster"]) == [2, 2]
    assert list(table["households"]) == [4, 6]
    loaded = load_scenario(scenario)
    expected = [
        game_hash(build_game(scenario_with_clusters(loaded.scenario, m, loaded.base_dir)))
        for m in (2, 3)
    ]
    assert list(table["game"]) == expected and expected[0] != expected[1]
    # at the scenario's own M the game is the scenario's: its law is shared with the M-fixed study
    assert expected[0] == game_hash(build_game(loaded.scenario, loaded.base_dir))
    # each M's law was solved (and cached) for its own game
    solved = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert solved == sorted(f"{h[:16]}-coc" for h in expected)
    # one work directory per M, each stamped with its own game and size
    for m, digest in zip((2, 3), expected, strict=True):
        stamp = json.loads((tmp_path / "work" / f"m{m}" / "n2" / "study.json").read_text())
        assert stamp["game"] == digest and stamp["households"] == [2] * m
    gaps = pd.read_parquet(tmp_path / "out" / "gaps.parquet")
    assert sorted(gaps.groupby("clusters")["cluster"].nunique().items()) == [(2, 2), (3, 3)]
    assert (gaps["households"] == 2 * gaps["clusters"]).all()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(manifest["summary"]["law_info"]) == {"2", "3"}
    assert (tmp_path / "out" / "epsilon.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("distances", "extra", "options", "message"),
    [
        (LINE, "", ["--clusters", "2,3", "--sizes", "2,20"], "exactly one --sizes"),
        (LINE, "", ["--clusters", "2,3"], "exactly one --sizes"),
        (LINE, "", ["--clusters", "0,2", "--sizes", "2"], "cluster counts ≥ 1"),
        (LINE, "", ["--clusters", "2,2", "--sizes", "2"], "distinct"),
        (LINE, "", ["--clusters", "two", "--sizes", "2"], "cluster counts ≥ 1"),
        (LINE, "", ["--clusters", "2,20000", "--sizes", "2"], "--clusters: 20000: solving"),
        (
            '{ kind = "matrix", matrix = [[0.0, 0.5], [0.5, 0.0]] }',
            "",
            ["--clusters", "2,3", "--sizes", "2"],
            "growing M needs distances drawn",
        ),
        (
            LINE,
            "[household.ev]\nshare = [0.2, 0.4]\n",
            ["--clusters", "2,3", "--sizes", "2"],
            "household.ev.share: needs one value per cluster (3)",
        ),
    ],
)
def test_bad_combinations_exit_2_and_write_nothing(
    tmp_path, capsys, epsilon_args, distances, extra, options, message
):
    scenario = write(tmp_path, distances, extra)
    assert main(epsilon_args(scenario, *options, "--reps", "2")) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""  # errors go to stderr
    for name in ("out", "work", "cache"):
        assert not (tmp_path / name).exists()
