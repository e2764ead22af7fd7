"""The ``cosim`` command.

Sub-commands share ``--out DIR`` (where results go; written atomically) and
``--json`` (a machine-readable summary on standard output; progress and
messages go to standard error). A scenario is validated before any work:
an invalid one prints one line per violation and exits with status 2,
writing nothing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import matplotlib
import numpy as np

from cosim import progress
from cosim.io import figures
from cosim.io.cache import cached_equilibrium
from cosim.io.results import OutputDirectoryError, atomic_directory, manifest, write_json
from cosim.progress import activity
from cosim.scenario.game import (
    MAX_DAYS,
    MAX_SIMULATED_PER_CLUSTER,
    LoadedScenario,
    ScenarioError,
    load_scenario,
)
from cosim.scenario.one_market import is_one_market_file, load_one_market_scenario
from cosim.scenario.wholesale import load_wholesale_scenario
from cosim.sim.simulation import simulate_and_save
from cosim.studies.epsilon import StudyMismatchError
from cosim.studies.modes import mode_table
from cosim_cli.arguments import OneLineParser, counted
from cosim_cli.epsilon import add_epsilon_arguments, cmd_epsilon
from cosim_cli.limits import (
    check_limits,
    check_one_market_epsilon_limits,
    check_one_market_limits,
)
from cosim_cli.one_market import cmd_one_market_run
from cosim_cli.output import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NOT_CONVERGED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_WORKER_DIED,
    add_out_arguments,
    add_quiet_argument,
    emit,
    report_invalid,
    result_directory,
    solve_with_progress,
)
from cosim_cli.wholesale import add_wholesale_parser
from market.pricing import Mode
from models.archive import save_equilibrium, summary
from models.equilibrium import EquilibriumResult
from models.game import build_game


def _equilibrium_lines(info: dict) -> list[str]:
    state = "converged" if info["converged"] else "DID NOT CONVERGE"
    return [
        f"{info['mode']}: {state} in {info['iterations']} iterations ({info['seconds']:.1f} s)",
        f"  price residual {info['price_residual']:.2e} (relative), "
        f"exploitability {info['exploitability']:.2e} $/household-day "
        f"({info['exploitability_continuous']:.2e} in the continuous game)",
        f"  FPK mass error {info['mass_error']:.1e}, smallest density {info['min_density']:.1e}, "
        f"λ_min(D½WD½) {info['monotonicity']:.3g}",
        f"  daily cost: generic agent ${info['generic_cost']:.3f}, mean ${info['mean_cost']:.3f}",
    ]


def cmd_validate(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim validate FILE``: print ``OK`` (the file was checked on loading)."""
    emit(args, {"valid": True, "file": args.scenario, "sha256": loaded.sha256}, ["OK"])
    return EXIT_OK


def cmd_solve(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim solve``: the GMFG equilibrium of one mode, saved with figures."""
    scenario = loaded.scenario
    mode = Mode(args.mode)
    out = result_directory(args, f"results/{scenario.scenario.name}-{mode}")
    game = build_game(scenario, loaded.base_dir)
    result = solve_with_progress(game, mode)
    info = summary(result)
    with atomic_directory(out) as tmp:
        save_equilibrium(result, tmp)
        figures.equilibrium_figures(result, tmp / "figures")
        write_json(
            tmp / "manifest.json", manifest(loaded, f"solve --mode {mode}", {"summary": info})
        )
    info["out"] = str(out)
    emit(args, info, [*_equilibrium_lines(info), f"results: {out}"])
    return EXIT_OK if result.converged else EXIT_NOT_CONVERGED


def cmd_compare_modes(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim compare-modes``: stand-alone vs RPC-only vs CoC (seed 000 §4.3.1)."""
    scenario = loaded.scenario
    out = result_directory(args, f"results/{scenario.scenario.name}-modes")
    game = build_game(scenario, loaded.base_dir)
    results = {
        mode: solve_with_progress(game, mode) for mode in (Mode.STANDALONE, Mode.RPC, Mode.COC)
    }
    table, per_cluster = mode_table(results)
    infos = {str(mode): summary(res) for mode, res in results.items()}
    with atomic_directory(out) as tmp:
        for mode, res in results.items():
            save_equilibrium(res, tmp / str(mode))
        figures.equilibrium_figures(results[Mode.COC], tmp / "figures")
        figures.plot_mode_costs(table, tmp / "figures" / "mode_costs.png")
        table.to_parquet(tmp / "modes.parquet", index=False)
        per_cluster.to_parquet(tmp / "cluster_costs.parquet", index=False)
        write_json(tmp / "manifest.json", manifest(loaded, "compare-modes", {"modes": infos}))
    converged = all(res.converged for res in results.values())
    payload = {
        "converged": converged,
        "generic_cluster": game.generic_cluster,
        "cost": {
            row["mode"]: {"generic": row["generic_cost"], "mean": row["mean_cost"]}
            for row in table.to_dict("records")
        },
        "reduction": {
            row["mode"]: {"generic": row["generic_reduction"], "mean": row["mean_reduction"]}
            for row in table.to_dict("records")
        },
        "modes": infos,
        "out": str(out),
    }
    lines = [line for info in infos.values() for line in _equilibrium_lines(info)]
    lines.append("")
    lines.append(f"{'mode':<12}{'generic $':>11}{'mean $':>10}{'Δ generic':>11}{'Δ mean':>9}")
    for row in table.to_dict("records"):
        lines.append(
            f"{row['mode']:<12}{row['generic_cost']:>11.3f}{row['mean_cost']:>10.3f}"
            f"{-100 * row['generic_reduction'] + 0.0:>10.1f}%"
            f"{-100 * row['mean_reduction'] + 0.0:>8.1f}%"
        )
    lines.append(f"results: {out}")
    emit(args, payload, lines)
    return EXIT_OK if converged else EXIT_NOT_CONVERGED


def _simulation_lines(info: dict) -> list[str]:
    checks = info["checks"]
    lines = [
        f"simulated {info['households']} households × {info['days']} day(s) in "
        f"{info['seconds']:.2f} s ({info['path']} path, mode {info['mode']})",
        f"  realised vs mean-field stage price: mean |gap| {info['price_error']:.2e} $/kWh",
        f"  mean daily cost: realised ${info['realised_mean_cost']:.3f}, "
        f"mean field ${info['mean_field_cost']:.3f}",
        f"  books: energy balance {checks['energy_balance']:.1e}, money balance "
        f"{checks['money_balance']:.1e}, SoE bound excess {checks['soe_bound_excess_kwh']:.1e} kWh",
    ]
    if "wholesale_balance" in checks:
        lmp = np.asarray(info["lmp_realised"])
        lines.append(
            f"  wholesale: LMP at the households' bus {lmp.min():.2f}–{lmp.max():.2f} $/MWh "
            f"(realised); generation = load + import to {checks['wholesale_balance']:.1e}"
        )
    return lines


def _simulate(
    args: argparse.Namespace, loaded: LoadedScenario, equilibrium: EquilibriumResult, out_dir: Path
) -> dict:
    """Simulate as the scenario and the options say, write the run into ``out_dir``, summarise."""
    sim_cfg = loaded.scenario.simulation
    per_cluster = getattr(args, "households_per_cluster", None) or sim_cfg.households_per_cluster
    days = getattr(args, "days", None) or sim_cfg.days
    game = equilibrium.game
    total = per_cluster * game.n_clusters if per_cluster else int(game.clusters.households.sum())
    with activity(f"simulating {total} households for {days} day(s)"):
        return simulate_and_save(
            equilibrium,
            out_dir,
            households_per_cluster=per_cluster,
            days=days,
            seed=loaded.scenario.seed if getattr(args, "seed", None) is None else args.seed,
            reference=getattr(args, "reference_path", False),
            record=sim_cfg.record_households,
        )


def cmd_simulate(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim simulate``: N finite households applying the law of the scenario's mode."""
    scenario = loaded.scenario
    out = result_directory(args, f"results/{scenario.scenario.name}-simulation")
    game = build_game(scenario, loaded.base_dir)
    mode = Mode(scenario.simulation.mode)
    equilibrium, cached = cached_equilibrium(game, mode, Path(args.cache), solve_with_progress)
    with atomic_directory(out) as tmp:
        info = _simulate(args, loaded, equilibrium, tmp)
        info["equilibrium_from_cache"] = cached
        write_json(tmp / "manifest.json", manifest(loaded, "simulate", {"summary": info}))
    info["out"] = str(out)
    emit(args, info, [*_simulation_lines(info), f"results: {out}"])
    return EXIT_OK


def cmd_run(args: argparse.Namespace, loaded: LoadedScenario) -> int:
    """``cosim run``: the three equilibria, the finite-N simulation, and a summary."""
    scenario = loaded.scenario
    out = result_directory(args, f"results/{scenario.scenario.name}")
    game = build_game(scenario, loaded.base_dir)
    results = {}
    for mode in (Mode.STANDALONE, Mode.RPC, Mode.COC):
        results[mode], _ = cached_equilibrium(game, mode, Path(args.cache), solve_with_progress)
    table, per_cluster = mode_table(results)
    mode = Mode(scenario.simulation.mode)
    with atomic_directory(out) as tmp:
        for m, res in results.items():
            save_equilibrium(res, tmp / "equilibria" / str(m))
        figures.equilibrium_figures(results[mode], tmp / "figures")
        figures.plot_mode_costs(table, tmp / "figures" / "mode_costs.png")
        table.to_parquet(tmp / "modes.parquet", index=False)
        per_cluster.to_parquet(tmp / "cluster_costs.parquet", index=False)
        sim_info = _simulate(args, loaded, results[mode], tmp / "simulation")
        payload = {
            "converged": all(r.converged for r in results.values()),
            **_wholesale_summary(results[mode]),
            "cost": {
                row["mode"]: {"generic": row["generic_cost"], "mean": row["mean_cost"]}
                for row in table.to_dict("records")
            },
            "simulation": sim_info,
        }
        write_json(tmp / "manifest.json", manifest(loaded, "run", {"summary": payload}))
    payload["out"] = str(out)
    lines = [f"{'mode':<12}{'generic $':>11}{'mean $':>10}   (mean-field equilibria)"]
    for row in table.to_dict("records"):
        lines.append(f"{row['mode']:<12}{row['generic_cost']:>11.3f}{row['mean_cost']:>10.3f}")
    lines += _simulation_lines(sim_info)
    lines.append(
        f"results: {out}  (figures in {out / 'figures'} and {out / 'simulation' / 'figures'})"
    )
    emit(args, payload, lines)
    return EXIT_OK if payload["converged"] else EXIT_NOT_CONVERGED


def _wholesale_summary(result: EquilibriumResult) -> dict:
    """The law's LMP at the households' bus, per step (empty without a wholesale link)."""
    link = result.game.wholesale
    if link is None:
        return {}
    lmp = 1000.0 * (result.game.grid_price - link.retail_adder)
    return {
        "wholesale": {
            "bus": link.bus,
            "bus_name": link.network.buses[link.bus],
            "households": link.households,
            "lmp_mean_field": lmp.round(4).tolist(),
            "lmp_std_mean_field": float(np.std(lmp)),
        }
    }


def build_parser() -> argparse.ArgumentParser:
    """The ``cosim`` argument parser."""
    parser = OneLineParser(
        prog="cosim",
        description="Graphon mean-field games and co-simulation of residential prosumer clusters.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("scenario", help="scenario file (TOML)")
        p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
        add_quiet_argument(p)
        p.set_defaults(handler=handler)
        return p

    add("validate", cmd_validate, "check a scenario file; print OK or one line per violation")
    solve = add("solve", cmd_solve, "solve the GMFG equilibrium of one trading mode")
    solve.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.COC.value,
        help="trading mode: stand-alone, RPC-only or cluster-of-clusters (CoC)",
    )
    add_out_arguments(solve, "results/NAME-MODE")
    compare = add("compare-modes", cmd_compare_modes, "compare stand-alone, RPC-only and CoC costs")
    add_out_arguments(compare, "results/NAME-modes")
    for name, handler, text in (
        ("simulate", cmd_simulate, "simulate N finite households applying the GMFG law"),
        ("run", cmd_run, "solve the three modes, simulate the finite population, summarise"),
    ):
        p = add(name, handler, text)
        add_out_arguments(p, f"results/NAME{'-simulation' if name == 'simulate' else ''}")
        p.add_argument(
            "--cache",
            default="results/.equilibria",
            help="where solved equilibria are kept and reused when the game's hash matches",
        )
        if name == "simulate":
            p.add_argument(
                "--households-per-cluster",
                type=counted(1, maximum=MAX_SIMULATED_PER_CLUSTER),
                help="override the scenario's",
            )
            p.add_argument("--days", type=counted(1, maximum=MAX_DAYS), help="days to simulate")
            p.add_argument(
                "--seed", type=counted(0), help="seed of the simulation (default: scenario's)"
            )
            p.add_argument(
                "--reference-path",
                action="store_true",
                help="step each household as a Python agent (slow; the reference)",
            )
    add_epsilon_arguments(add("epsilon", cmd_epsilon, "ε-Nash gap of the GMFG law against N"))
    add_wholesale_parser(sub)
    return parser


def _scenario_format(path: str) -> str:
    """``"one_market"`` (``[[coc]]`` tables), ``"wholesale"`` (seed 003: a ``[network]``
    table) or ``"game"`` (a GMFG scenario; also for a file that does not parse, whose
    loader reports the problem)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "game"
    if is_one_market_file(data):
        return "one_market"
    return "wholesale" if "network" in data else "game"


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so partial files are removed on the way out."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cosim`` command; returns the exit status.

    Ctrl-C (SIGINT) and SIGTERM end the command with one line on standard
    error and status 130 or 143: a result directory being written is removed
    (the earlier one stays), pool workers are stopped, and what had finished —
    replication files, cached equilibria — is kept for the next run.
    """
    matplotlib.use("Agg")  # the command draws into files, never on a screen
    args = build_parser().parse_args(argv)
    progress.configure(quiet=args.quiet)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main else None
    try:
        return _dispatch(args)
    except (KeyboardInterrupt, Terminated) as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(
            f"cosim {args.command}: interrupted ({name}); no result written, "
            "finished replications and cached equilibria kept for the next run",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if name == "SIGTERM" else EXIT_INTERRUPTED
    except BrokenProcessPool:
        print(
            f"cosim {args.command}: a worker process died abruptly (killed by the system, "
            "e.g. out of memory); finished replications are kept: the same command resumes",
            file=sys.stderr,
        )
        return EXIT_WORKER_DIED
    except OutputDirectoryError as exc:
        print(f"cosim {args.command}: --out {exc}", file=sys.stderr)
    except StudyMismatchError as exc:
        print(f"cosim {args.command}: --work {exc}", file=sys.stderr)
    finally:
        if previous is not None:  # a caller's own handler (main() called from Python)
            signal.signal(signal.SIGTERM, previous)
    return EXIT_BAD_INPUT


def _dispatch(args: argparse.Namespace) -> int:
    """Load the scenario (reporting an invalid one) and run the sub-command."""
    for option in ("cache", "work"):  # directories the command keeps its files in
        given = getattr(args, option, None)
        if given is not None and Path(given).exists() and not Path(given).is_dir():
            message = f"cosim {args.command}: --{option} {given}: is a file, not a directory"
            print(message, file=sys.stderr)
            return EXIT_BAD_INPUT
    if getattr(args, "own_scenario_format", False):  # e.g. wholesale: loads its own file
        return args.handler(args)
    try:
        reads_any = args.command in ("validate", "run", "epsilon")
        kind = _scenario_format(args.scenario) if reads_any else "game"
        if kind == "one_market" and args.command == "run":
            return cmd_one_market_run(args)
        if kind == "one_market" and args.command == "epsilon":
            one_market = load_one_market_scenario(args.scenario)
            check_one_market_epsilon_limits(args, one_market)
            return cmd_epsilon(args, one_market)
        if kind == "wholesale" and args.command == "epsilon":
            print(
                f"cosim epsilon: {args.scenario}: a wholesale experiment has no households' "
                "law to measure (a GMFG or one-market scenario has)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        if kind != "game":
            if kind == "wholesale":
                sha256 = load_wholesale_scenario(args.scenario).sha256
            else:
                one_market = load_one_market_scenario(args.scenario)
                check_one_market_limits(args, one_market)  # what cosim run would need
                sha256 = one_market.sha256
            emit(args, {"valid": True, "file": args.scenario, "sha256": sha256}, ["OK"])
            return EXIT_OK
        loaded = load_scenario(args.scenario)
        check_limits(args, loaded)  # memory and time, before any work
    except ScenarioError as exc:
        return report_invalid(args, exc)
    return args.handler(args, loaded)


if __name__ == "__main__":
    sys.exit(main())
