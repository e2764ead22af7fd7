"""The `cosim solve`, `cosim compare-modes` and `cosim simulate` commands end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cosim_cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(ROOT / "scenarios" / "default.toml")


def test_solve_writes_a_complete_result_and_json_summary(tmp_path, capsys):
    out = tmp_path / "coc"
    assert cli.main(["solve", DEFAULT, "--mode", "coc", "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in (
        "converged",
        "iterations",
        "price_residual",
        "exploitability",
        "mass_error",
        "seconds",
    ):
        assert key in info
    assert info["converged"] is True
    assert info["price_residual"] <= 1e-3 and info["exploitability"] <= 1e-3
    assert info["mass_error"] <= 1e-9 and info["min_density"] >= 0
    for name in ("prices", "clusters", "history"):
        assert not pd.read_parquet(out / f"{name}.parquet").empty
    for name in ("densities", "prices", "generic_agent"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and len(manifest["scenario_sha256"]) == 64
    assert manifest["versions"]["numpy"] and manifest["summary"]["iterations"] == info["iterations"]
    history = pd.read_parquet(out / "history.parquet")
    assert list(history.columns[:3]) == ["iteration", "price_residual", "exploitability"]
    assert len(history) == info["iterations"]
    # no staging directory left behind
    assert [p.name for p in tmp_path.iterdir()] == ["coc"]


def test_same_seed_gives_identical_tables(tmp_path):
    for name in ("a", "b"):
        assert cli.main(["solve", DEFAULT, "--mode", "rpc", "--out", str(tmp_path / name)]) == 0
    for table in ("prices", "clusters"):
        a = pd.read_parquet(tmp_path / "a" / f"{table}.parquet")
        b = pd.read_parquet(tmp_path / "b" / f"{table}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_crash_leaves_no_result_and_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "result"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"tool": "prosumer-cosim"}))
    (out / "marker.txt").write_text("finished earlier")

    def broken(*_args, **_kwargs):
        raise RuntimeError("figure backend failed")

    monkeypatch.setattr(cli.figures, "equilibrium_figures", broken)
    with pytest.raises(RuntimeError):
        cli.main(["solve", DEFAULT, "--out", str(out), "--overwrite"])
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "marker.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_compare_modes_orders_costs(tmp_path, capsys):
    out = tmp_path / "modes"
    assert cli.main(["compare-modes", DEFAULT, "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    cost = info["cost"]
    for who in ("generic", "mean"):
        assert cost["standalone"][who] > cost["rpc"][who] > cost["coc"][who]
    table = pd.read_parquet(out / "modes.parquet")
    assert list(table["mode"]) == ["standalone", "rpc", "coc"]
    per_cluster = pd.read_parquet(out / "cluster_costs.parquet")
    assert len(per_cluster) == 3 * 10
    for mode in ("standalone", "rpc", "coc"):
        assert (out / mode / "equilibrium.npz").exists()
    assert (out / "figures" / "mode_costs.png").exists()


@pytest.mark.parametrize(
    "option",
    [["--households-per-cluster", "0"], ["--days", "-1"], ["--seed", "-5"], ["--days", "x"]],
)
def test_simulate_rejects_nonsense_options_and_writes_nothing(tmp_path, option, capsys):
    out = tmp_path / "sim"
    with pytest.raises(SystemExit) as info:
        cli.main(["simulate", DEFAULT, *option, "--out", str(out)])
    assert info.value.code == 2
    assert option[0] in capsys.readouterr().err
    assert not out.exists()


def test_progress_reaches_a_log_as_lines_and_quiet_silences_it(scenario, tmp_path):
    """stderr a file, as in a batch job: progress lines without carriage returns; --quiet: none."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    command = [sys.executable, "-m", "cosim_cli", "solve", str(scenario), "--json"]
    loud = subprocess.run(
        [*command, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env
    )
    assert loud.returncode == 0, loud.stderr
    assert "solving the GMFG fixed point (coc) …" in loud.stderr.splitlines()
    assert "\r" not in loud.stderr
    quiet = subprocess.run(
        [*command, "--out", str(tmp_path / "b"), "--quiet"], capture_output=True, text=True,
        env=env,
    )  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert json.loads(quiet.stdout)["converged"] is True
