"""``cosim run`` on a one-market scenario: the outer fixed point, the finite-N run, the tables.

The scenario is recognised by its ``[[coc]]`` tables (:mod:`cosim.scenario.one_market`);
``cosim run`` hands it here instead of to the GMFG pipeline. The result
directory is written atomically: the tables (:mod:`cosim.studies.one_market`),
``summary.json``, figures and a manifest. A ``[compare]`` table adds the
counterfactual runs (same seed): their measures side by side in
``comparison.parquet`` and the summary, their tables in ``variants/<name>/``.
The exit status is 1 when any run's outer fixed point did not converge.
"""

from __future__ import annotations

import argparse
import json

from cosim.io import one_market_figures
from cosim.io.results import atomic_directory, manifest, write_json
from cosim.progress import activity
from cosim.progress import bar as progress_bar
from cosim.scenario.game import ScenarioError
from cosim.scenario.one_market import load_one_market_scenario
from cosim.studies.one_market import run_comparison
from cosim_cli.limits import check_one_market_limits
from cosim_cli.output import EXIT_NOT_CONVERGED, EXIT_OK, emit, report_invalid, result_directory


def _lines(summary: dict) -> list[str]:
    fp, run = summary["fixed_point"], summary["run"]
    last = fp["last"]
    state = f"converged ({fp['criterion']})" if fp["converged"] else "NOT converged"
    lines = [
        f"{summary['scenario']}: outer fixed point {state} in {fp['iterations']} iterations "
        f"(import residual {last.get('import_residual_mw', float('nan')):.3g} MW, storage "
        f"{last.get('storage_residual_mw', float('nan')):.3g} MW, LMP move "
        f"{last.get('price_residual', float('nan')):.3g} $/MWh)",
        f"finite-N run: {summary['days']} days, market interval {summary['market_interval_h']} h",
        "energy balance per interval (worst, MW): "
        + ", ".join(f"{k} {v:.2e}" for k, v in run["checks"].items()),
        f"mean LMP {run['mean_lmp']:.2f} $/MWh, IMV (mean over buses) "
        f"{run['imv_mean_over_buses']:.3f} $/MWh, ex-post cost {run['ex_post_cost']:,.0f} $, "
        f"shed {run['shed_mwh']:.2f} MWh",
        "cost per household-day by CoC ($): "
        + ", ".join(f"{x:.3f}" for x in run["coc_cost_per_household_day"]),
    ]
    rows = summary.get("comparison", [])
    if len(rows) > 1:
        lines.append(
            f"{'compared (paired, same seed)':<28} {'converged':>9} {'mean LMP':>9} "
            f"{'IMV':>7} {'IMV CoC':>8} {'ex-post M$':>11} {'paired M$':>11} {'scarce':>6} "
            f"{'$/hh-day':>9}"
        )
        for r in rows:
            lines.append(
                f"{r['variant']:<28} {r['converged']!s:>9} {r['mean_lmp']:>9.3f} "
                f"{r['imv_mean_over_buses']:>7.3f} {r['imv_coc_buses']:>8.3f} "
                f"{r['ex_post_cost'] / 1e6:>11.4f} {r['ex_post_cost_paired'] / 1e6:>11.4f} "
                f"{r['scarcity_intervals']:>6d} {r['household_cost_per_day']:>9.4f}"
            )
        paired = rows[0]["intervals_paired"]
        lines.append(f"paired M$: the {paired} intervals that are a scarcity interval in no run")
    return lines


def cmd_one_market_run(args: argparse.Namespace) -> int:
    """``cosim run`` on a one-market scenario."""
    try:
        loaded = load_one_market_scenario(args.scenario)
        check_one_market_limits(args, loaded)  # memory and time, before any work
    except ScenarioError as exc:
        return report_invalid(args, exc)
    s = loaded.scenario
    out = result_directory(args, f"results/{s.scenario.name}")
    bar = progress_bar(s.outer.max_iterations, "outer fixed point", unit="it")

    def on_variant(name: str) -> None:
        bar.reset()
        bar.set_description(f"outer fixed point ({name})")

    def on_iteration(_: int, residuals: dict) -> None:
        bar.update(1)
        worst = max(residuals["import_residual_mw"], residuals["storage_residual_mw"])
        bar.set_postfix(residual_mw=f"{worst:.3g}", refresh=False)

    try:
        runs = len(s.variants())
        label = f"one market {s.scenario.name}: {runs} run(s), each an outer fixed point"
        with activity(f"{label}, then {s.time.days} days"):
            comparison = run_comparison(loaded, on_variant, on_iteration=on_iteration)
    finally:
        bar.close()
    outcome = comparison.outcomes["as_given"]
    summary = outcome.summary()
    summary["converged_all"] = all(o.equilibrium.converged for o in comparison.outcomes.values())
    summary["comparison"] = json.loads(comparison.table.to_json(orient="records"))
    with atomic_directory(out) as tmp:
        outcome.save(tmp)
        one_market_figures.run_figures(outcome, tmp / "figures")
        if runs > 1:
            comparison.save(tmp)
            one_market_figures.comparison_figure(comparison, tmp / "figures" / "comparison.png")
        write_json(tmp / "summary.json", summary)
        write_json(tmp / "manifest.json", manifest(loaded, "run", {}))
    summary["out"] = str(out)
    emit(args, summary, [*_lines(summary), f"results: {out}"])
    return EXIT_OK if summary["converged_all"] else EXIT_NOT_CONVERGED
