"""Figures of a wholesale experiment, after Figs. 2–5 of seed 003 (PNG files).

- ``hub_prices.png`` (Fig. 2): the hub price over the whole run, with and
  without storage, and the daily price profile of every day (colour = day).
- ``storage.png`` (Fig. 3): mean SoE and mean action per slot of the day,
  one line per day (colour = day), over all aggregators.
- ``capacity_factors.png`` (Fig. 4): the solar and wind capacity factors
  drawn for every step, by slot of the day.
- ``imv_cost.png`` (Fig. 5): IMV and ex-post cost over the last days, with vs
  without storage, one dot per seed and the mean; below, the same with the
  scarcity steps left out.

Figures 2–4 show the first replication.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from cosim.studies.wholesale import ExperimentResult

__all__ = ["experiment_figures"]


def _by_day(values: np.ndarray, slots: int) -> np.ndarray:
    return values[: values.size - values.size % slots].reshape(-1, slots)


def _day_lines(ax: plt.Axes, daily: np.ndarray, hours: np.ndarray, cmap: str = "viridis") -> None:
    colours = plt.get_cmap(cmap)(np.linspace(0.0, 1.0, max(daily.shape[0], 2)))
    for d, row in enumerate(daily):
        ax.plot(hours, row, color=colours[d], lw=0.8, alpha=0.8)
    norm = matplotlib.colors.Normalize(1, max(daily.shape[0], 2))
    plt.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="day")


def plot_hub_prices(result: ExperimentResult, path: Path) -> None:
    """Fig. 2: hub prices over the run and per slot of each day."""
    s = result.scenario
    rep = result.replications[0]
    slots, dt = s.slots, s.time.step_h
    hours = np.arange(slots) * dt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    days = np.arange(rep.without_storage.hub_price.size) * dt / 24.0
    axes[0].plot(days, rep.without_storage.hub_price, lw=0.7, label="without storage")
    if rep.with_storage is not None:
        axes[0].plot(days, rep.with_storage.hub_price, lw=0.7, label="with storage")
    axes[0].set(xlabel="day", ylabel="hub price [$/MWh]", title="(a) hub price over the run")
    axes[0].legend()
    shown = rep.with_storage if rep.with_storage is not None else rep.without_storage
    _day_lines(axes[1], _by_day(shown.hub_price, slots), hours)
    label = "with storage" if rep.with_storage is not None else "without storage"
    axes[1].set(
        xlabel="hour of day", ylabel="hub price [$/MWh]", title=f"(b) daily profiles, {label}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_storage(result: ExperimentResult, path: Path) -> None:
    """Fig. 3: mean SoE and actions per slot, one line per day."""
    s = result.scenario
    rec = result.replications[0].with_storage
    if rec is None or rec.soe.shape[1] == 0:
        return
    slots, dt = s.slots, s.time.step_h
    hours = np.arange(slots) * dt
    nominal = np.clip(result.replications[0].network.nominal_demand_mw, 0.0, None)
    w = nominal[aggregator_buses(result)]  # ∝ prosumers: a capacity-weighted mean
    w = w / w.sum()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    _day_lines(axes[0], _by_day(rec.soe[:-1] @ w, slots), hours)
    axes[0].set(xlabel="hour of day", ylabel="mean SoE [fraction]", title="(a) storage level")
    _day_lines(axes[1], 100.0 * _by_day(rec.action @ w, slots), hours)
    axes[1].axhline(0.0, color="k", lw=0.5)
    axes[1].set(
        xlabel="hour of day",
        ylabel="mean action [% of capacity, + charge]",
        title="(b) charging / discharging",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def aggregator_buses(result: ExperimentResult) -> np.ndarray:
    """Bus index of each aggregator (buses with prosumers)."""
    s = result.scenario
    nominal = np.clip(result.replications[0].network.nominal_demand_mw, 0.0, None)
    return np.flatnonzero(np.rint(s.prosumers.per_mw * nominal) > 0)


def plot_capacity_factors(result: ExperimentResult, path: Path) -> None:
    """Fig. 4: solar and wind capacity factors per step, by slot of the day."""
    s = result.scenario
    rec = result.replications[0].without_storage
    slots, dt = s.slots, s.time.step_h
    hours = (np.arange(rec.solar_cf.size) % slots) * dt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, cf, name in ((axes[0], rec.solar_cf, "solar"), (axes[1], rec.wind_cf, "wind")):
        ax.scatter(hours, cf, s=4, alpha=0.4)
        ax.plot(np.arange(slots) * dt, _by_day(cf, slots).mean(axis=0), color="k", label="mean")
        ax.set(xlabel="hour of day", ylabel="capacity factor", title=name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_imv_cost(result: ExperimentResult, path: Path) -> None:
    """Fig. 5: IMV and ex-post cost of the last days, with vs without storage, per seed.

    A second row shows both with every step that is a scarcity step in either
    run of the seed left out (paired; :func:`market.metrics.scarcity_metrics`),
    when the result has those figures.
    """
    s = result.scenario
    runs = ["without_storage", "with_storage"] if result.storage else ["without_storage"]
    first = result.replications[0].summary["without_storage"]
    rows = [("", "all steps")]
    if "imv_last_days_excl_scarcity" in first:
        rows.append(("_excl_scarcity", "scarcity steps dropped"))
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 4 * len(rows)), squeeze=False)
    for (suffix, row_label), row in zip(rows, axes, strict=True):
        for ax, key, label in (
            (row[0], "imv_last_days", "IMV [$/MWh]"),
            (row[1], "ex_post_cost_last_days", "ex-post cost [$]"),
        ):
            for i, run in enumerate(runs):
                values = np.array([r.summary[run][key + suffix] for r in result.replications])
                ax.bar(i, values.mean(), width=0.5, alpha=0.3, color=f"C{i}")
                ax.scatter(np.full(values.size, i), values, s=18, alpha=0.8, color=f"C{i}")
            ax.set_xticks(range(len(runs)), [r.replace("_", " ") for r in runs])
            name = label.split(" [")[0]
            ax.set(ylabel=label, title=f"{name}, last {s.metrics.last_days} days, {row_label}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def experiment_figures(result: ExperimentResult, folder: Path) -> None:
    """Write Figs. 2–5 of an experiment into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    plot_hub_prices(result, folder / "hub_prices.png")
    plot_storage(result, folder / "storage.png")
    plot_capacity_factors(result, folder / "capacity_factors.png")
    plot_imv_cost(result, folder / "imv_cost.png")
