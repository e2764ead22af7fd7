"""``cosim epsilon``: the ε_N convergence study (SPEC §7) — table, log–log figure, manifest.

For each population size (households per cluster, ``M`` fixed by the scenario)
it estimates ε_N (local or full information) of the scenario's GMFG law with
:func:`cosim.epsilon.estimate_epsilon_nash`, fits the rate of ``ε_N`` in
``N`` with a bootstrap CI, and writes ``epsilon.parquet`` (one row per size),
``gaps.parquet`` (every paired replication), ``epsilon.png`` and
``manifest.json`` atomically into ``--out``. Replication files live in a work
directory (``--work``) outside the result so a killed study resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cosim.epsilon import INFO_FULL, INFO_LOCAL, LawUnderTest, estimate_epsilon_nash, fit_rate
from cosim.experiments import cached_equilibrium, game_hash
from cosim.results import atomic_directory, manifest, write_json
from cosim.scenario import LoadedScenario
from market.pricing import Mode
from models.equilibrium import solve_equilibrium
from models.game import Game, build_game

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def add_epsilon_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cosim epsilon`` (the scenario and ``--json`` come from the common parser)."""
    parser.add_argument(
        "--sizes",
        default="2,20,200,2000",
        help="households per cluster, comma-separated (M is the scenario's)",
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
    """The study's size table, all paired gaps, and the fitted rate."""
    rows, gaps = [], []
    m = law.game.n_clusters
    for n in sizes:
        start = time.perf_counter()
        est = estimate_epsilon_nash(
            law,
            n,
            reps,
            seed,
            work / f"n{n}",
            build_replications=build_reps,
            workers=workers,
            scheduler=scheduler,
            progress=progress,
            info=info,
        )
        rows.append(
            {
                "households_per_cluster": n,
                "households": n * m,
                **est.summary,
                "seconds": time.perf_counter() - start,
            }
        )
        gaps.append(est.gaps.assign(households_per_cluster=n, households=n * m))
    table = pd.DataFrame(rows)
    rate = fit_rate(table["households"].to_numpy(), gaps)
    return table, pd.concat(gaps, ignore_index=True), rate


def plot_study(
    table: pd.DataFrame, rate: dict[str, float], law: str, path: Path, info: str = INFO_LOCAL
) -> None:
    """Log–log ε_N with 95 % CIs and the fitted rate; ``|J^N − J^∞|`` and the price error."""
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
        label=f"ε_N ({info} information, ESS deviation), 95 % CI"
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
    ax.set_title(f"ε-Nash gap of the {law} law")
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


def cmd_epsilon(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim epsilon``: ε_N against N for the scenario's law, with CIs and the fitted rate."""
    scenario = loaded.scenario
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1 or args.reps < 2:
        print(f"sizes: {args.sizes!r} and --reps {args.reps}: need sizes ≥ 1 and at least 2 reps")
        return EXIT_BAD_INPUT
    game = build_game(scenario, loaded.base_dir)
    mode = Mode(args.mode or scenario.simulation.mode)
    seed = scenario.seed if args.seed is None else args.seed
    if args.law == "gmfg":
        equilibrium, cached = cached_equilibrium(game, mode, Path(args.cache), _solve)
        law = LawUnderTest.from_equilibrium(equilibrium)
        law_info = {
            "converged": equilibrium.converged,
            "exploitability": equilibrium.exploitability,
            "from_cache": cached,
        }
    else:
        law = LawUnderTest.flat_price_response(game, mode)
        law_info = {}
    law_info["ess_exploitability_mean_field"] = law.ess_exploitability().tolist()
    out = Path(args.out or f"results/{scenario.scenario.name}-epsilon")
    work = Path(
        args.work or f"results/.epsilon/{game_hash(game)[:16]}-{mode}-{args.law}-seed{seed}"
    )
    table, gaps, rate = run_study(
        law,
        sizes,
        args.reps,
        args.build_reps or args.reps,
        seed,
        work,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.json,
        info=args.info,
    )
    with atomic_directory(out) as tmp:
        table.to_parquet(tmp / "epsilon.parquet", index=False)
        gaps.to_parquet(tmp / "gaps.parquet", index=False)
        plot_study(table, rate, args.law, tmp / "epsilon.png", args.info)
        summary = {
            "info": args.info,
            "deviation": "ESS re-optimised (exact DP); EV, shiftable, controllable keep the law",
            "law": args.law,
            "mode": str(mode),
            "sizes": sizes,
            "replications": args.reps,
            "build_replications": args.build_reps or args.reps,
            "rate": rate,
            "law_info": law_info,
            "table": json.loads(table.to_json(orient="records")),
        }
        write_json(tmp / "manifest.json", manifest(loaded, "epsilon", {"summary": summary}))
    summary["out"] = str(out)
    summary["work"] = str(work)
    if args.json:
        print(json.dumps(_finite(summary), indent=2, default=str, allow_nan=False))
    else:
        lines = [f"ε_N ({args.info} information, {args.law} law, {mode}), 95 % CIs:"]
        for r in table.itertuples():
            lines.append(
                f"  N={r.households:>7d}"
                f"  ε={r.epsilon:.3e} [{r.epsilon_lo:.3e}, {r.epsilon_hi:.3e}]"
                f"  J^N−J^∞={r.bias:+.3e} [{r.bias_lo:+.3e}, {r.bias_hi:+.3e}]"
                f"  |π^N−π^∞|={r.price_error:.2e}"
            )
        lines.append(
            f"fitted rate: N^{rate['slope']:.3f} [{rate['slope_lo']:.3f}, {rate['slope_hi']:.3f}]"
            f" on {rate['sizes_used']} sizes with ε>0"
        )
        lines.append(f"results: {out}")
        print("\n".join(lines))
    return EXIT_OK
