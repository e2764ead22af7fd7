"""Bad options give one line on standard error and exit status 2, with nothing written."""

from __future__ import annotations

import pytest

from cosim_cli.main import main


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--seed", "-1"], "--seed: -1: must be ≥ 0"),
        (["--build-reps", "-5"], "--build-reps: -5: must be ≥ 1"),
        (["--floor", "-1"], "--floor: -1.0: must be a finite number ≥ 0"),
        (["--floor", "nan"], "--floor: nan: must be a finite number ≥ 0"),
        (["--max-reps", "1"], "--max-reps: 1: must be ≥ 2"),
        (["--workers", "0"], "--workers: 0: must be ≥ 1"),
        (["--reps", "1"], "--reps: 1: must be ≥ 2"),
    ],
)
def test_option_values_out_of_range_are_refused(
    scenario, epsilon_args, tmp_path, capsys, options, message
):
    with pytest.raises(SystemExit) as stop:
        main(epsilon_args(scenario, *options))
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.toml"]


def test_repeated_sizes_are_refused(scenario, epsilon_args, tmp_path, capsys):
    assert main(epsilon_args(scenario, "--sizes", "2,2", "--reps", "2")) == 2
    captured = capsys.readouterr()
    assert "need distinct sizes" in captured.err and captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.toml"]


@pytest.mark.parametrize("option", ["--cache", "--work"])
def test_a_file_given_as_a_working_directory_is_refused(
    scenario, epsilon_args, tmp_path, capsys, option
):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    args = epsilon_args(scenario, "--sizes", "2", "--reps", "2", option, str(taken))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{option} {taken}: is a file" in err[0]
    assert taken.read_text() == "mine"


def test_a_work_directory_of_another_study_is_refused(scenario, epsilon_args, tmp_path, capsys):
    args = epsilon_args(scenario, "--sizes", "2", "--reps", "2")
    assert main(args) == 0
    capsys.readouterr()
    other = [*args[:3], str(tmp_path / "out2"), *args[4:], "--seed", "99"]
    assert main(other) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds the replications of another study" in err[0]
    assert not (tmp_path / "out2").exists()


def test_an_empty_scenario_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["validate", str(empty)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "empty file" in out[0]


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('[scenario]\nname = "w"\n[network]\nfile = "case.m"\n', "network.file"),
        (
            '[scenario]\nname = "h"\n[wholesale]\nnetwork_file = "case.m"\n',
            "wholesale.network_file",
        ),
    ],
)
@pytest.mark.parametrize("garbage", ["hello world\n", "function mpc = x\nmpc.bus = [1 2;\n"])
def test_a_garbage_case_file_is_named_not_tracebacked(tmp_path, capsys, table, field, garbage):
    (tmp_path / "case.m").write_text(garbage)
    path = tmp_path / "scenario.toml"
    path.write_text(table)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and f"{field}: 'case.m'" in out[0] and "not a MATPOWER case" in out[0]


def test_an_unreachable_scheduler_is_refused_before_any_work(
    scenario, epsilon_args, tmp_path, capsys, monkeypatch
):
    """No scheduler at the address: one line naming it, exit 2, no solve, nothing written."""
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    import socket

    from cosim.studies import montecarlo

    monkeypatch.setattr(montecarlo, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    args = epsilon_args(scenario, "--sizes", "2", "--reps", "2", "--scheduler", address)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--scheduler {address}: no Dask scheduler answered" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.toml"]
