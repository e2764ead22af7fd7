"""The Python API's experiment runners: the wholesale experiment and the ε-Nash study.

These are what ``cosim wholesale`` and ``cosim epsilon`` compute, without the
command line: they take a scenario (a path or an already loaded one), return a
result object with ``.to_pandas()``, ``.save(directory)`` and
``.load(directory)``, and write nothing unless asked to. The rest of the API
(:func:`cosim.load_scenario`, :func:`cosim.build_game`,
:func:`cosim.solve_equilibrium`, :func:`cosim.simulate`) is re-exported by
:mod:`cosim` from where it lives.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from cosim.progress import bar as progress_bar
from cosim.scenario.game import LoadedScenario, load_scenario
from cosim.scenario.wholesale import LoadedWholesale, load_wholesale_scenario, with_overrides
from cosim.studies.epsilon import LawUnderTest
from cosim.studies.epsilon_study import run_study
from market.pricing import Mode
from models.checksums import read_checked, read_json, verify_checksums, write_checksums
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.game import Game, build_game
from models.provenance import write_manifest

if TYPE_CHECKING:
    from cosim.studies.wholesale import ExperimentResult

__all__ = ["EpsilonStudy", "estimate_epsilon_nash", "run_wholesale"]


def run_wholesale(
    scenario: str | Path | LoadedWholesale,
    *,
    days: int | None = None,
    seeds: int | None = None,
    learner: Literal["dp", "rl", "ppo"] | None = None,
    network: str | Path | None = None,
    storage: bool = True,
    progress: bool = False,
) -> ExperimentResult:
    """Run seed 003's wholesale experiment, as ``cosim wholesale`` does, and return it.

    Each of the scenario's ``seeds`` replications draws generator costs and
    every step's weather and demand factors, then plays the aggregators'
    learning (Algorithm 1 of seed 003) with storage and, on the same draws,
    without it; economic dispatch with LMPs clears every step.

    Parameters
    ----------
    scenario
        A wholesale scenario file (TOML, e.g. ``scenarios/oahu37.toml``) or a
        scenario loaded with :func:`cosim.load_wholesale_scenario`.
    days
        Days to simulate (overrides ``time.days``; the metrics' windows shrink
        to fit).
    seeds
        Replications (overrides ``seeds``).
    learner
        ``"dp"`` (exact dynamic programming), ``"rl"`` (tabular Q-learning) or
        ``"ppo"`` (masked PPO, the optional ``[rl]`` extra);
        overrides ``learning.learner``.
    network
        A MATPOWER case file (overrides ``network.file``), relative to the
        working directory.
    storage
        Also run with storage (``False``: only the run without storage).
    progress
        Show a progress bar on standard error.

    Returns
    -------
    ExperimentResult
        Every replication's records; ``.summary()`` gives the means over seeds
        and the acceptance checks, ``.to_pandas()`` the tables.

    Raises
    ------
    cosim.ScenarioError
        When the scenario (with the overrides) is invalid; every violation is listed.
    """
    from cosim.studies.wholesale import run_experiment  # Pyomo and HiGHS: for the market only

    loaded = (
        scenario if isinstance(scenario, LoadedWholesale) else load_wholesale_scenario(scenario)
    )
    loaded = with_overrides(loaded, days=days, seeds=seeds, learner=learner, network_file=network)
    s = loaded.scenario
    total = s.seeds * s.time.days * s.slots * (2 if storage else 1)
    with _bar(progress, total, "wholesale", "step") as update:
        return run_experiment(loaded, storage=storage, on_step=update)


@dataclass(frozen=True)
class EpsilonStudy:
    """ε_N of one feedback law at several population sizes, and its rate in N."""

    table: pd.DataFrame
    """One row per size: ``clusters`` (M), ``households_per_cluster``, ``households``
    (N, their product); the bracket of ε_N [$ per household-day] — ``epsilon``
    (the lower bound) with ``epsilon_lo``, ``epsilon_hi`` and ``upper`` with
    ``upper_lo``, ``upper_hi`` (95 % intervals simultaneous over clusters),
    ``width``, ``aim_met``; ``worst_cluster``, ``bias`` (``J^N − J^∞``) and
    ``price_error`` with their CIs, ``replications``, ``info`` and ``seconds``."""
    gaps: pd.DataFrame
    """Per size and cluster: local information, both bounds with their standard
    errors and intervals (:attr:`cosim.studies.bracket.Bracket.per_cluster`) and
    ``floor`` (ε_∞); full information, every paired replication (``j_law``,
    ``j_dev``, ``gap`` [$]) with the cluster's upper bound."""
    rate: dict[str, Any]
    """The rate of the lower bound in N, fitted on every size, negatives included
    (:func:`cosim.studies.epsilon_study.study_rate`): ``slope`` (``∝ N^slope``) with
    a profile 95 % CI (``slope_lo``, ``slope_hi``) when ``identified``, otherwise
    NaN and ``reason`` says why; the upper bound's under ``upper``; ``floor``: ε_∞."""
    law: dict[str, object] = field(default_factory=dict)
    """What identifies the law under test: ``label``, ``mode`` and, for the GMFG
    law, whether its fixed point converged and its exploitability."""

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """The study's tables.

        Returns
        -------
        dict of str to pandas.DataFrame
            ``"epsilon"``: :attr:`table` (one row per size); ``"gaps"``:
            :attr:`gaps` (every paired replication).
        """
        return {"epsilon": self.table, "gaps": self.gaps}

    def save(self, directory: str | Path) -> None:
        """Write ``epsilon.parquet``, ``gaps.parquet`` and ``study.json`` (rate, law).

        With them, ``checksums.sha256`` (their SHA-256) and ``manifest.json``
        (the law, package versions, git commit and time).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in self.to_pandas().items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
        info = {"rate": self.rate, "law": self.law}
        (directory / "study.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
        write_checksums(directory, [*_STUDY_FILES])
        write_manifest(directory, type(self).__name__, {"law": self.law})

    @classmethod
    def load(cls, directory: str | Path) -> EpsilonStudy:
        """Reload a study written by :meth:`save`.

        Parameters
        ----------
        directory
            The directory holding ``epsilon.parquet``, ``gaps.parquet`` and ``study.json``.

        Raises
        ------
        models.checksums.DamagedFileError
            When one of them is missing, unreadable or differs from its checksum.
        """
        directory = Path(directory)
        verify_checksums(directory, _STUDY_FILES)
        info = read_checked(directory / "study.json", read_json)
        return cls(
            table=read_checked(directory / "epsilon.parquet", pd.read_parquet),
            gaps=read_checked(directory / "gaps.parquet", pd.read_parquet),
            rate=info["rate"],
            law=info["law"],
        )


#: The files :meth:`EpsilonStudy.save` writes and :meth:`EpsilonStudy.load` reads.
_STUDY_FILES = ("epsilon.parquet", "gaps.parquet", "study.json")


def estimate_epsilon_nash(
    scenario: str | Path | LoadedScenario | EquilibriumResult,
    sizes: Sequence[int] = (2, 20),
    reps: int = 8,
    *,
    seed: int | None = None,
    work: str | Path | None = None,
    mode: Mode | str | None = None,
    law: Literal["gmfg", "flat"] = "gmfg",
    build_reps: int | None = None,
    info: Literal["local", "full"] = "local",
    workers: int = 1,
    progress: bool = False,
) -> EpsilonStudy:
    """ε-Nash gap ε_N of a feedback law at several population sizes (``M`` fixed).

    For each size, one household per cluster deviates while everyone else
    applies the law, and ε_N — the best deviation's gain, largest over clusters —
    is bracketed: ``epsilon`` (with ``epsilon_lo``, ``epsilon_hi``) is the gain of
    a deviation we construct, ``upper`` (with ``upper_lo``, ``upper_hi``) a bound
    on the gain of every deviation of the information class, both with 95 %
    intervals simultaneous over the clusters
    (:func:`cosim.studies.epsilon.estimate_epsilon_nash`). The rate of each bound
    in the total number of households is fitted on every size, or declared not
    identified. See ``docs/epsilon.md``.

    Parameters
    ----------
    scenario
        A scenario file, a loaded scenario, or a solved equilibrium whose law is
        tested as it is (no solve).
    sizes
        Households per cluster, one study point each.
    reps
        Replications of the finite game per size (local: the samples both bounds are
        evaluated on; full: the measured paired runs).
    seed
        Root seed of the study (default: the scenario's).
    work
        Where replication files are kept; a study resumes from there without
        recomputing. ``None``: a temporary directory, removed afterwards.
    mode
        Trading mode (default: the scenario's ``simulation.mode``, or the
        equilibrium's).
    law
        ``"gmfg"``: the equilibrium's law (solved here unless ``scenario`` is
        one); ``"flat"``: the best response to the grid price alone, a law that
        is not an equilibrium.
    build_reps
        Full information: replications that sample the others' aggregates for
        the deviator's dynamic program (default: ``reps``).
    info
        The deviator's information: ``"local"`` (own state and time) or
        ``"full"`` (also its cluster's last cleared aggregate).
    workers
        Local worker processes; the numbers do not depend on it.
    progress
        Show progress bars on standard error.

    Returns
    -------
    EpsilonStudy
        The per-size table, every paired gap, and the fitted rate.
    """
    tested, game, about = _law_to_test(scenario, mode, law)
    seed = game.config.seed if seed is None else seed
    about = {"label": tested.label, "mode": str(tested.mode), **about}
    with _work_directory(work) as root:
        table, gaps, rate = run_study(
            tested,
            list(sizes),
            reps,
            build_reps if build_reps is not None else reps,
            seed,
            root,
            workers=workers,
            progress=progress,
            info=info,
        )
    return EpsilonStudy(table, gaps, rate, about)


def _law_to_test(
    scenario: str | Path | LoadedScenario | EquilibriumResult, mode: Mode | str | None, law: str
) -> tuple[LawUnderTest, Game, dict[str, object]]:
    """The law :func:`estimate_epsilon_nash` measures, its game, and what identifies the law."""
    about: dict[str, object]
    if isinstance(scenario, EquilibriumResult):
        if law != "gmfg":
            raise ValueError("a solved equilibrium is tested with law='gmfg'")
        if mode is not None and Mode(mode) != scenario.mode:
            raise ValueError(f"mode {mode!r}: the equilibrium was solved in {scenario.mode}")
        about = {"converged": scenario.converged, "exploitability": scenario.exploitability}
        return LawUnderTest.from_equilibrium(scenario), scenario.game, about
    loaded = scenario if isinstance(scenario, LoadedScenario) else load_scenario(scenario)
    game = build_game(loaded.scenario, loaded.base_dir)
    chosen = Mode(mode if mode is not None else loaded.scenario.simulation.mode)
    if law == "gmfg":
        equilibrium = solve_equilibrium(game, chosen)
        about = {"converged": equilibrium.converged, "exploitability": equilibrium.exploitability}
        return LawUnderTest.from_equilibrium(equilibrium), game, about
    if law == "flat":
        return LawUnderTest.flat_price_response(game, chosen), game, {}
    raise ValueError(f"law {law!r}: expected 'gmfg' or 'flat'")


@contextmanager
def _work_directory(work: str | Path | None) -> Iterator[Path]:
    if work is not None:
        yield Path(work)
        return
    with tempfile.TemporaryDirectory(prefix="cosim-epsilon-") as tmp:
        yield Path(tmp)


@contextmanager
def _bar(
    show: bool, total: int, label: str, unit: str
) -> Iterator[Callable[[int, dict], None] | None]:
    if not show:
        yield None
        return
    bar = progress_bar(total, label, unit)

    def update(_: int, __: dict) -> None:
        bar.update(1)

    try:
        yield update
    finally:
        bar.close()
