"""``cosim epsilon``: the ε_N convergence study (SPEC §7) — table, log–log figure, manifest.

Two studies of SPEC §7. **M fixed** (``--sizes``): for each population size
(households per cluster, ``M`` the scenario's) it estimates ε_N (local or full
information) of the scenario's GMFG law with
:func:`cosim.studies.epsilon.estimate_epsilon_nash`. **M growing** (``--clusters``):
for each ``M`` the game is rebuilt from the scenario with ``M`` clusters — ``M``
points drawn on the continuous graphon's domain (``line``: uniform on [0, 1],
``W = exp(−α|x−y|)``; or a seeded radial feeder) with per-cluster parameters
drawn from the scenario's distributions — its own law is solved, and ε_N is
estimated at a fixed number of households per cluster. Either way it fits the
rate of ``ε_N`` in the total ``N`` with a bootstrap CI, and writes
``epsilon.parquet`` (one row per size), ``gaps.parquet`` (every paired
replication), ``epsilon.png`` and ``manifest.json`` atomically into ``--out``.
Replication files live in a work directory (``--work``) outside the result so
a killed study resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import ValidationError

from cosim.io.cache import cached_equilibrium, game_hash
from cosim.io.results import atomic_directory, manifest, write_json
from cosim.scenario.game import LoadedScenario, Scenario, consistency_violations
from cosim.studies.epsilon import (
    INFO_FULL,
    INFO_LOCAL,
    LawUnderTest,
    estimate_epsilon_nash,
    fit_rate,
)
from market.pricing import Mode
from models.equilibrium import solve_equilibrium
from models.game import Game, build_game

EXIT_OK, EXIT_BAD_INPUT = 0, 2

#: What the deviator re-optimises, per information set (the manifest's words) ...
DEVIATION = {
    INFO_LOCAL: "every device jointly (exact DP over ESS × EV × shiftable, controllable inside)",
    INFO_FULL: "home battery only (approximate DP over SoE × binned last aggregate); "
    "EV, shiftable, controllable keep the law",
}
#: ... and in the figure's legend.
DEVIATION_CLASS = {INFO_LOCAL: "joint deviation", INFO_FULL: "ESS deviation"}
#: Distance kinds that derive the M×M distances from the seed, so M can grow.
SAMPLED_DISTANCES = ("line", "radial_feeder")
#: Households per cluster of the M-fixed study when ``--sizes`` is not given.
DEFAULT_SIZES = "2,20,200,2000"


def add_epsilon_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosim epsilon`` (the scenario and ``--json`` come from the common parser)."""
    parser.add_argument(
        "--sizes",
        help=f"households per cluster, comma-separated (default {DEFAULT_SIZES}; M is the "
        "scenario's); with --clusters exactly one value",
    )
    parser.add_argument(
        "--clusters",
        help="M growing: cluster counts, comma-separated; each M rebuilds the game with M "
        "clusters sampled from the scenario's graphon (distances kind 'line' or "
        "'radial_feeder') and solves its own law",
    )
    parser.add_argument("--reps", type=int, default=16, help="measured replications per size")
    parser.add_argument(
        "--build-reps",
        type=int,
        help="replications sampling the others' aggregates for the deviator's DP (default: --reps)",
    )
    parser.add_argument(
        "--info",
        choices=[INFO_LOCAL, INFO_FULL],
        default=INFO_LOCAL,
        help="deviator's information set: own state and time (exact DP), or also its "
        "cluster's last cleared aggregate (approximate DP)",
    )
    parser.add_argument(
        "--law",
        choices=["gmfg", "flat"],
        default="gmfg",
        help="the law under test: the GMFG law, or the best response to the flat grid price",
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="default: the scenario's")
    parser.add_argument("--seed", type=int, help="root seed of the study (default: the scenario's)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument(
        "--scheduler",
        help="Dask backend: 'local' starts a LocalCluster, or a scheduler address tcp://HOST:PORT",
    )
    parser.add_argument("--out", help="result directory (default: results/NAME-epsilon)")
    parser.add_argument(
        "--work",
        help="replication files, kept for resuming "
        "(default: results/.epsilon/<game>-<mode>-<law>-seed<seed>)",
    )
    parser.add_argument(
        "--cache", default="results/.equilibria", help="where solved equilibria are reused"
    )


def _finite(value: object) -> object:
    """``value`` with non-finite floats as strings (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _solve(game: Game, mode: Mode):
    return solve_equilibrium(game, mode)


def law_under_test(
    game: Game, mode: Mode, law: str, cache: Path | None
) -> tuple[LawUnderTest, dict[str, object]]:
    """The law of ``game`` the study measures, and what identifies it.

    ``law="gmfg"`` is the game's equilibrium law (reused from ``cache`` when
    already solved), ``"flat"`` the best response to the flat grid price.
    """
    if law == "gmfg":
        equilibrium, cached = cached_equilibrium(game, mode, cache, _solve)
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
    )
    size = {"clusters": m, "households_per_cluster": per_cluster, "households": per_cluster * m}
    row = {**size, **columns, **est.summary, "seconds": time.perf_counter() - start}
    return row, est.gaps.assign(**size)


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
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """M fixed: the study's size table, all paired gaps, and the fitted rate.

    Size ``n`` (households per cluster) runs in ``work/n{n}``.
    """
    points = [
        study_point(
            law, n, work / f"n{n}", reps, build_reps, seed, workers, scheduler, progress, info
        )
        for n in sizes
    ]
    rows, gaps = zip(*points, strict=True)
    table = pd.DataFrame(list(rows))
    rate = fit_rate(table["households"].to_numpy(), list(gaps))
    return table, pd.concat(gaps, ignore_index=True), rate


@dataclass(frozen=True)
class GrowingClustersStudy:
    """The M-growing study's result: one row per cluster count."""

    table: pd.DataFrame
    """Per ``M``: ``clusters``, ``households_per_cluster``, ``households`` (= their
    product), ``game`` (hash of that ``M``'s game), ε_N and its companions, seconds."""
    gaps: pd.DataFrame
    """Every paired replication of every ``M``."""
    rate: dict[str, float]
    """Fitted slope of ``log ε_N`` on ``log N`` (total households) with its CI."""
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
            progress, info, start=start, game=digest,
        )  # fmt: skip
        laws[m] = {**law_info, "game": digest, "work": str(directory)}
        rows.append(row)
        gaps.append(point_gaps)
    table = pd.DataFrame(rows)
    rate = fit_rate(table["households"].to_numpy(), gaps)
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


def plot_study(
    table: pd.DataFrame, rate: dict[str, float], law: str, path: Path, info: str = INFO_LOCAL
) -> None:
    """Log–log ε_N with 95 % CIs and the fitted rate; ``|J^N − J^∞|`` and the price error.

    The title names the study (:func:`study_label`); in the M-growing study
    every point is labelled with its ``M``.
    """
    n = table["households"].to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    eps = table["epsilon"].to_numpy()
    lo, hi = table["epsilon_lo"].to_numpy(), table["epsilon_hi"].to_numpy()
    shown = eps > 0
    bottom = float(np.min(eps[shown])) / 30.0 if shown.any() else 1e-9
    ax.errorbar(
        n[shown],
        eps[shown],
        yerr=[eps[shown] - np.maximum(lo[shown], bottom), hi[shown] - eps[shown]],
        fmt="o",
        capsize=3,
        label=f"ε_N ({info} information, {DEVIATION_CLASS[info]}), 95 % CI"
        + ("; bars to the axis: CI contains 0" if np.any(lo[shown] <= 0) else ""),
    )
    for x, h in zip(n[~shown], hi[~shown], strict=True):
        ax.plot([x], [max(h, 1e-9)], "v", color="C0", alpha=0.6)
    if math.isfinite(rate["slope"]):
        keep = n[shown]
        c = np.exp(np.mean(np.log(eps[shown]) - rate["slope"] * np.log(keep)))
        ax.plot(
            keep,
            c * keep ** rate["slope"],
            "--",
            color="C1",
            label=f"fit N^{rate['slope']:.2f} [{rate['slope_lo']:.2f}, {rate['slope_hi']:.2f}]",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom)
    ax.set_xlabel("households N")
    ax.set_ylabel("ε_N [$ per household-day]")
    if table["clusters"].nunique() > 1:
        for x, y, m in zip(n, np.maximum(eps, bottom), table["clusters"], strict=True):
            ax.annotate(f"M={m}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_title(f"ε-Nash gap of the {law} law\n{study_label(table)}", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.errorbar(
        n,
        table["price_error"],
        yerr=[
            table["price_error"] - table["price_error_lo"],
            table["price_error_hi"] - table["price_error"],
        ],
        fmt="s-",
        capsize=3,
        label="mean |π^N − π^∞| [$/kWh]",
    )
    ax.plot(n, np.abs(table["bias"]), "o-", label="|J^N − J^∞| [$]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("households N")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _parse_counts(text: str | None) -> list[int]:
    """Comma-separated positive integers; ``[]`` when any is not one."""
    try:
        values = [int(s) for s in (text or "").split(",") if s.strip()]
    except ValueError:
        return []
    return values if values and min(values) >= 1 else []


def cmd_epsilon(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim epsilon``: ε_N against N for the scenario's law, with CIs and the fitted rate.

    Every check of the options runs before any solve or file is written: a bad
    combination exits with status 2 and leaves nothing behind.
    """
    scenario = loaded.scenario
    sizes_text = args.sizes if args.sizes is not None else DEFAULT_SIZES
    sizes = _parse_counts(sizes_text)
    if not sizes or args.reps < 2:
        print(f"sizes: {sizes_text!r} and --reps {args.reps}: need sizes ≥ 1 and at least 2 reps")
        return EXIT_BAD_INPUT
    mode = Mode(args.mode or scenario.simulation.mode)
    seed = scenario.seed if args.seed is None else args.seed
    build_reps = args.build_reps or args.reps
    out = Path(args.out or f"results/{scenario.scenario.name}-epsilon")
    cache = Path(args.cache)
    summary: dict[str, object] = {
        "info": args.info,
        "deviation": DEVIATION[args.info],
        "law": args.law,
        "mode": str(mode),
    }
    if args.clusters is not None:
        counts = _parse_counts(args.clusters)
        if not counts or len(set(counts)) != len(counts):
            print(f"--clusters {args.clusters!r}: need distinct cluster counts ≥ 1")
            return EXIT_BAD_INPUT
        if args.sizes is None or len(sizes) != 1:
            print(
                f"--clusters with --sizes {sizes_text!r}: M growing keeps the households per "
                "cluster fixed; give exactly one --sizes value"
            )
            return EXIT_BAD_INPUT
        try:
            scenarios = {m: scenario_with_clusters(scenario, m, loaded.base_dir) for m in counts}
        except ValueError as err:
            print(f"{loaded.path or scenario.scenario.name}: {err}")
            return EXIT_BAD_INPUT
        study = run_growing_clusters_study(
            scenarios,
            loaded.base_dir,
            mode,
            args.law,
            sizes[0],
            args.reps,
            build_reps,
            seed,
            Path(args.work) if args.work else None,
            cache,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.json,
            info=args.info,
        )
        table, gaps, rate = study.table, study.gaps, study.rate
        summary |= {"study": "clusters growing", "clusters": counts, "sizes": sizes}
        summary["law_info"] = {str(m): v for m, v in study.laws.items()}
        work_shown: object = args.work or {str(m): v["work"] for m, v in study.laws.items()}
    else:
        game = build_game(scenario, loaded.base_dir)
        law, law_info = law_under_test(game, mode, args.law, cache)
        work = Path(args.work) if args.work else default_work(game, mode, args.law, seed)
        table, gaps, rate = run_study(
            law,
            sizes,
            args.reps,
            build_reps,
            seed,
            work,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.json,
            info=args.info,
        )
        summary |= {"study": "households per cluster growing", "sizes": sizes}
        summary["law_info"] = law_info
        work_shown = str(work)
    summary |= {
        "replications": args.reps,
        "build_replications": build_reps,
        "rate": rate,
        "table": json.loads(table.to_json(orient="records")),
    }
    with atomic_directory(out) as tmp:
        table.to_parquet(tmp / "epsilon.parquet", index=False)
        gaps.to_parquet(tmp / "gaps.parquet", index=False)
        plot_study(table, rate, args.law, tmp / "epsilon.png", args.info)
        write_json(tmp / "manifest.json", manifest(loaded, "epsilon", {"summary": summary}))
    summary["out"] = str(out)
    summary["work"] = work_shown
    if args.json:
        print(json.dumps(_finite(summary), indent=2, default=str, allow_nan=False))
        return EXIT_OK
    lines = [
        f"ε_N ({args.info} information, {args.law} law, {mode}; {study_label(table)}), 95 % CIs:"
    ]
    for r in table.itertuples():
        lines.append(
            f"  M={r.clusters:>4d}  N={r.households:>7d}"
            f"  ε={r.epsilon:.3e} [{r.epsilon_lo:.3e}, {r.epsilon_hi:.3e}]"
            f"  J^N−J^∞={r.bias:+.3e} [{r.bias_lo:+.3e}, {r.bias_hi:+.3e}]"
            f"  |π^N−π^∞|={r.price_error:.2e}  {r.seconds:.0f} s"
        )
    lines.append(
        f"fitted rate: N^{rate['slope']:.3f} [{rate['slope_lo']:.3f}, {rate['slope_hi']:.3f}]"
        f" on {rate['sizes_used']} sizes with ε>0"
    )
    lines.append(f"results: {out}")
    print("\n".join(lines))
    return EXIT_OK
