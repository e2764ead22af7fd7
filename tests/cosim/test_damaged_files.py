"""A damaged file the tool wrote is named in one line, never tracebacked.

Derived data is computed again — a cached equilibrium is solved again and
replaced, a replication run again from its seed — and gives the numbers of a
clean run; what cannot be computed again (a finished result read back, the
stamp of an ε study's work directory) is refused with the file named.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cosim
from cosim.io.cache import cached_equilibrium
from cosim.studies.montecarlo import replication_path, run_replications
from cosim_cli.main import main
from market.pricing import Mode
from models.checksums import CHECKSUMS, DamagedFileError, write_text_checked
from models.config import GameConfig
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.game import build_game
from tests.cosim_cli.conftest import SMALL  # two clusters, hourly steps: solved in a second


def truncate(path: Path) -> None:
    """Cut ``path`` to half its length, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_bit(path: Path) -> None:
    """Flip the lowest bit of the byte in the middle of ``path``, in place."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def flip_float(path: Path, value: float) -> None:
    """Flip the last bit of ``value``'s mantissa where it is stored in ``path`` (stays readable)."""
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<d", value))
    assert at >= 0 and data.find(struct.pack("<d", value), at + 1) < 0, "stored once, as is"
    data[at] ^= 1
    path.write_bytes(bytes(data))


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


# ---------------------------------------------------------------------------
# The equilibrium cache


@pytest.fixture(scope="module")
def game():
    config = GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 2, "households": 10, "distances": {"kind": "line"}},
            "solver": {"soe_points": 21},
        }
    )
    return build_game(config, None)


@pytest.fixture(scope="module")
def clean(game) -> EquilibriumResult:
    """The equilibrium as a clean run solves it."""
    return solve_equilibrium(game, Mode.COC)


def assert_same(a: EquilibriumResult, b: EquilibriumResult) -> None:
    for part in ("policy", "flow", "prices"):
        x, y = getattr(a, part), getattr(b, part)
        for f in fields(x):
            assert np.array_equal(getattr(x, f.name), getattr(y, f.name)), f"{part}.{f.name}"
    assert np.array_equal(a.prices.stage, b.prices.stage)
    assert np.array_equal(a.cost, b.cost)
    assert a.history == b.history


class Solver:
    """Counts its solves; hands back ``result`` (an equilibrium solved once for the module)."""

    def __init__(self, result: EquilibriumResult) -> None:
        self.result, self.calls = result, 0

    def __call__(self, game, mode) -> EquilibriumResult:
        self.calls += 1
        return self.result


def cache_entry(cache: Path, game, clean: EquilibriumResult) -> Path:
    """An intact cache entry of ``clean``, and its directory."""
    cached_equilibrium(game, Mode.COC, cache, Solver(clean))
    (entry,) = cache.iterdir()
    return entry


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("equilibrium.npz", truncate),
        ("equilibrium.npz", flip_bit),
        ("summary.json", truncate),
        ("history.parquet", flip_bit),
    ],
)
def test_a_damaged_cache_entry_is_solved_again_and_replaced(
    game, clean, tmp_path, capsys, name: str, damage: Callable[[Path], None]
):
    entry = cache_entry(tmp_path, game, clean)
    damage(entry / name)
    solver = Solver(clean)
    _, cached = cached_equilibrium(game, Mode.COC, tmp_path, solver)
    assert not cached and solver.calls == 1
    assert stderr_lines(capsys) == [f"{entry / name}: damaged (checksum mismatch); solving again"]
    back, cached = cached_equilibrium(game, Mode.COC, tmp_path, solver)  # replaced: intact
    assert cached and solver.calls == 1 and stderr_lines(capsys) == []
    assert_same(back, clean)


def test_solving_again_gives_the_numbers_of_a_clean_run(game, clean, tmp_path, capsys):
    entry = cache_entry(tmp_path, game, clean)
    truncate(entry / "equilibrium.npz")
    again, cached = cached_equilibrium(game, Mode.COC, tmp_path, solve_equilibrium)
    assert not cached and len(stderr_lines(capsys)) == 1
    assert_same(again, clean)


def test_an_unreadable_file_is_named_without_a_checksum_to_compare(game, clean, tmp_path, capsys):
    entry = cache_entry(tmp_path, game, clean)
    (entry / "equilibrium.npz").write_bytes(b"")
    checksums = (entry / CHECKSUMS).read_text().splitlines()
    kept = [line for line in checksums if not line.endswith("  equilibrium.npz")]
    (entry / CHECKSUMS).write_text("\n".join(kept) + "\n")
    _, cached = cached_equilibrium(game, Mode.COC, tmp_path, Solver(clean))
    (line,) = stderr_lines(capsys)
    assert not cached
    assert (
        line == f"{entry / 'equilibrium.npz'}: damaged (no checksum in {CHECKSUMS}); solving again"
    )


def test_an_entry_of_an_earlier_version_is_solved_again(game, clean, tmp_path, capsys):
    entry = cache_entry(tmp_path, game, clean)
    (entry / CHECKSUMS).unlink()
    (entry / "manifest.json").unlink()
    solver = Solver(clean)
    assert cached_equilibrium(game, Mode.COC, tmp_path, solver)[1] is False
    assert stderr_lines(capsys) == [
        f"{entry}: no checksums (written by an earlier version); solving again"
    ]
    assert (entry / CHECKSUMS).is_file() and solver.calls == 1


def test_an_entry_holding_files_of_someone_else_is_not_replaced(game, clean, tmp_path, capsys):
    entry = cache_entry(tmp_path, game, clean)
    (entry / "notes.txt").write_text("mine")
    flip_bit(entry / "equilibrium.npz")
    damaged = (entry / "equilibrium.npz").read_bytes()
    solver = Solver(clean)
    assert cached_equilibrium(game, Mode.COC, tmp_path, solver)[1] is False
    (line,) = stderr_lines(capsys)
    assert line.startswith(f"{entry / 'equilibrium.npz'}: damaged (checksum mismatch); solving")
    assert "not cached" in line and "notes.txt" in line
    assert (entry / "notes.txt").read_text() == "mine"
    assert (entry / "equilibrium.npz").read_bytes() == damaged


def test_simulate_with_a_damaged_cache_solves_again_and_simulates_the_same(tmp_path, capsys):
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    cache = tmp_path / "cache"

    def simulate(out: str) -> pd.DataFrame:
        args = ["simulate", str(scenario), "--out", str(tmp_path / out), "--cache", str(cache)]
        assert main([*args, "--households-per-cluster", "3", "--json"]) == 0
        return pd.read_parquet(tmp_path / out / "households.parquet")

    first = simulate("first")
    capsys.readouterr()
    (entry,) = cache.iterdir()
    flip_bit(entry / "equilibrium.npz")
    second = simulate("second")
    captured = capsys.readouterr()
    damaged = [line for line in captured.err.splitlines() if "damaged" in line]  # besides progress
    assert damaged == [f"{entry / 'equilibrium.npz'}: damaged (checksum mismatch); solving again"]
    assert json.loads(captured.out)["equilibrium_from_cache"] is False
    pd.testing.assert_frame_equal(first, second, check_exact=True)


# ---------------------------------------------------------------------------
# Replication files of a Monte Carlo study


def draw(replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
    """A cheap replication: a few numbers from its own stream."""
    rng = np.random.default_rng(seq)
    return pd.DataFrame({"x": rng.normal(size=3), "k": np.arange(3)})


def replications(directory: Path) -> pd.DataFrame:
    return run_replications(draw, 4, 7, directory, progress=False).table


def test_a_replication_with_one_float_flipped_is_run_again_from_its_seed(tmp_path, capsys):
    clean = replications(tmp_path / "clean")
    replications(tmp_path / "work")
    path = replication_path(tmp_path / "work", 2)
    x = pd.read_parquet(path)["x"].to_numpy()
    middle = float(np.sort(x)[1])  # neither the minimum nor the maximum in the statistics
    flip_float(path, middle)
    readable = pd.read_parquet(path)["x"].to_numpy()
    assert not np.array_equal(readable, x)  # still a readable file, with another number in it
    summary = run_replications(draw, 4, 7, tmp_path / "work", progress=False)
    assert stderr_lines(capsys) == [
        f"{path}: damaged (checksum mismatch); running replication 2 again from its seed"
    ]
    assert summary.computed == [2] and summary.reused == [0, 1, 3]
    pd.testing.assert_frame_equal(summary.table, clean, check_exact=True)
    pd.testing.assert_frame_equal(replications(tmp_path / "work"), clean, check_exact=True)
    assert stderr_lines(capsys) == []  # replaced by an intact file


def test_a_truncated_replication_or_checksum_file_is_run_again(tmp_path, capsys):
    clean = replications(tmp_path / "clean")
    replications(tmp_path / "work")
    truncate(replication_path(tmp_path / "work", 0))
    sidecar = replication_path(tmp_path / "work", 3).with_suffix(".parquet.sha256")
    truncate(sidecar)
    summary = run_replications(draw, 4, 7, tmp_path / "work", progress=False)
    assert stderr_lines(capsys) == [
        f"{replication_path(tmp_path / 'work', 0)}: damaged (checksum mismatch); "
        "running replication 0 again from its seed",
        f"{sidecar}: damaged (not a checksum list); running replication 3 again from its seed",
    ]
    assert summary.computed == [0, 3]
    pd.testing.assert_frame_equal(summary.table, clean, check_exact=True)


def test_an_unreadable_replication_without_a_checksum_is_run_again(tmp_path, capsys):
    clean = replications(tmp_path / "clean")
    replications(tmp_path / "work")
    path = replication_path(tmp_path / "work", 1)
    path.with_suffix(".parquet.sha256").unlink()
    truncate(path)
    summary = run_replications(draw, 4, 7, tmp_path / "work", progress=False)
    (line,) = stderr_lines(capsys)
    assert line.startswith(f"{path}: damaged (unreadable: ")
    assert line.endswith("; running replication 1 again from its seed")
    assert summary.computed == [1]
    pd.testing.assert_frame_equal(summary.table, clean, check_exact=True)


def test_replications_of_an_earlier_version_are_used_and_get_checksums(tmp_path, capsys):
    clean = replications(tmp_path / "work")
    sidecars = sorted((tmp_path / "work").glob("*.sha256"))
    assert len(sidecars) == 4
    for sidecar in sidecars[:2]:
        sidecar.unlink()
    summary = run_replications(draw, 4, 7, tmp_path / "work", progress=False)
    assert summary.computed == [] and summary.reused == [0, 1, 2, 3]
    assert stderr_lines(capsys) == [
        f"{tmp_path / 'work'}: 2 replication file(s) without a checksum (written by an earlier "
        "version) used unchecked; their checksums are recorded now"
    ]
    assert sorted((tmp_path / "work").glob("*.sha256")) == sidecars
    pd.testing.assert_frame_equal(summary.table, clean, check_exact=True)


@pytest.mark.parametrize("checksum", [True, False], ids=["flipped", "truncated-unchecked"])
def test_a_damaged_study_stamp_is_refused_naming_it(tmp_path, capsys, checksum: bool):
    """Nothing tells which study the replications beside a damaged stamp belong to."""
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    stamp = tmp_path / "work" / "n2" / "study.json"  # where size 2's replications go
    stamp.parent.mkdir(parents=True)
    if checksum:
        write_text_checked(stamp, json.dumps({"game": "0" * 64, "mode": "coc", "seed": 3}))
        flip_bit(stamp)
        what = "damaged (checksum mismatch)"
    else:  # an earlier version's stamp, cut short
        stamp.write_text('{"game": "00')
        what = "damaged (unreadable: "
    args = ["epsilon", str(scenario), "--sizes", "2", "--reps", "2", "--out", str(tmp_path / "out")]
    args += ["--work", str(tmp_path / "work"), "--cache", str(tmp_path / "cache")]
    assert main(args) == 2
    lines = stderr_lines(capsys)  # the study's heading, then the refusal
    line = lines[-1]
    assert [n for n in lines if "study.json" in n] == [line]
    assert line.startswith(f"cosim epsilon: --work {stamp}: {what}")
    assert line.endswith("give another --work directory")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in stamp.parent.iterdir())[0] == "study.json"  # left in place


# ---------------------------------------------------------------------------
# Finished results: read back, never computed again


def test_a_damaged_result_is_refused_naming_the_file(clean, tmp_path):
    clean.save(tmp_path / "eq")
    for name, damage in (("equilibrium.npz", flip_bit), ("history.parquet", truncate)):
        before = (tmp_path / "eq" / name).read_bytes()
        damage(tmp_path / "eq" / name)
        with pytest.raises(DamagedFileError) as info:
            EquilibriumResult.load(tmp_path / "eq")
        assert str(info.value) == f"{tmp_path / 'eq' / name}: damaged (checksum mismatch)"
        assert isinstance(info.value, ValueError)
        (tmp_path / "eq" / name).write_bytes(before)
    assert_same(EquilibriumResult.load(tmp_path / "eq"), clean)


def test_a_result_of_an_earlier_version_loads_unchecked_unless_unreadable(clean, tmp_path):
    clean.save(tmp_path / "eq")
    (tmp_path / "eq" / CHECKSUMS).unlink()
    assert_same(EquilibriumResult.load(tmp_path / "eq"), clean)
    truncate(tmp_path / "eq" / "summary.json")
    with pytest.raises(DamagedFileError, match=r"summary\.json: damaged \(unreadable: "):
        EquilibriumResult.load(tmp_path / "eq")


def test_every_result_object_names_its_damaged_file(clean, tmp_path):
    run = cosim.simulate(clean, households_per_cluster=2, seed=1)
    study = cosim.EpsilonStudy(
        table=pd.DataFrame({"households": [4, 40], "epsilon": [0.1, 0.01]}),
        gaps=pd.DataFrame({"cluster": [0, 1], "gap": [0.5, 0.25]}),
        rate={"slope": -1.0},
        law={"label": "gmfg", "mode": "coc"},
    )
    market = tmp_path / "market.toml"
    market.write_text(
        'seed = 3\nseeds = 1\n[scenario]\nname = "m"\n[time]\ndays = 2\n'
        "[metrics]\nlast_days = 1\nsettle_days = 1\n"
    )
    experiment = cosim.run_wholesale(market, storage=False)
    for result, name in (
        (run, "households.parquet"),
        (study, "study.json"),
        (experiment, "records.npz"),
    ):
        directory = tmp_path / type(result).__name__
        result.save(directory)
        flip_bit(directory / name)
        with pytest.raises(DamagedFileError, match="damaged") as info:
            type(result).load(directory)
        assert info.value.path == directory / name
