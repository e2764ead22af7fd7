"""Experiments on solved equilibria: the three-mode comparison (seed 000 §4.3.1), caching."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cosim.io.results import atomic_directory
from market.pricing import Mode
from models.archive import load_equilibrium, save_equilibrium
from models.config import GameConfig
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


#: Revision of the mean-field model and its solver: part of every game's hash, so
#: equilibria cached under an earlier one are never reused (2: EVs leave inside a step;
#: 3: the solver iterates on until the law itself meets the tolerances).
MODEL_REVISION = "3"


def game_hash(game: Game) -> str:
    """Hash of everything that determines a game's equilibria (not the scenario's name).

    With a wholesale link that includes the network itself — buses, lines,
    units and their costs — so an edited case file is never matched to a law
    solved on the old one.
    """
    fields = set(GameConfig.model_fields)
    payload = MODEL_REVISION + game.config.model_dump_json(include=fields)
    if game.wholesale is not None:  # the network as read (and costed), not just its file name
        payload += repr(game.wholesale.network)
    payload = payload.encode()
    return hashlib.sha256(payload).hexdigest()


def cached_equilibrium(
    game: Game, mode: Mode, cache: Path | None, solve: Callable[[Game, Mode], EquilibriumResult]
) -> tuple[EquilibriumResult, bool]:
    """The equilibrium of ``game`` in ``mode``: reloaded from ``cache`` when the hash matches.

    Returns the result and whether it came from the cache. A freshly solved
    equilibrium is saved into the cache (atomically) for the next run.
    """
    if cache is None:
        return solve(game, mode), False
    directory = cache / f"{game_hash(game)[:16]}-{mode}"
    if (directory / "equilibrium.npz").exists():
        return load_equilibrium(directory, game), True
    result = solve(game, mode)
    with atomic_directory(directory) as tmp:
        save_equilibrium(result, tmp)
    return result, False
