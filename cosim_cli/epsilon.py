"""``cosim epsilon``: the ε_N convergence study (SPEC §7) — table, log–log figure, manifest.

The options choose the study of :mod:`cosim.studies.epsilon_study`: **M fixed**
(``--sizes``: households per cluster, ``M`` the scenario's) or **M growing**
(``--clusters``: each ``M`` rebuilds the game from the scenario's graphon and
solves its own law, at one ``--sizes`` value). The command writes
``epsilon.parquet`` (one row per size), ``gaps.parquet`` (every paired
replication), ``epsilon.png`` and ``manifest.json`` atomically into ``--out``.
Replication files live in a work directory (``--work``) outside the result so
a killed study resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cosim.io.epsilon_figures import plot_study
from cosim.io.results import atomic_directory, manifest, write_json
from cosim.progress import activity
from cosim.scenario.game import LoadedScenario, Scenario
from cosim.scenario.one_market import LoadedOneMarket
from cosim.studies.epsilon import INFO_FULL, INFO_LOCAL, rate_text
from cosim.studies.epsilon_study import (
    DEVIATION,
    default_work,
    law_under_test,
    run_growing_clusters_study,
    run_study,
    scenario_with_clusters,
    study_label,
)
from cosim.studies.gap_statistics import Precision
from cosim.studies.law_under_test import LawUnderTest
from cosim.studies.montecarlo import SchedulerUnreachableError, check_scheduler
from cosim.studies.one_market import solve_outer
from cosim_cli.arguments import counted, resolution
from cosim_cli.output import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    add_out_arguments,
    emit,
    result_directory,
)
from market.pricing import Mode
from models.game import build_game

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
    parser.add_argument(
        "--reps",
        type=counted(2, "a confidence interval needs two"),
        default=16,
        help="replications of the finite game per size (local: the first batch)",
    )
    parser.add_argument(
        "--max-reps",
        type=counted(2),
        help="local: add batches of --reps until the lower bound's simultaneous CI half-width "
        "is ≤ 25 %% of it or ≤ --floor, up to this many (default: --reps, one batch)",
    )
    parser.add_argument(
        "--floor",
        type=resolution,
        default=2e-6,
        help="local: the resolution [$ per household-day] below which a CI is precise enough",
    )
    parser.add_argument(
        "--build-reps",
        type=counted(1),
        help="full information: replications sampling the others' aggregates for the "
        "deviator's DP (default: --reps)",
    )
    parser.add_argument(
        "--info",
        choices=[INFO_LOCAL, INFO_FULL],
        default=INFO_LOCAL,
        help="deviator's information set: own state and time (bracket [lower, upper]), or "
        "also its cluster's last cleared aggregate (bracket: an approximate DP's paired gain, "
        "the price-clairvoyant relaxation)",
    )
    parser.add_argument(
        "--law",
        choices=["gmfg", "flat"],
        default="gmfg",
        help="the law under test: the GMFG law, or the best response to the flat grid price",
    )
    parser.add_argument(
        "--coc",
        type=counted(0),
        help="one-market scenarios: the cluster-of-clusters whose law is measured (0-based, "
        "default 0), at the outer fixed point",
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="default: the scenario's")
    parser.add_argument(
        "--seed", type=counted(0), help="root seed of the study (default: the scenario's)"
    )
    parser.add_argument("--workers", type=counted(1), default=1, help="local worker processes")
    parser.add_argument(
        "--scheduler",
        help="Dask backend: 'local' starts a LocalCluster, or a scheduler address tcp://HOST:PORT",
    )
    add_out_arguments(parser, "results/NAME-epsilon")
    parser.add_argument(
        "--work",
        help="replication files, kept for resuming "
        "(default: results/.epsilon/<game>-<mode>-<law>-seed<seed>)",
    )
    parser.add_argument(
        "--cache", default="results/.equilibria", help="where solved equilibria are reused"
    )


def parse_counts(text: str | None) -> list[int]:
    """Comma-separated positive integers; ``[]`` when any is not one."""
    try:
        values = [int(s) for s in (text or "").split(",") if s.strip()]
    except ValueError:
        return []
    return values if values and min(values) >= 1 else []


@dataclass(frozen=True)
class _Study:
    """A finished study, as the command reports it."""

    table: pd.DataFrame
    gaps: pd.DataFrame
    rate: dict[str, Any]
    about: dict[str, object]
    """The summary's entries on the study: which one, its sizes, what identifies its law."""
    work: object
    """Where its replication files are: one directory, or one per ``M``."""


def cmd_epsilon(args: argparse.Namespace, loaded: LoadedScenario | LoadedOneMarket) -> int:
    """``cosim epsilon``: ε_N against N for the scenario's law, with CIs and the fitted rate.

    On a one-market scenario the law is one cluster-of-clusters' (``--coc``) at
    the outer fixed point (:func:`_one_market_coc`).

    Every check of the options runs before any solve or file is written: a bad
    combination exits with status 2 and leaves nothing behind.
    """
    scenario = loaded.scenario
    if isinstance(loaded, LoadedOneMarket):
        refused = _one_market_refusal(args, loaded)
    elif args.coc is not None:
        refused = "--coc: only for a one-market scenario ([[coc]] tables)"
    else:
        refused = None
    if refused is not None:
        print(f"cosim epsilon: {refused}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sizes_text = args.sizes if args.sizes is not None else DEFAULT_SIZES
    sizes = parse_counts(sizes_text)
    if not sizes or len(set(sizes)) != len(sizes):  # --reps ≥ 2 is the parser's rule
        print(
            f"cosim epsilon: --sizes {sizes_text!r}: need distinct sizes ≥ 1, comma-separated "
            "(e.g. 2,20,200)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    own = (
        ONE_MARKET_MODE if isinstance(loaded, LoadedOneMarket) else loaded.scenario.simulation.mode
    )
    mode = Mode(args.mode or own)
    seed = scenario.seed if args.seed is None else args.seed
    build_reps = args.build_reps or args.reps
    out = result_directory(args, f"results/{scenario.scenario.name}-epsilon")
    try:
        check_scheduler(args.scheduler)
    except SchedulerUnreachableError as err:
        print(f"cosim epsilon: --scheduler {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    summary: dict[str, object] = {
        "info": args.info,
        "deviation": DEVIATION[args.info],
        "law": args.law,
        "mode": str(mode),
    }
    if isinstance(loaded, LoadedOneMarket):
        with activity(f"ε_N of coc[{args.coc or 0}]'s law ({args.info} information)"):
            study = _one_market_coc(args, loaded, mode, sizes, build_reps, seed)
    elif args.clusters is not None:
        scenarios = _scenarios_with_clusters(args, loaded, sizes, sizes_text)
        if scenarios is None:
            return EXIT_BAD_INPUT
        with activity(f"ε_N study ({args.info} information), M = {args.clusters}"):
            study = _growing_clusters(args, loaded, scenarios, mode, sizes, build_reps, seed)
    else:
        with activity(f"ε_N study ({args.info} information), sizes {sizes_text}"):
            study = _fixed_clusters(args, loaded, mode, sizes, build_reps, seed)
    summary |= study.about
    summary |= {
        "replications": args.reps,
        "build_replications": build_reps,
        "rate": _with_text(study.rate),
        "table": json.loads(study.table.to_json(orient="records")),
    }
    with atomic_directory(out) as tmp:
        study.table.to_parquet(tmp / "epsilon.parquet", index=False)
        study.gaps.to_parquet(tmp / "gaps.parquet", index=False)
        plot_study(study.table, study.rate, args.law, tmp / "epsilon.png", args.info)
        write_json(tmp / "manifest.json", manifest(loaded, "epsilon", {"summary": summary}))
    summary["out"] = str(out)
    summary["work"] = study.work
    emit(args, summary, _lines(args, mode, study, out))
    return EXIT_OK


def _precision(args: argparse.Namespace) -> Precision | None:
    """When the local bracket stops adding replications; ``None``: one batch."""
    if args.max_reps is None or args.max_reps <= args.reps:
        return None
    return Precision(relative=0.25, floor=args.floor, max_replications=args.max_reps)


def _with_text(rate: dict) -> dict:
    """The rate (and the upper bound's, if any) with its sentence."""
    out = {**rate, "text": rate_text(rate)}
    if isinstance(rate.get("upper"), dict):
        out["upper"] = _with_text(rate["upper"])
    return out


def _scenarios_with_clusters(
    args: argparse.Namespace, loaded: LoadedScenario, sizes: list[int], sizes_text: str
) -> dict[int, Scenario] | None:
    """The scenario rebuilt for each ``--clusters`` count; ``None``, said why, when it cannot be."""
    counts = parse_counts(args.clusters)
    if not counts or len(set(counts)) != len(counts):
        print(f"--clusters {args.clusters!r}: need distinct cluster counts ≥ 1", file=sys.stderr)
        return None
    if args.sizes is None or len(sizes) != 1:
        print(
            f"--clusters with --sizes {sizes_text!r}: M growing keeps the households per "
            "cluster fixed; give exactly one --sizes value",
            file=sys.stderr,
        )
        return None
    scenario = loaded.scenario
    try:
        return {m: scenario_with_clusters(scenario, m, loaded.base_dir) for m in counts}
    except ValueError as err:
        print(f"{loaded.path or scenario.scenario.name}: {err}", file=sys.stderr)
        return None


def _growing_clusters(
    args: argparse.Namespace,
    loaded: LoadedScenario,
    scenarios: dict[int, Scenario],
    mode: Mode,
    sizes: list[int],
    build_reps: int,
    seed: int,
) -> _Study:
    """M growing: each ``M``'s own game and law, at ``sizes[0]`` households per cluster."""
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
        Path(args.cache),
        workers=args.workers,
        scheduler=args.scheduler,
        progress=True,
        info=args.info,
        precision=_precision(args),
    )
    about: dict[str, object] = {
        "study": "clusters growing",
        "clusters": list(scenarios),
        "sizes": sizes,
        "law_info": {str(m): v for m, v in study.laws.items()},
    }
    work: object = args.work or {str(m): v["work"] for m, v in study.laws.items()}
    return _Study(study.table, study.gaps, study.rate, about, work)


def _sizes_study(
    args: argparse.Namespace,
    law: LawUnderTest,
    sizes: list[int],
    build_reps: int,
    seed: int,
    work: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """:func:`~cosim.studies.epsilon_study.run_study` of ``law`` with the command's options."""
    return run_study(
        law,
        sizes,
        args.reps,
        build_reps,
        seed,
        work,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=True,
        info=args.info,
        precision=_precision(args),
    )


def _fixed_clusters(
    args: argparse.Namespace,
    loaded: LoadedScenario,
    mode: Mode,
    sizes: list[int],
    build_reps: int,
    seed: int,
) -> _Study:
    """M fixed: the scenario's game and law, at every size of ``sizes``."""
    game = build_game(loaded.scenario, loaded.base_dir)
    law, law_info = law_under_test(game, mode, args.law, Path(args.cache))
    work = Path(args.work) if args.work else default_work(game, mode, args.law, seed)
    table, gaps, rate = _sizes_study(args, law, sizes, build_reps, seed, work)
    about: dict[str, object] = {
        "study": "households per cluster growing",
        "sizes": sizes,
        "law_info": law_info,
    }
    return _Study(table, gaps, rate, about, str(work))


#: The trading mode of a one-market scenario's laws (:func:`models.one_market.solve_one_market`).
ONE_MARKET_MODE = Mode.COC

#: What a one-market study leaves out, in the summary's words.
ONE_MARKET_SETTING = (
    "the CoC's households in the finite game; the rest of the market (every other CoC's import, "
    "every aggregator's storage, the system's load) at the outer fixed point's expected flows, "
    "with the bus-load draw of the coupled run; the realised LMP at the CoC's bus follows the "
    "finite population's import through the CoC's LMP table, and the deviator takes it as "
    "given (its own effect on the LMP, 1/N of the import's, is left out)"
)


def _one_market_refusal(args: argparse.Namespace, loaded: LoadedOneMarket) -> str | None:
    """Why the options do not fit a one-market scenario, or ``None``."""
    count = len(loaded.scenario.coc)
    if args.coc is not None and args.coc >= count:
        return f"--coc {args.coc}: the scenario has coc[0]..coc[{count - 1}]"
    if args.clusters is not None:
        return "--clusters: a one-market CoC's clusters are its game file's (M fixed only)"
    if args.mode is not None and Mode(args.mode) != ONE_MARKET_MODE:
        return f"--mode {args.mode}: a one-market scenario's laws are solved in {ONE_MARKET_MODE}"
    return None


def _one_market_coc(
    args: argparse.Namespace,
    loaded: LoadedOneMarket,
    mode: Mode,
    sizes: list[int],
    build_reps: int,
    seed: int,
) -> _Study:
    """One CoC's law at the outer fixed point (:data:`ONE_MARKET_SETTING`), M fixed."""
    c = args.coc or 0
    equilibrium = solve_outer(loaded)
    result = equilibrium.laws[c]
    if args.law == "gmfg":
        law = LawUnderTest.from_equilibrium(result)
    else:
        law = LawUnderTest.flat_price_response(result.game, mode)
    name = loaded.scenario.scenario.name
    default = f"results/.epsilon/{name}-coc{c}-{loaded.sha256[:12]}-{mode}-{args.law}-seed{seed}"
    work = Path(args.work or default)
    table, gaps, rate = _sizes_study(args, law, sizes, build_reps, seed, work)
    market = equilibrium.market
    about: dict[str, object] = {
        "study": "households per cluster growing",
        "sizes": sizes,
        "coc": c,
        "bus": market.network.buses[market.cocs[c].bus],
        "setting": ONE_MARKET_SETTING,
        "outer_fixed_point": {
            "converged": equilibrium.converged,
            "iterations": len(equilibrium.history),
            "last": equilibrium.history[-1] if equilibrium.history else {},
        },
        "law_info": {
            "converged": result.converged,
            "exploitability": result.exploitability,
            "exploitability_continuous": result.exploitability_continuous,
            "exploitability_mean_field": law.exploitability().tolist(),
        },
    }
    return _Study(table, gaps, rate, about, str(work))


def _lines(args: argparse.Namespace, mode: Mode, study: _Study, out: Path) -> list[str]:
    table, rate = study.table, study.rate
    lines = []
    outer = study.about.get("outer_fixed_point")
    if isinstance(outer, dict):
        state = "converged" if outer["converged"] else "NOT converged: its last law is measured"
        lines.append(
            f"coc[{study.about['coc']}] at {study.about['bus']}, outer fixed point {state} "
            f"({outer['iterations']} iterations); the deviator takes the LMP as given"
        )
    lines.append(
        f"ε_N ({args.info} information, {args.law} law, {mode}; {study_label(table)}),"
        " 95 % CIs (ε: simultaneous over clusters):"
    )
    for r in table.itertuples():
        lines.append(
            f"  M={r.clusters:>4d}  N={r.households:>7d}  ε ∈ [{r.epsilon:.3e}, {r.upper:.3e}]"
            f"  lower CI [{r.epsilon_lo:.3e}, {r.epsilon_hi:.3e}]"
            f"  upper CI [{r.upper_lo:.3e}, {r.upper_hi:.3e}]"
            f"  width {r.width:.2e}{'' if r.aim_met else ' (> 2·lower + 1e-5)'}"
            f"  J^N−J^∞={r.bias:+.3e} [{r.bias_lo:+.3e}, {r.bias_hi:+.3e}]"
            f"  |π^N−π^∞|={r.price_error:.2e}  {r.seconds:.0f} s"
        )
        if args.info == INFO_FULL:
            lines.append(
                f"      lower from the {r.lower_from}; aggregate DP's gain {r.dp_gain:+.3e}"
                f" [{r.dp_gain_lo:+.3e}, {r.dp_gain_hi:+.3e}]"
            )
    lines.append(
        f"ε_∞ (the law's exploitability in the continuous game at its mean-field prices): "
        f"{rate['floor']:.3e}"
    )
    fits = [("lower, F + C·N^−r", rate), ("upper, F + C·N^−r", rate["upper"])]
    if args.info == INFO_FULL:
        fits.append(("the aggregate DP's paired gains, C·N^−r", rate["dp_gain"]))
    for name, fitted in fits:
        limit = fitted.get("floor_fitted")
        lines.append(
            f"fitted rate of {name}: {rate_text(fitted)} on all "
            f"{fitted['sizes_used']} sizes, negatives included"
            + ("" if limit is None else f"; fitted limit F = {limit:.2e}")
        )
    lines.append(f"results: {out}")
    return lines
