"""`cosim wholesale`: scenario validation, results on disk, and the paired storage comparison."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from cosim.studies.wholesale import load_wholesale_scenario
from cosim_cli.main import main
from tests.network_data import needs_hawaii40

ROOT = Path(__file__).resolve().parents[2]

SMALL = """
seed = 3
seeds = 1
[scenario]
name = "pjm-small"
[time]
days = 3
[network]          # no file: the built-in PJM 5-bus case
[learning.rl]
training_steps = 5
[metrics]
last_days = 1
settle_days = 1
"""


SCARCITY_KEYS = (
    "scarcity_steps",
    "scarcity_steps_last_days",
    "shed_mwh",
    "scarcity_cost_share",
    "steps_excluded",
    "imv_last_days_excl_scarcity",
    "imv_hub_last_days_excl_scarcity",
    "ex_post_cost_last_days_excl_scarcity",
    "ex_post_cost_total_excl_scarcity",
)


def write(tmp_path: Path, text: str, name: str = "ws.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["wholesale", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_small_run_writes_tables_figures_and_manifest(tmp_path, capsys):
    out = tmp_path / "res"
    code, summary = run_json(capsys, str(write(tmp_path, SMALL)), "--out", str(out))
    assert code == 0
    assert set(summary["mean_over_seeds"]) == {"with_storage", "without_storage"}
    assert summary["days"] == 3 and summary["seeds"] == 1 and summary["learner"] == "dp"
    # the DP optimum is never below the RL learner's value on the same belief; both reported
    ln = summary["learners"]
    assert ln["dp_value"] >= ln["rl_value"] and ln["dp_not_below_rl_everywhere"]
    for name in ("steps", "lmp", "aggregators", "replications"):
        assert not pd.read_parquet(out / f"{name}.parquet").empty
    for fig in ("hub_prices", "storage", "capacity_factors", "imv_cost"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
    # Fig. 5 has a second row, the same figures with the scarcity steps dropped (4 in at 120 dpi)
    assert plt.imread(out / "figures" / "imv_cost.png").shape[0] == 2 * 4 * 120
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario_name"] == "pjm-small" and manifest["network_file"] is None
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 2 * 3 * 12  # two runs × days × slots
    # the scarcity figures: defined, per seed and run, in the means and the replications table
    assert "LMP ≥ 9999.99 $/MWh" in summary["scarcity"]["step"]
    replications = pd.read_parquet(out / "replications.parquet")
    for run in ("with_storage", "without_storage"):
        seed = summary["per_seed"][0][run]
        assert set(SCARCITY_KEYS) <= set(seed) <= set(summary["mean_over_seeds"][run])
        assert set(SCARCITY_KEYS) <= set(replications.columns)
        assert seed["scarcity_steps"] == steps.loc[steps["run"] == run, "scarcity"].sum()


def test_same_seed_same_numbers_and_no_storage_run(tmp_path, capsys):
    scenario = str(write(tmp_path, SMALL))
    _, a = run_json(capsys, scenario, "--out", str(tmp_path / "a"), "--days", "2")
    _, b = run_json(capsys, scenario, "--out", str(tmp_path / "b"), "--days", "2")
    assert a["mean_over_seeds"] == b["mean_over_seeds"]
    code, c = run_json(
        capsys, scenario, "--out", str(tmp_path / "c"), "--days", "2", "--no-storage"
    )
    assert code == 0 and set(c["mean_over_seeds"]) == {"without_storage"}
    assert c["mean_over_seeds"]["without_storage"] == a["mean_over_seeds"]["without_storage"]
    assert "checks" not in c


def test_scarcity_steps_are_counted_and_left_out(tmp_path, capsys):
    """A value of lost load of 35 $/MWh (below Sundance's 40) makes PJM 5-bus shed load."""
    scenario = str(write(tmp_path, SMALL + "[dispatch]\nvalue_of_lost_load = 35.0\n"))
    out = tmp_path / "res"
    code, summary = run_json(capsys, scenario, "--out", str(out), "--days", "2")
    assert code == 0
    steps = pd.read_parquet(out / "steps.parquet")
    paired = steps.groupby("step")["scarcity"].any()  # a scarcity step of either run
    assert paired.any()
    for run in ("with_storage", "without_storage"):
        r = summary["per_seed"][0][run]
        mine = steps[steps["run"] == run].set_index("step")
        kept = mine["ex_post_cost"][~paired]
        assert r["scarcity_steps"] == mine["scarcity"].sum() > 0
        assert r["steps_excluded"] == paired.sum()
        assert r["shed_mwh"] == pytest.approx(mine["shed_mw"].sum() * 2.0)
        assert r["ex_post_cost_total_excl_scarcity"] == pytest.approx(kept.sum())
        assert r["ex_post_cost_last_days_excl_scarcity"] == pytest.approx(
            kept[kept.index >= 12].sum()
        )
        share = mine["ex_post_cost"][mine["scarcity"]].sum() / mine["ex_post_cost"].sum()
        assert r["scarcity_cost_share"] == pytest.approx(share)
    # the printed lines: the definition and one row per seed and run
    assert main(["wholesale", scenario, "--out", str(tmp_path / "p"), "--days", "2"]) == 0
    printed = capsys.readouterr().out
    assert "scarcity step: shed > 1e-06 MW (all buses) or some bus's LMP ≥ 35 $/MWh" in printed
    assert "ex_post_cost_total_excl_scarcity" in printed
    rows = [ln.split() for ln in printed.splitlines() if ln.split()[:2] == ["0", "with_storage"]]
    assert (
        len(rows) == 1
        and int(rows[0][2]) == summary["per_seed"][0]["with_storage"]["scarcity_steps"]
    )


def test_rl_learner_runs(tmp_path, capsys):
    code, s = run_json(
        capsys, str(write(tmp_path, SMALL)), "--out", str(tmp_path / "r"), "--learner", "rl"
    )
    assert code == 0 and s["learner"] == "rl"
    assert s["learners"]["dp_value"] >= s["learners"]["rl_value"]


@pytest.mark.rl
def test_ppo_learner_runs(tmp_path, capsys):
    small = SMALL.replace("[learning.rl]", "[learning.ppo]\ntraining_steps = 8\n[learning.rl]")
    code, s = run_json(
        capsys, str(write(tmp_path, small)), "--out", str(tmp_path / "p"), "--learner", "ppo"
    )
    assert code == 0 and s["learner"] == "ppo"
    assert s["learners"]["dp_value"] >= s["learners"]["rl_value"]
    assert s["learners"]["dp_not_below_rl_everywhere"]


def test_ppo_without_the_rl_extra_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    hidden = ("sb3_contrib", "torch")  # as on a machine without the extra, installed or not here
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else find_spec(name)
    )
    out = tmp_path / "p"
    code = main(["wholesale", str(write(tmp_path, SMALL)), "--learner", "ppo", "--out", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and not out.exists() and len(err) == 1
    rule = "needs the optional [rl] extra (sb3_contrib, torch not installed)"
    assert f": learning.learner: 'ppo': {rule}" in err[0]


def test_invalid_scenario_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = SMALL.replace("[learning.rl]", "[learning]\nbelief_rate = 0.0\n[learning.rl]")
    bad = bad.replace("[network]", '[network]\nfile = "missing.m"')
    out = tmp_path / "res"
    code = main(["wholesale", str(write(tmp_path, bad)), "--out", str(out)])
    printed = capsys.readouterr()
    lines = printed.err.splitlines()  # errors go to stderr (validate's report to stdout)
    assert code == 2 and not out.exists() and printed.out == ""
    assert any(": learning.belief_rate: 0.0: " in line for line in lines)
    code = main(
        [
            "wholesale",
            str(write(tmp_path, SMALL.replace("[network]", '[network]\nfile = "missing.m"'))),
            "--out",
            str(out),
        ]
    )
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and any(": network.file: 'missing.m': file not found" in ln for ln in lines)


def test_an_invalid_scenario_is_reported_as_strict_json(tmp_path, capsys):
    """``--json``: every violation as strict JSON (a NaN value as a string), the lines on stderr."""
    bad = SMALL.replace("[learning.rl]", "[learning]\nbelief_rate = nan\n[learning.rl]")
    out = tmp_path / "res"
    assert main(["wholesale", str(write(tmp_path, bad)), "--out", str(out), "--json"]) == 2
    printed = capsys.readouterr()

    def reject(name: str) -> float:
        raise ValueError(f"{name} is not JSON")

    report = json.loads(printed.out, parse_constant=reject)
    assert report["valid"] is False and not out.exists()
    assert {"path": "learning.belief_rate", "value": "nan"} == {
        k: v for k, v in report["violations"][0].items() if k != "rule"
    }
    assert ": learning.belief_rate: nan: " in printed.err


def test_one_day_is_refused_before_any_work(tmp_path, capsys):
    """The settling check needs a first and a last day: --days 1 exits 2, nothing written."""
    out = tmp_path / "res"
    with pytest.raises(SystemExit) as exit_info:
        main(["wholesale", str(write(tmp_path, SMALL)), "--days", "1", "--out", str(out)])
    assert exit_info.value.code == 2 and not out.exists()
    assert "--days: 1: must be ≥ 2 (the settling check" in capsys.readouterr().err


def test_shipped_oahu_scenario_validates(monkeypatch):
    monkeypatch.setenv("COSIM_DATA_DIR", str(needs_hawaii40().parent))
    s = load_wholesale_scenario(ROOT / "scenarios" / "oahu37.toml").scenario
    assert (s.time.step_h, s.time.days, s.seeds, s.storage.capacity_kwh) == (2.0, 50, 5, 10.0)


def test_storage_lowers_ex_post_cost_on_hawaii40(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COSIM_DATA_DIR", str(needs_hawaii40().parent))
    text = (ROOT / "scenarios" / "oahu37.toml").read_text(encoding="utf-8")
    text = text.replace("training_steps = 50 ", "training_steps = 5 ")
    scenario = write(tmp_path, text)
    code, s = run_json(
        capsys, str(scenario), "--days", "6", "--seeds", "1", "--out", str(tmp_path / "h")
    )
    assert code == 0
    w, wo = s["mean_over_seeds"]["with_storage"], s["mean_over_seeds"]["without_storage"]
    print(
        f"Hawaii40, 6 days: IMV {w['imv_last_days']:.3f} vs {wo['imv_last_days']:.3f} $/MWh, "
        f"ex-post cost {w['ex_post_cost_total']:.0f} vs {wo['ex_post_cost_total']:.0f} $"
    )
    assert w["ex_post_cost_total"] < wo["ex_post_cost_total"]
    assert w["ex_post_cost_last_days"] < wo["ex_post_cost_last_days"]
