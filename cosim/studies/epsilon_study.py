"""The ε_N convergence study (SPEC §7): ε_N at several population sizes, and its rate in N.

Two studies. **M fixed** (:func:`run_study`): for each population size
(households per cluster, ``M`` the game's) it estimates ε_N of one law with
:func:`cosim.studies.epsilon.estimate_epsilon_nash`. **M growing**
(:func:`run_growing_clusters_study`): for each ``M`` the game is rebuilt from
the scenario with ``M`` clusters (:func:`scenario_with_clusters`) — ``M``
points drawn on the continuous graphon's domain (``line``: uniform on [0, 1],
``W = exp(−α|x−y|)``; or a seeded radial feeder) with per-cluster parameters
drawn from the scenario's distributions — its own law is solved, and ε_N is
estimated at a fixed number of households per cluster. Either way the rate of
``ε_N`` in the total ``N`` is fitted on every size, negatives included, with a
profile CI, or declared not identified (:func:`cosim.studies.epsilon.fit_rate`). Replication files
live in a work directory, so a killed study resumes. ``cosim epsilon`` runs
these and writes the table, the figure
(:func:`cosim.io.epsilon_figures.plot_study`) and a manifest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from cosim.io.cache import cached_equilibrium, game_hash
from cosim.scenario.game import Scenario, consistency_violations
from cosim.studies.epsilon import (
    INFO_FULL,
    INFO_LOCAL,
    LawUnderTest,
    estimate_epsilon_nash,
    fit_rate,
)
from cosim.studies.gap_statistics import Precision, fit_rate_points
from market.pricing import Mode
from models.equilibrium import solve_equilibrium
from models.exploitability import continuous_exploitability
from models.game import Game, build_game

#: What the deviator re-optimises, per information set (the manifest's words).
DEVIATION = {
    INFO_LOCAL: "lower: the price taker at the mean price plus the tangent of its own price "
    "term, every device, on grids 16× finer than the law's; upper: the relaxation dropping "
    "the own price term's curvature (docs/epsilon.md)",
    INFO_FULL: "lower: the larger gain of the local price taker (every device, ignores the "
    "aggregate) and of an approximate DP over SoE × binned last aggregate re-optimising the "
    "home battery; upper: the price-clairvoyant relaxation",
}
#: Distance kinds that derive the M×M distances from the seed, so M can grow.
SAMPLED_DISTANCES = ("line", "radial_feeder")


def law_under_test(
    game: Game, mode: Mode, law: str, cache: Path | None
) -> tuple[LawUnderTest, dict[str, object]]:
    """The law of ``game`` the study measures, and what identifies it.

    ``law="gmfg"`` is the game's equilibrium law (reused from ``cache`` when
    already solved), ``"flat"`` the best response to the flat grid price.
    """
    if law == "gmfg":
        equilibrium, cached = cached_equilibrium(game, mode, cache, solve_equilibrium)
        out = LawUnderTest.from_equilibrium(equilibrium)
        info: dict[str, object] = {
            "converged": equilibrium.converged,
            "exploitability": equilibrium.exploitability,
            "from_cache": cached,
        }
    elif law == "flat":
        out = LawUnderTest.flat_price_response(game, mode)
        info = {}
    else:
        raise ValueError(f"law {law!r}: expected 'gmfg' or 'flat'")
    info["exploitability_mean_field"] = out.exploitability().tolist()
    return out, info


def scenario_with_clusters(
    scenario: Scenario, clusters: int, base_dir: Path | None = None
) -> Scenario:
    """``scenario`` with ``clusters`` clusters drawn afresh from its graphon.

    The distances of ``M`` clusters are derived from the scenario's seed
    (``line``: ``M`` uniform points on [0, 1]; ``radial_feeder``: a seeded
    feeder), and per-cluster parameters given as uniform ranges are drawn for
    each of the ``M`` clusters: ``M`` samples of the continuous type
    distribution. ``clusters.households`` becomes one value for every cluster
    (the scenario's own when it is a single value; only the shares enter the
    mean-field game, and the finite game gives every cluster the same count).

    Raises
    ------
    ValueError
        When ``clusters`` is out of range, when the distances are fixed (kind ``matrix`` or
        ``file``: they belong to one ``M``), or when the rebuilt scenario breaks
        a rule of the scenario format (e.g. a per-cluster list of values);
        the message names the field.
    """
    c = scenario.clusters
    if c.distances.kind not in SAMPLED_DISTANCES:
        raise ValueError(
            f"clusters.distances.kind = {c.distances.kind!r}: growing M needs distances drawn "
            f"from the seed ({' or '.join(map(repr, SAMPLED_DISTANCES))}); "
            "a fixed matrix belongs to one M"
        )
    households = c.households if isinstance(c.households, int) else 1
    try:  # the field rules of clusters (e.g. the largest M) hold for the new count too
        grown = type(c).model_validate(
            {**c.model_dump(), "count": clusters, "households": households}
        )
    except ValidationError as err:
        rules = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in err.errors(include_url=False))
        raise ValueError(f"clusters.count = {clusters}: {rules}") from None
    rebuilt = scenario.model_copy(update={"clusters": grown})
    broken = consistency_violations(rebuilt, base_dir)
    if broken:
        raise ValueError(
            f"with clusters.count = {clusters}: " + "; ".join(f"{v.path}: {v.rule}" for v in broken)
        )
    return rebuilt


def study_point(
    law: LawUnderTest,
    per_cluster: int,
    directory: Path,
    reps: int,
    build_reps: int,
    seed: int,
    workers: int,
    scheduler: str | None,
    progress: bool,
    info: str,
    start: float | None = None,
    precision: Precision | None = None,
    **columns: object,
) -> tuple[dict, pd.DataFrame]:
    """One point of a study: ε_N of ``law`` at ``per_cluster`` households per cluster.

    Returns the table's row (``clusters``, ``households_per_cluster``,
    ``households``, any extra ``columns``, the estimate's summary and the
    seconds since ``start``, default now) and the point's paired gaps.
    """
    start = time.perf_counter() if start is None else start
    m = law.game.n_clusters
    est = estimate_epsilon_nash(
        law,
        per_cluster,
        reps,
        seed,
        directory,
        build_replications=build_reps,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        info=info,
        precision=precision,
    )
    size = {"clusters": m, "households_per_cluster": per_cluster, "households": per_cluster * m}
    row = {**size, **columns, **est.summary, "seconds": time.perf_counter() - start}
    gaps = est.gaps.assign(**size)
    # what the bounds tend to as N grows
    floor = continuous_exploitability(law.game, law.stage_price, law.policy)
    gaps = gaps.assign(floor=floor[gaps["cluster"].to_numpy()])
    return row, gaps


def run_study(
    law: LawUnderTest,
    sizes: list[int],
    reps: int,
    build_reps: int,
    seed: int,
    work: Path,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    info: str = INFO_LOCAL,
    precision: Precision | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """M fixed: the study's size table, all paired gaps, and the fitted rate.

    Size ``n`` (households per cluster) runs in ``work/n{n}``.
    """
    points = [
        study_point(
            law,
            n,
            work / f"n{n}",
            reps,
            build_reps,
            seed,
            workers,
            scheduler,
            progress,
            info,
            precision=precision,
        )
        for n in sizes
    ]
    rows, gaps = zip(*points, strict=True)  # per size: the bracket per cluster (local)
    table = pd.DataFrame(list(rows))
    return table, pd.concat(gaps, ignore_index=True), study_rate(table, list(gaps), info)


def study_rate(table: pd.DataFrame, gaps: list[pd.DataFrame], info: str) -> dict[str, Any]:
    """The rate of a study, fitted on every size (:func:`cosim.studies.epsilon.fit_rate`).

    The lower bound's rate at the top level, the upper bound's under
    ``upper``. Each bound is fitted as ``F_p + C_p·N^−r`` per cluster, its
    limit ``F_p`` free (``floor_fitted``, the largest): as ``N → ∞`` the bounds
    tend to the law's exploitability at the finite game's own mean prices,
    which the FPK chain's small discretisation bias keeps a little away from
    the mean-field prices. Full information also fits the aggregate DP's paired
    gains alone as ``C_p·N^−r`` (``dp_gain``, :func:`cosim.studies.epsilon.fit_rate`).
    ``floor``: ``ε_∞``,
    the law's exploitability in the continuous game at its mean-field prices
    (max over clusters), for reference.
    """
    points = pd.concat(gaps, ignore_index=True)
    per = points.groupby(["households", "cluster"], as_index=False).first()

    def bound(name: str) -> dict[str, Any]:
        return fit_rate_points(per.assign(mean=per[name], se=per[f"{name}_se"]), free_floor=True)

    out: dict[str, Any] = {**bound("lower"), "upper": bound("upper")}
    if info == INFO_FULL:  # the aggregate DP's paired gains alone, for comparison
        out["dp_gain"] = fit_rate(table["households"].to_numpy(), gaps)
    out["floor"] = float(points["floor"].max())
    return out


@dataclass(frozen=True)
class GrowingClustersStudy:
    """The M-growing study's result: one row per cluster count."""

    table: pd.DataFrame
    """Per ``M``: ``clusters``, ``households_per_cluster``, ``households`` (= their
    product), ``game`` (hash of that ``M``'s game), ε_N and its companions, seconds."""
    gaps: pd.DataFrame
    """Every paired replication of every ``M``."""
    rate: dict[str, Any]
    """Fitted rate in the total households: ``slope`` (``ε_N ∝ N^slope``) with its CI, or
    ``identified`` false and a ``reason`` (:func:`cosim.studies.epsilon.fit_rate`)."""
    laws: dict[int, dict[str, object]]
    """Per ``M``: what identifies its law (convergence, cache, game hash, work directory)."""


def run_growing_clusters_study(
    scenarios: dict[int, Scenario],
    base_dir: Path | None,
    mode: Mode,
    law: str,
    per_cluster: int,
    reps: int,
    build_reps: int,
    seed: int,
    work: Path | None,
    cache: Path | None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    info: str = INFO_LOCAL,
    precision: Precision | None = None,
) -> GrowingClustersStudy:
    """M growing: for each ``M`` its own game and law, ε_N at ``per_cluster`` households.

    Parameters
    ----------
    scenarios
        The scenario rebuilt for each ``M`` (:func:`scenario_with_clusters`),
        keyed by ``M``, in study order.
    work
        Root of the replication files: ``work/m{M}/n{per_cluster}``. ``None``
        uses each game's default study directory
        (``results/.epsilon/<game hash>-<mode>-<law>-seed<seed>/n{per_cluster}``,
        the fixed-M layout, so a point shared with a fixed-M study is reused).
    cache
        Where solved equilibria are reused (``None``: always solve).
    """
    rows, gaps, laws = [], [], {}
    for m, scenario in scenarios.items():
        start = time.perf_counter()
        game = build_game(scenario, base_dir)
        tested, law_info = law_under_test(game, mode, law, cache)
        digest = game_hash(game)
        root = work / f"m{m}" if work is not None else default_work(game, mode, law, seed)
        directory = root / f"n{per_cluster}"
        row, point_gaps = study_point(
            tested, per_cluster, directory, reps, build_reps, seed, workers, scheduler,
            progress, info, start=start, precision=precision, game=digest,
        )  # fmt: skip
        laws[m] = {**law_info, "game": digest, "work": str(directory)}
        rows.append(row)
        gaps.append(point_gaps)
    table = pd.DataFrame(rows)
    rate = study_rate(table, gaps, info)
    return GrowingClustersStudy(table, pd.concat(gaps, ignore_index=True), rate, laws)


def default_work(game: Game, mode: Mode, law: str, seed: int) -> Path:
    """The default replication directory of a study of ``game``'s ``law``."""
    return Path(f"results/.epsilon/{game_hash(game)[:16]}-{mode}-{law}-seed{seed}")


def study_label(table: pd.DataFrame) -> str:
    """Which study a table belongs to: M fixed (households per cluster growing) or M growing."""
    m = table["clusters"].to_numpy()
    per = table["households_per_cluster"].to_numpy()
    if len(set(m)) > 1:
        return f"M growing ({m.min()}…{m.max()} clusters from the graphon), {per[0]} per cluster"
    return f"M = {m[0]} fixed, {per.min()}…{per.max()} households per cluster"
