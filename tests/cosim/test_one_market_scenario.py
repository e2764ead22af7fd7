"""One-market scenario files: every rule broken is one line naming the field, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.scenario.game import ScenarioError
from cosim.scenario.one_market import load_one_market_scenario
from cosim_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GAME = (ROOT / "scenarios" / "one_market" / "oahu_suburb.toml").read_text(encoding="utf-8")

GOOD = """
seed = 1
[scenario]
name = "om"
[time]
market_interval_h = 2.0
[network]                  # the built-in PJM 5-bus case: buses A..E, demand at B, C, D
[[coc]]
bus = "B"
game_file = "game.toml"
households = 1000
[[coc]]
bus = 2
game_file = "game.toml"
households = 1000
[aggregators]
buses = "rest"
"""


def write(tmp_path: Path, text: str, game: str = GAME) -> Path:
    (tmp_path / "game.toml").write_text(game, encoding="utf-8")
    path = tmp_path / "om.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_scenario_resolves_buses_and_loads_its_games(tmp_path):
    loaded = load_one_market_scenario(write(tmp_path, GOOD))
    assert loaded.coc_bus == (1, 2)
    assert loaded.aggregator_bus == (3,)  # "rest": D, the one other bus with demand
    assert [g.scenario.scenario.name for g in loaded.games] == ["oahu_suburb"] * 2
    assert main(["validate", str(tmp_path / "om.toml")]) == 0


BAD = [
    ("bus = 2\n", "bus = 1\n", "coc[1].bus: 1: holds coc[0] already: one cluster-of-clusters"),
    ('bus = "B"\n', 'bus = "Q"\n', "coc[0].bus: 'Q': is not a bus name of"),
    ("bus = 2\n", "bus = 7\n", "coc[1].bus: 7: is not a bus index of"),
    ('buses = "rest"', 'buses = ["D", "C"]', "aggregators.buses[1]: 'C': holds coc[1]"),
    ('buses = "rest"', 'buses = ["D", 3]', "aggregators.buses[1]: 3: is listed twice"),
    ("market_interval_h = 2.0", "market_interval_h = 5.0", "time.market_interval_h: 5.0: must"),
    ("market_interval_h = 2.0", "market_interval_h = 0.1", "its control step 0.25 h must divide"),
    ('game_file = "game.toml"\nhouseholds', 'game_file = "no.toml"\nhouseholds', "file not found"),
    ("households = 1000\n[[coc]]", "households = 0\n[[coc]]", "coc[0].households: 0: "),
    ("[network]", '[network]\nfile = "missing.m"', "network.file: 'missing.m': file not found"),
    (
        '[aggregators]\nbuses = "rest"\n',
        "[compare]\nstorage = true\n",
        "compare.storage: True: compares with the aggregators' storage, but there is no",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD, ids=[b[2][:40] for b in BAD])
def test_each_broken_rule_is_one_line_and_exit_2(tmp_path, capsys, old, new, expected):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 1 and all(line.startswith(f"{path}: ") for line in lines)
    assert any(expected in line for line in lines), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_flexibility_comparison_needs_a_flexible_cluster_of_clusters(tmp_path, capsys):
    one = GOOD.replace("households = 1000\n", "households = 1000\nflexible = false\n", 1)
    compare = "\n[compare]\nflexibility = true\nstorage = true\n"
    loaded = load_one_market_scenario(write(tmp_path, one + compare))
    variants = loaded.scenario.variants()
    assert list(variants) == ["as_given", "no_flexibility", "no_storage", "neither"]
    assert [c.flexible for c in variants["as_given"].coc] == [False, True]
    assert [c.flexible for c in variants["neither"].coc] == [False, False]
    assert variants["no_storage"].aggregators is None and variants["no_storage"].seed == 1
    assert not any(v.compare.flexibility or v.compare.storage for v in variants.values())
    rigid = GOOD.replace("households = 1000\n", "households = 1000\nflexible = false\n")
    path = write(tmp_path, rigid + compare)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "compare.flexibility: True: compares with the households' flexibility, but" in out


def test_a_clusters_game_of_its_own_is_checked_and_its_rules_reported(tmp_path):
    game = GAME.replace("[clusters]\ncount = 4", "[clusters]\ncount = 0")
    game += "\n[wholesale]\nbus = 1\n"
    with pytest.raises(ScenarioError) as err:
        load_one_market_scenario(write(tmp_path, GOOD, game))
    text = str(err.value)
    assert "coc[0].game_file: 'game.toml': clusters.count: 0: " in text
    lines = [ln for ln in text.splitlines() if "coc[1].game_file" in ln]
    assert lines and all("clusters.count" in ln for ln in lines)


def test_every_cluster_of_clusters_shares_one_control_step(tmp_path):
    (tmp_path / "hourly.toml").write_text(GAME.replace("dt_h = 0.25", "dt_h = 1.0"), "utf-8")
    text = GOOD.replace('bus = 2\ngame_file = "game.toml"', 'bus = 2\ngame_file = "hourly.toml"')
    with pytest.raises(ScenarioError, match=r"coc\[1\]\.game_file: 'hourly.toml': its control"):
        load_one_market_scenario(write(tmp_path, text))


def test_a_game_with_a_wholesale_table_is_refused(tmp_path):
    game = GAME + "\n[wholesale]\nbus = 1\n"
    rule = r"coc\[0\]\.game_file: 'game.toml': has a \[wholesale\] table"
    with pytest.raises(ScenarioError, match=rule):
        load_one_market_scenario(write(tmp_path, GOOD, game))


def test_a_run_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COSIM_MEMORY_LIMIT", "2GiB")
    path = write(
        tmp_path, GOOD.replace("households = 1000\n[[coc]]", "households = 50000000\n[[coc]]")
    )
    out = tmp_path / "result"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and not out.exists()
    assert f"{path}: coc[0].households: 50000000: simulating needs about" in err[0]
    assert main(["validate", str(path)]) == 2  # validate reports what run would need
    assert "coc[0].households" in capsys.readouterr().out


def test_the_comparisons_are_priced_for_every_run_they_keep(tmp_path):
    from cosim_cli.limits import one_market_costs

    single = one_market_costs(load_one_market_scenario(write(tmp_path, GOOD)))
    both = GOOD + "\n[compare]\nflexibility = true\nstorage = true\n"
    four = one_market_costs(load_one_market_scenario(write(tmp_path, both)))
    assert [c.bytes for c in four] == [4 * c.bytes for c in single]
    assert [c.seconds for c in four] == [4 * c.seconds for c in single]
    assert all(c.sizes.endswith(", 4 runs") for c in four)
