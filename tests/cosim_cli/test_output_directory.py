"""No command deletes what it did not create: the rules for ``--out`` and for result names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cosim_cli import main as cli

#: A wholesale experiment on the built-in PJM 5-bus case (needs no case file).
WHOLESALE = '[scenario]\nname = "w"\n[network]\nredraw_costs = false\n'


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _refused(args: list[str], capsys, watched: Path, expected: str) -> None:
    before = _snapshot(watched)
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert _snapshot(watched) == before  # nothing touched


def test_the_working_directory_and_its_parents_are_refused(scenario, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work / "sub")
    for out in (".", "..", str(work)):
        _refused(["solve", str(scenario), "--out", out], capsys, work, "working directory")


def test_a_directory_with_other_files_is_refused_even_with_overwrite(scenario, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("not a result")
    for extra in ([], ["--overwrite"]):
        _refused(
            ["solve", str(scenario), "--out", str(out), *extra], capsys, out, "not a result of"
        )


def test_a_file_is_refused_and_left_alone(scenario, tmp_path, capsys):
    out = tmp_path / "result.txt"
    out.write_text("a file")
    _refused(["solve", str(scenario), "--out", str(out)], capsys, tmp_path, "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt", "small.toml"]


def test_an_earlier_result_is_replaced_only_with_overwrite(scenario, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["solve", str(scenario), "--out", str(out)]) == 0
    capsys.readouterr()
    _refused(["solve", str(scenario), "--out", str(out)], capsys, out, "--overwrite")
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert cli.main(["solve", str(scenario), "--out", str(out), "--overwrite"]) == 0
    assert (out / "manifest.json").stat().st_mtime_ns != stamp


def test_an_empty_directory_is_used(scenario, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert cli.main(["solve", str(scenario), "--out", str(out)]) == 0
    assert (out / "manifest.json").is_file()


def test_every_command_that_writes_checks_its_out_first(scenario, tmp_path, capsys):
    wholesale = tmp_path / "wholesale.toml"
    wholesale.write_text(WHOLESALE)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("not a result")
    for command in (
        ["solve", str(scenario)],
        ["compare-modes", str(scenario)],
        ["simulate", str(scenario)],
        ["run", str(scenario)],
        ["epsilon", str(scenario), "--sizes", "2", "--reps", "2"],
        ["wholesale", str(wholesale), "--days", "2"],
    ):
        _refused([*command, "--out", str(out)], capsys, out, "not a result of")


def test_compare_modes_and_run_do_not_share_a_default_directory(scenario, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["compare-modes", str(scenario)]) == 0
    assert cli.main(["run", str(scenario), "--cache", str(tmp_path / "cache")]) == 0
    assert sorted(os.listdir(tmp_path / "results")) == ["small", "small-modes"]


@pytest.mark.parametrize("name", ["..", ".", "../../x", "a/b", "", "x" * 65, ".hidden"])
def test_a_scenario_name_that_is_not_a_folder_name_is_refused(name, tmp_path, capsys):
    path = tmp_path / "named.toml"
    path.write_text(f'[scenario]\nname = "{name}"\n')
    assert cli.main(["validate", str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "scenario.name" in out[0] and "result folder" in out[0]


def test_a_result_directory_gets_the_users_permissions_and_a_full_manifest(scenario, tmp_path):
    out = tmp_path / "res"
    old = os.umask(0o022)
    try:
        assert cli.main(["solve", str(scenario), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's private 0700
    found = json.loads((out / "manifest.json").read_text())
    assert found["tool"] == "prosumer-cosim"
    assert found["git_dirty"] in (True, False, None)  # None outside a checkout
    assert found["git_commit"] is None or len(found["git_commit"]) == 40
