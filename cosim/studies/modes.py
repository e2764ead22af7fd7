"""The three-mode comparison of solved equilibria (seed 000 §4.3.1)."""

from __future__ import annotations

import pandas as pd

from market.pricing import Mode
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.game import Game


def compare_modes(game: Game) -> dict[Mode, EquilibriumResult]:
    """Solve ``game`` in the stand-alone, RPC-only and CoC modes."""
    return {mode: solve_equilibrium(game, mode) for mode in (Mode.STANDALONE, Mode.RPC, Mode.COC)}


def mode_table(results: dict[Mode, EquilibriumResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The three-mode comparison of seed 000 §4.3.1: one row per mode, and per cluster."""
    base = results[Mode.STANDALONE]
    g = base.game.generic_cluster
    rows, per_cluster = [], []
    for mode, res in results.items():
        rows.append(
            {
                "mode": str(mode),
                "generic_cost": float(res.cost[g]),
                "mean_cost": res.mean_cost,
                "generic_reduction": float(1.0 - res.cost[g] / base.cost[g]),
                "mean_reduction": float(1.0 - res.mean_cost / base.mean_cost),
                "converged": res.converged,
                "iterations": res.iterations,
                "price_residual": res.price_residual,
                "exploitability": res.exploitability,
            }
        )
        per_cluster.append(
            pd.DataFrame(
                {
                    "mode": str(mode),
                    "cluster": range(res.game.n_clusters),
                    "cost": res.cost,
                    "reduction": 1.0 - res.cost / base.cost,
                    "pv_kwp": res.game.clusters.pv_kwp,
                    "ev_share": res.game.clusters.ev_share,
                    "net_kwh": res.game.dt_h * res.flow.net_kw.sum(axis=1),
                }
            )
        )
    return pd.DataFrame(rows), pd.concat(per_cluster, ignore_index=True)
