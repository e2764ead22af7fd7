"""The households in the wholesale market: p_G = LMP + adder, in the fixed point and the DES."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosim.scenario.game import ScenarioError, load_scenario
from cosim.sim.simulation import simulate
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.game import build_game
from tests.network_data import needs_hawaii40

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def pjm5_config(ev_share: float = 0.5, std: float = 10.0) -> GameConfig:
    """Four clusters for 50 000 households at bus C of the built-in PJM 5-bus case."""
    return GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 4, "households": 50, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
            "household": {"ev": {"share": ev_share}},
            "wholesale": {"bus": 2, "households": 50_000, "bus_load_std_mw": std},
        }
    )


@pytest.fixture(scope="module")
def coupled():
    game = build_game(pjm5_config())
    result = solve_equilibrium(game, "coc")
    assert result.converged
    return result


def test_without_a_load_draw_the_grid_price_is_the_dispatch_lmp_plus_the_adder():
    link = build_game(pjm5_config(std=0.0)).wholesale
    for k in (3, 12, 19):
        for j in (0, 40, 120, 200):
            x = link.import_grid_mw[j]
            lmp = link.solve(k, x).lmp[link.bus]
            per_household = 1000.0 * x / link.households
            assert link.grid_price(np.full(24, per_household))[k] == pytest.approx(
                lmp / 1000.0 + link.retail_adder, abs=1e-12
            )


def test_expected_lmp_is_smooth_and_never_falls_with_the_import():
    """Own-bus demand never lowers its LMP; the bus-load draw turns steps into ramps."""
    raw = build_game(pjm5_config(std=0.0)).wholesale.expected_lmp
    smooth = build_game(pjm5_config(std=10.0)).wholesale.expected_lmp
    assert np.all(np.diff(smooth, axis=1) >= -1e-9)
    assert np.max(np.abs(np.diff(raw, axis=1))) > 5.0  # the raw LMP jumps between units ...
    assert np.max(np.abs(np.diff(smooth, axis=1))) < 0.5 * np.max(np.abs(np.diff(raw, axis=1)))


def test_the_equilibrium_grid_price_is_the_lmp_of_its_own_flow(coupled):
    game = coupled.game
    own = game.wholesale.grid_price(game.clusters.shares @ coupled.flow.net_kw)
    np.testing.assert_allclose(game.grid_price, own, rtol=0, atol=1e-15)
    assert np.ptp(game.grid_price) > 0.005  # the LMP moves over the day on this bus


def test_flexibility_flattens_the_lmp():
    """More EVs (controllable charging and V2G) fill the LMP's valleys and shave its peaks."""
    spread = []
    for share in (0.0, 0.8):
        result = solve_equilibrium(build_game(pjm5_config(ev_share=share)), "coc")
        assert result.converged
        lmp = 1000.0 * (result.game.grid_price - result.game.wholesale.retail_adder)
        spread.append(float(np.std(lmp)))
    assert spread[1] < 0.8 * spread[0], spread


def test_energy_balances_across_the_layers(coupled):
    """Each step: generation + shed − dumped = the rest of the system + the households' import."""
    result = simulate(coupled, 60, seed=5)
    checks = result.checks
    assert checks["wholesale_balance"] <= 1e-9
    assert checks["import_consistency"] <= 1e-9
    assert checks["energy_balance"] <= 1e-9 and checks["money_balance"] <= 1e-9
    w = result.wholesale
    assert len(w) == coupled.game.steps
    np.testing.assert_allclose(
        w["p_grid"], w["lmp"] / 1000.0 + coupled.game.wholesale.retail_adder, atol=1e-15
    )
    # the aggregators cleared with the realised grid price
    assert np.allclose(
        result.aggregates.groupby("step")["p_grid"].first().to_numpy(), w["p_grid"].to_numpy()
    )
    again = simulate(coupled, 60, seed=5)
    np.testing.assert_array_equal(w["lmp"], again.wholesale["lmp"])


def test_bad_wholesale_tables_are_reported(tmp_path):
    from cosim_cli.main import main

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[scenario]\nname = "bad"\n[clusters]\ncount = 2\nhouseholds = 5\n'
        '[wholesale]\nbus = 7\nnetwork_file = "nowhere.m"\n'
    )
    assert main(["validate", str(bad)]) == 2
    bad.write_text('[scenario]\nname = "bad"\n[clusters]\ncount = 2\n[wholesale]\nbus = 7\n')
    with pytest.raises(ScenarioError, match=r"wholesale\.bus: 7: must be < 5"):
        load_scenario(bad)


def test_cosim_run_on_hawaii40(tmp_path, capsys, monkeypatch):
    from cosim_cli.main import main

    monkeypatch.setenv("COSIM_DATA_DIR", str(needs_hawaii40().parent))
    out = tmp_path / "full"
    args = ["run", str(SCENARIOS / "cosim_full.toml"), "--out", str(out), "--json"]
    assert main([*args, "--cache", str(tmp_path / "cache")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["converged"]
    lmp = summary["wholesale"]["lmp_mean_field"]
    assert len(lmp) == 24 and summary["wholesale"]["bus_name"] == "WAIPAHU69"
    assert summary["simulation"]["checks"]["wholesale_balance"] <= 1e-9
    for name in ("lmp.png", "system_load.png"):
        assert (out / "simulation" / "figures" / name).stat().st_size > 0


def test_the_cache_key_follows_the_network_itself():
    """An edited case (here: other unit costs) never reuses a law solved on the old one."""
    from dataclasses import replace

    from cosim.io.cache import game_hash

    game = build_game(pjm5_config())
    net = game.wholesale.network
    cheaper = net.with_costs(net.gen_cost_a, net.gen_cost_b * 0.5)
    other = replace(game, wholesale=replace(game.wholesale, network=cheaper))
    assert game_hash(game) == game_hash(build_game(pjm5_config()))
    assert game_hash(other) != game_hash(game)


def test_the_cache_key_follows_the_links_tables():
    """A one-market CoC's link holds the others' flows: another table is another game."""
    from dataclasses import replace

    from cosim.io.cache import game_hash

    game = build_game(pjm5_config())
    link = game.wholesale
    busier = replace(link, other_load_mw=link.other_load_mw + 1.0)
    dearer = replace(link, expected_lmp=link.expected_lmp + 1.0)
    hashes = {game_hash(replace(game, wholesale=x)) for x in (link, busier, dearer)}
    assert len(hashes) == 3
