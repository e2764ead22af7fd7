"""``cosim wholesale``: seed 003's experiment (:mod:`cosim.studies.wholesale`), figures, tables.

The command loads its own scenario format (a ``[network]`` table, storage
aggregators and their learning), applies the options that override it, runs
the experiment with a progress bar, and writes the result directory
atomically: the tables, ``records.npz``, ``experiment.json``, the figures and
a manifest.
"""

from __future__ import annotations

import argparse

from cosim.io import wholesale_figures
from cosim.io.results import atomic_directory, write_json
from cosim.progress import activity
from cosim.progress import bar as progress_bar
from cosim.scenario.game import ScenarioError
from cosim.scenario.wholesale import load_wholesale_scenario, with_overrides
from cosim.studies.wholesale import run_experiment, wholesale_manifest
from cosim_cli.arguments import counted
from cosim_cli.output import (
    EXIT_OK,
    add_out_arguments,
    add_quiet_argument,
    emit,
    report_invalid,
    result_directory,
)


def _lines(summary: dict) -> list[str]:
    out = [
        f"{summary['scenario']}: {summary['seeds']} seeds × {summary['days']} days "
        f"({summary['seconds']:.1f} s)"
    ]
    means = summary["mean_over_seeds"]
    out.append(f"{'mean over seeds':<38}" + "".join(f"{run:>18}" for run in means))
    for key in (
        "imv_last_days",
        "ex_post_cost_last_days",
        "ex_post_cost_total",
        "day_change_first",
        "day_change_last",
        "mean_hub_price",
        "scarcity_steps",
        "shed_mwh",
        "scarcity_cost_share",
        "imv_last_days_excl_scarcity",
        "ex_post_cost_last_days_excl_scarcity",
        "ex_post_cost_total_excl_scarcity",
    ):
        if key in means["without_storage"]:
            out.append(f"{key:<38}" + "".join(f"{means[run][key]:>18.4g}" for run in means))
    out += _scarcity_lines(summary)
    if "learners" in summary:
        ln = summary["learners"]
        rl = "PPO" if summary["learner"] == "ppo" else "Q-learning"
        out.append(
            f"policy value ($/MWh capacity): DP {ln['dp_value']:.3f}, {rl} {ln['rl_value']:.3f} "
            f"({100 * ln['rl_share_of_optimum']:.1f} % of optimum)"
        )
        out += [f"  {k}: {'yes' if v else 'NO'}" for k, v in summary["checks"].items()]
    return out


def _scarcity_lines(summary: dict) -> list[str]:
    """Per seed and run: scarcity steps, shed energy, cost share, and metrics without them."""
    if "scarcity_steps" not in summary["mean_over_seeds"]["without_storage"]:
        return []  # a result written before the scarcity figures
    out = [
        f"scarcity step: {summary['scarcity']['step']}",
        "per seed (excl.: without the seed's scarcity steps of either run):",
        f"{'seed':>4} {'run':<16}{'steps':>6}{'last d':>7}{'shed MWh':>10}{'cost %':>8}"
        f"{'IMV last d':>11}{'excl.':>9}{'cost last d $':>15}{'excl.':>15}"
        f"{'cost total $':>15}{'excl.':>15}",
    ]
    for seed in summary["per_seed"]:
        for run in ("with_storage", "without_storage"):
            if run not in seed:
                continue
            r = seed[run]
            out.append(
                f"{seed['seed_index']:>4} {run:<16}{r['scarcity_steps']:>6}"
                f"{r['scarcity_steps_last_days']:>7}{r['shed_mwh']:>10.1f}"
                f"{100 * r['scarcity_cost_share']:>8.2f}"
                f"{r['imv_last_days']:>11.3f}{r['imv_last_days_excl_scarcity']:>9.3f}"
                f"{r['ex_post_cost_last_days']:>15,.0f}"
                f"{r['ex_post_cost_last_days_excl_scarcity']:>15,.0f}"
                f"{r['ex_post_cost_total']:>15,.0f}{r['ex_post_cost_total_excl_scarcity']:>15,.0f}"
            )
    return out


def cmd_wholesale(args: argparse.Namespace) -> int:
    """``cosim wholesale``: seed 003's experiment with figures and tables."""
    try:
        loaded = load_wholesale_scenario(args.scenario)
        loaded = with_overrides(
            loaded,
            days=args.days,
            seeds=args.seeds,
            learner=args.learner,
            network_file=args.network,
        )
    except ScenarioError as exc:
        return report_invalid(args, exc)
    s = loaded.scenario
    storage = not args.no_storage
    runs_per_seed = 2 if storage else 1
    total = s.seeds * s.time.days * s.slots * runs_per_seed
    suffix = "-no-storage" if not storage else f"-{s.learning.learner}"
    out = result_directory(args, f"results/{s.scenario.name}{suffix}")
    bar = progress_bar(total, "wholesale", unit="step")

    def update(_: int, residuals: dict) -> None:
        bar.update(1)
        bar.set_postfix(hub=f"{residuals['hub_price']:.2f}", refresh=False)

    try:
        with activity(f"wholesale experiment on {s.scenario.name}: {s.seeds} seed(s)"):
            result = run_experiment(loaded, storage=storage, on_step=update)
    finally:
        bar.close()
    summary = result.summary()
    with atomic_directory(out) as tmp:
        result.save(tmp)
        wholesale_figures.experiment_figures(result, tmp / "figures")
        command = "wholesale" + (" --no-storage" if not storage else "")
        write_json(tmp / "manifest.json", wholesale_manifest(loaded, command, {"summary": summary}))
    summary["out"] = str(out)
    emit(args, summary, [*_lines(summary), f"results: {out}"])
    return EXIT_OK


def add_wholesale_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cosim wholesale`` on the ``cosim`` sub-parsers."""
    help_text = "seed 003's wholesale market: aggregators' learning, LMPs, IMV and ex-post cost"
    p = sub.add_parser("wholesale", help=help_text, description=help_text)
    p.add_argument("scenario", help="wholesale scenario file (TOML), e.g. scenarios/oahu37.toml")
    p.add_argument(
        "--days",
        type=counted(2, "the settling check compares the first and the last days"),
        help="days to simulate (overrides time.days)",
    )
    p.add_argument("--seeds", type=counted(1), help="replications (overrides seeds)")
    p.add_argument(
        "--learner",
        choices=["dp", "rl", "ppo"],
        help="overrides learning.learner: dp, rl (Q-learning) or ppo (the [rl] extra)",
    )
    p.add_argument("--no-storage", action="store_true", help="only the run without storage")
    p.add_argument("--network", help="MATPOWER case file (overrides network.file)")
    add_out_arguments(p, "results/NAME-LEARNER")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_quiet_argument(p)
    p.set_defaults(handler=cmd_wholesale, own_scenario_format=True)
    return p
