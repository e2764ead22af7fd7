"""Figures of a one-market run (PNG files).

- ``lmp.png``: the LMP at each CoC's bus by hour of day — every day of the
  run (thin) and the outer fixed point's expected day (thick);
- ``imports.png``: each CoC's import by hour, the run's days and the fixed point's;
- ``storage.png``: the aggregators' total storage power by hour and their
  mean SoE, one line per day;
- ``fixed_point.png``: the outer fixed point's residuals per iteration;
- ``comparison.png`` (with ``[compare]``): the LMP averaged over the run's days
  and the CoCs' buses by hour, the IMV and the ex-post cost of every variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from cosim.studies.one_market import OneMarketComparison, OneMarketOutcome

__all__ = ["comparison_figure", "run_figures"]

#: How the comparison figure names each variant.
VARIANT_LABELS = {
    "as_given": "as given",
    "no_flexibility": "households inflexible",
    "no_storage": "no aggregators' storage",
    "neither": "neither",
}


def _days(values: np.ndarray, per_day: int) -> np.ndarray:
    return values.reshape(-1, per_day)


def run_figures(outcome: OneMarketOutcome, folder: Path) -> None:
    """Write the figures of the module docstring into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    eq, rec = outcome.equilibrium, outcome.run.record
    market = eq.market
    names = market.network.buses
    per_day = market.intervals
    hours = np.arange(per_day) * market.interval_h
    buses = [m.bus for m in market.cocs]
    for file, values, expected, label in (
        ("lmp.png", rec.lmp[:, buses], eq.lmp[:, buses], "LMP [$/MWh]"),
        ("imports.png", rec.imports_mw, eq.imports_mw.T, "import [MW]"),
    ):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for c, member in enumerate(market.cocs):
            colour = f"C{c % 10}"
            for day in _days(values[:, c], per_day):
                ax.plot(hours, day, color=colour, lw=0.5, alpha=0.3)
            ax.plot(hours, expected[:, c], color=colour, lw=2.0, label=names[member.bus])
        ax.set(xlabel="hour of day", ylabel=label, title="run's days (thin), fixed point (thick)")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(folder / file, dpi=120)
        plt.close(fig)
    if rec.storage_mw.shape[1]:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for day in _days(rec.storage_mw.sum(axis=1), per_day):
            axes[0].plot(hours, day, color="C0", lw=0.6, alpha=0.4)
        axes[0].plot(hours, eq.storage_mw.sum(axis=0), color="k", lw=2.0, label="fixed point")
        axes[0].set(xlabel="hour of day", ylabel="storage power [MW, + charging]")
        axes[0].legend()
        for day in _days(rec.soe.mean(axis=1), per_day):
            axes[1].plot(hours, day, color="C1", lw=0.6, alpha=0.4)
        axes[1].set(xlabel="hour of day", ylabel="mean SoE [fraction]")
        fig.tight_layout()
        fig.savefig(folder / "storage.png", dpi=120)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    history = eq.history
    for key, label in (
        ("import_residual_mw", "CoC imports [MW]"),
        ("storage_residual_mw", "storage [MW]"),
        ("price_residual", "LMP move [$/MWh]"),
    ):
        ax.semilogy([h[key] + 1e-12 for h in history], label=label)
    ax.set(xlabel="outer iteration", ylabel="residual", title="outer fixed point")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "fixed_point.png", dpi=120)
    plt.close(fig)


def comparison_figure(comparison: OneMarketComparison, path: Path) -> None:
    """The variants side by side, on log scales (a scarcity interval is priced at the
    value of lost load): mean LMP by hour at the CoCs' buses; IMV; ex-post cost over
    every interval and over the intervals scarce in no run (paired)."""
    table = comparison.table
    labels = [VARIANT_LABELS[v] for v in table["variant"]]
    colours = [f"C{i}" for i in range(len(table))]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for i, outcome in enumerate(comparison.outcomes.values()):
        market, rec = outcome.equilibrium.market, outcome.run.record
        buses = [m.bus for m in market.cocs]
        daily = rec.lmp[:, buses].mean(axis=1).reshape(-1, market.intervals).mean(axis=0)
        hours = np.arange(market.intervals + 1) * market.interval_h
        axes[0].step(hours, np.append(daily, daily[-1]), where="post", color=colours[i])
    axes[0].set(xlabel="hour of day", ylabel="LMP [$/MWh]", yscale="log", xticks=range(0, 25, 4))
    axes[0].set_title("mean LMP at the CoCs' buses")
    axes[1].bar(labels, table["imv_mean_over_buses"], color=colours)
    axes[1].set(ylabel="IMV [$/MWh]", yscale="log", title="IMV, mean over buses")
    x = np.arange(len(table))
    axes[2].bar(x - 0.2, table["ex_post_cost"] / 1e6, 0.4, color=colours, label="every interval")
    axes[2].bar(
        x + 0.2, table["ex_post_cost_paired"] / 1e6, 0.4, color=colours, hatch="//", alpha=0.5,
        label="intervals scarce in no run",
    )  # fmt: skip
    axes[2].set(ylabel="ex-post cost [M$]", yscale="log", title="ex-post cost of the run")
    axes[2].set_xticks(x, labels)
    axes[2].legend(fontsize="small")
    for ax in axes[1:]:
        ax.tick_params(axis="x", labelrotation=20, labelsize="small")
    fig.legend(
        [plt.Line2D([], [], color=c) for c in colours], labels, loc="upper center", ncol=4,
        fontsize="small", frameon=False,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
