"""Figures of a solved equilibrium (after Figs. 5–7 of Aziz et al.) and of a finite-N run (PNG).

Importing this module loads pyplot; the library imports it only in the functions that draw.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from models.coupling import WholesaleLink
from models.equilibrium import EquilibriumResult
from models.game import game_rng

#: Hours of day at which Fig. 5 shows the population's densities.
DENSITY_HOURS = (6.0, 12.0, 18.0)


def _step(result: EquilibriumResult, hour: float) -> int:
    return min(round(hour / result.game.dt_h), result.game.steps - 1)


def _exogenous_samples(
    result: EquilibriumResult, hour: float, n: int = 40_000
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of (base load, PV) [kW] of a random household at ``hour`` (stream 3 of the seed)."""
    game = result.game
    hh = game.config.household
    rng = game_rng(game.config.seed, 3)
    cluster = rng.choice(game.n_clusters, size=n, p=game.clusters.shares)
    k = _step(result, hour)
    z = game.clusters.load_kwh[cluster] * game.base_per_kwh[k]
    z = z * np.maximum(0.0, 1.0 + hh.load.noise * rng.standard_normal(n))
    pv = game.clusters.pv_kwp[cluster] * game.pv_per_kwp[k]
    pv = pv * np.maximum(0.0, 1.0 + hh.pv.noise * rng.standard_normal(n))
    return z, pv


def plot_densities(
    result: EquilibriumResult, path: Path, hours: tuple[float, ...] = DENSITY_HOURS
) -> None:
    """Fig. 5: PDFs of base load, PV, ESS SoE and EV SoE over the population at ``hours``."""
    game = result.game
    shares = game.clusters.shares
    ev_weight = shares * game.clusters.ev_share
    ess_density, ev_density, ev_away_density = _densities(result)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for hour in hours:
        k = _step(result, hour)
        z, pv = _exogenous_samples(result, hour)
        label = f"{hour:04.1f} h"
        axes[0, 0].hist(z, bins=80, density=True, histtype="step", label=label)
        if np.any(pv > 0):
            axes[0, 1].hist(pv[pv > 0], bins=80, density=True, histtype="step", label=label)
        ess = shares @ ess_density[:, k, :] / game.ess.spacing
        axes[1, 0].plot(game.ess.soe, ess, label=label)
        ev = ev_weight @ (ev_density[:, k, :] + ev_away_density[:, k, :])
        axes[1, 1].plot(game.ev.soe, ev / (ev_weight.sum() * game.ev.spacing), label=label)
    titles = (
        ("Base load [kW]", "PV output when producing [kW]"),
        ("ESS state of energy [kWh]", "EV state of energy [kWh]"),
    )
    for row in range(2):
        for col in range(2):
            ax = axes[row, col]
            ax.set_xlabel(titles[row][col])
            ax.set_ylabel("density")
            ax.legend(fontsize=8)
    fig.suptitle(f"Population densities at equilibrium ({result.mode} mode)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_prices(result: EquilibriumResult, path: Path) -> None:
    """Fig. 6: equilibrium ``p_RPC`` of every cluster and ``p_CoC`` over the day."""
    game = result.game
    hours = game.step_hours
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for p in range(game.n_clusters):
        ax.plot(hours, result.prices.rpc[p], color="tab:blue", alpha=0.15, lw=0.8)
    ax.plot([], [], color="tab:blue", alpha=0.5, label="$p^{RPC}_p$ (each cluster)")
    ax.plot(hours, result.prices.coc.mean(axis=0), color="tab:red", lw=2.2, label="$p^{CoC}$")
    ax.plot(hours, game.grid_price, color="k", ls="--", lw=1.2, label="$p^G$")
    ax.set_xlabel("hour of day")
    ax.set_ylabel("price [$/kWh]")
    ax.set_xlim(0, hours[-1] + game.dt_h)
    ax.legend()
    ax.set_title(f"Equilibrium prices ({result.mode} mode)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_generic_agent(result: EquilibriumResult, path: Path) -> None:
    """Fig. 7: expected energy profile of the generic agent's household."""
    game = result.game
    p = game.generic_cluster
    hours = game.step_hours
    flow = result.flow
    pv = game.clusters.pv_kwp[p] * game.pv_per_kwp
    base = flow.exogenous_kw[p] + pv
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.plot(hours, -pv, label="PV (−)", color="gold")
    top.plot(hours, base, label="base load")
    top.plot(hours, flow.controllable_kw[p], label="controllable load")
    top.plot(hours, flow.shiftable_kw[p], label="shiftable load")
    top.plot(hours, flow.ess_kw[p], label="ESS (grid side)")
    top.plot(hours, flow.ev_kw[p], label="EV (grid side, × share)")
    top.plot(hours, flow.net_kw[p], color="k", lw=2, label="net exchange ξ")
    top.axhline(0, color="grey", lw=0.5)
    top.set_ylabel("expected power [kW]")
    top.legend(fontsize=8, ncol=4)
    top.set_title(
        f"Generic agent: cluster {p} ({result.mode} mode), expected daily cost "
        f"${result.cost[p]:.2f}"
    )
    t = np.append(hours, hours[-1] + game.dt_h)
    ess_density, ev_density, ev_away_density = _densities(result)
    ess_mean = ess_density[p] @ game.ess.soe
    connected = ev_density[p].sum(axis=1)
    ev_mean = (ev_density[p] + ev_away_density[p]) @ game.ev.soe
    bottom.plot(t, ess_mean, label="ESS mean SoE [kWh]")
    bottom.plot(t, ev_mean, label="EV mean SoE [kWh]")
    bottom.set_ylabel("state of energy [kWh]")
    bottom.set_xlabel("hour of day")
    twin = bottom.twinx()
    twin.plot(t, connected, color="grey", ls=":", label="EV connected (prob.)")
    twin.step(
        hours,
        result.prices.stage[p] / np.max(game.grid_price),
        where="post",
        color="tab:red",
        alpha=0.6,
        label="π / p_G",
    )
    twin.set_ylabel("probability / relative price")
    lines = bottom.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    bottom.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def equilibrium_figures(result: EquilibriumResult, directory: Path) -> list[Path]:
    """Write Figs. 5–7 of the equilibrium into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "densities.png", directory / "prices.png", directory / "generic_agent.png"]
    plot_densities(result, paths[0])
    plot_prices(result, paths[1])
    plot_generic_agent(result, paths[2])
    return paths


def plot_mode_costs(table, path: Path) -> None:
    """Bar chart of the three modes' daily cost: generic agent and population mean."""
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["generic_cost"], width=0.4, label="generic agent")
    ax.bar(x + 0.2, table["mean_cost"], width=0.4, label="population mean")
    ax.set_xticks(x, table["mode"])
    ax.set_ylabel("expected daily cost per household [$]")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_realised_prices(sim_aggregates, result: EquilibriumResult, path: Path) -> None:
    """Realised finite-N stage prices against the mean-field ones (generic cluster and spread)."""
    game = result.game
    p = game.generic_cluster
    realised = sim_aggregates.pivot(index="step", columns="cluster", values="p_stage").to_numpy()
    hours = np.arange(realised.shape[0]) * game.dt_h
    mf = np.tile(result.prices.stage, (1, realised.shape[0] // game.steps))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(hours, mf[p], color="k", lw=2, label=f"mean field, cluster {p}")
    ax.plot(hours, realised[:, p], color="tab:red", lw=1, label=f"realised, cluster {p}")
    gap = realised - mf.T
    ax.fill_between(
        hours,
        mf[p] + gap.min(axis=1),
        mf[p] + gap.max(axis=1),
        color="tab:blue",
        alpha=0.2,
        label=f"cluster {p}'s mean field + the range of realised − mean field over all clusters",
    )
    ax.set_xlabel("hour")
    ax.set_ylabel("stage price π [$/kWh]")
    ax.legend(fontsize=8)
    ax.set_title(f"Finite-N prices vs the mean-field equilibrium ({result.mode} mode)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_household_costs(households, result: EquilibriumResult, path: Path) -> None:
    """Distribution of realised daily costs per household, with the mean-field expectation."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(
        households["cost"], bins=60, density=True, alpha=0.7, label="realised, per household-day"
    )
    ax.axvline(result.mean_cost, color="k", ls="--", label="mean-field expectation")
    ax.axvline(households["cost"].mean(), color="tab:red", label="realised mean")
    ax.set_xlabel("daily cost [$]")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lmp_and_cluster_prices(sim, result: EquilibriumResult, path: Path) -> None:
    """LMP at the households' bus (mean field and realised) against the clusters' prices.

    ``sim`` is a :class:`cosim.sim.simulation.SimulationResult` of a game with a
    wholesale link; prices in $/kWh, the LMP with the retail adder (``p_G``).
    """
    game = result.game
    link = _link(result)
    days = len(sim.wholesale) // game.steps
    hours = sim.wholesale["step"].to_numpy() * game.dt_h
    realised = sim.aggregates.pivot(index="step", columns="cluster", values="p_stage").to_numpy()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.fill_between(
        hours,
        realised.min(axis=1),
        realised.max(axis=1),
        color="tab:blue",
        alpha=0.2,
        label="clusters' stage prices, realised (range over clusters)",
    )
    ax.plot(
        hours,
        np.tile(result.prices.stage.mean(axis=0), days),
        color="tab:blue",
        lw=1.5,
        label="clusters' stage price, mean field (mean over clusters)",
    )
    ax.plot(
        hours,
        np.tile(game.grid_price, days),
        color="k",
        lw=2,
        label="p_G = E[LMP] + adder, mean field",
    )
    ax.plot(
        hours,
        sim.wholesale["p_grid"],
        color="tab:red",
        lw=1,
        label=f"p_G = LMP + adder, realised (bus {link.bus}: {link.network.buses[link.bus]})",
    )
    ax.set_xlabel("hour")
    ax.set_ylabel("price [$/kWh]")
    ax.set_title(f"Wholesale LMP at the households' bus and the cluster prices ({result.mode})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_system_load(sim, result: EquilibriumResult, path: Path) -> None:
    """The households' net import against the rest of the system's load [MW], realised."""
    w = sim.wholesale
    hours = w["step"].to_numpy() * result.game.dt_h
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(hours, w["other_load_mw"], color="k", lw=1.5, label="rest of the system's load")
    ax.plot(hours, w["generation_mw"], color="tab:green", lw=1, ls="--", label="generation")
    ax.set_xlabel("hour")
    ax.set_ylabel("system [MW]")
    twin = ax.twinx()
    twin.plot(hours, w["import_mw"], color="tab:red", lw=1.5, label="households' net import")
    twin.axhline(0.0, color="tab:red", lw=0.5, ls=":")
    twin.set_ylabel("households' net import [MW]", color="tab:red")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    ax.set_title(f"{_link(result).households:,} households against the system's load")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def simulation_figures(sim, result: EquilibriumResult, directory: Path) -> list[Path]:
    """Write the figures of a finite-N run of ``result``'s law into ``directory``.

    Realised prices and household costs against the mean field; with a
    wholesale link also the LMP and the system's load. ``sim`` is a
    :class:`cosim.sim.simulation.SimulationResult`. Returns the paths written.
    """
    directory.mkdir(exist_ok=True)
    paths = [directory / "realised_prices.png", directory / "household_costs.png"]
    plot_realised_prices(sim.aggregates, result, paths[0])
    plot_household_costs(sim.households, result, paths[1])
    if result.game.wholesale is not None:
        paths += [directory / "lmp.png", directory / "system_load.png"]
        plot_lmp_and_cluster_prices(sim, result, paths[2])
        plot_system_load(sim, result, paths[3])
    return paths


def _densities(result: EquilibriumResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ESS, EV (connected) and EV (away) densities ``(M, K+1, S)`` of an equilibrium."""
    flow = result.flow
    if flow.ess_density is None or flow.ev_density is None or flow.ev_away_density is None:
        raise ValueError("this equilibrium was kept without its densities: nothing to plot")
    return flow.ess_density, flow.ev_density, flow.ev_away_density


def _link(result: EquilibriumResult) -> WholesaleLink:
    """The game's wholesale link (the LMP figures need one)."""
    if result.game.wholesale is None:
        raise ValueError("this game has no [wholesale] link: no LMP to plot")
    return result.game.wholesale
