"""What one deviating household faces: the others' samples, its bill, its own paths (SPEC §7).

The ε_N bounds (:mod:`cosim.studies.bracket`, :mod:`cosim.studies.clairvoyant`)
evaluate a deviator's cost exactly in the others — whose per-step cluster
means come from samples of the finite game, :class:`OthersSamples` — and by
Monte Carlo in its own paths, simulated by the engine (:func:`own_paths`). A
sample's bill as a function of the deviator's controlled exchange is tabulated
once on the exchange grid (:func:`bill_tables`) and read at any number of
copies' exchanges (:class:`OnGrid`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cosim.studies.deviation import DeviationSimulation
from cosim.studies.joint_deviation import cluster_stage_price, sampled_grid_price
from market.clearing import clear_shifted
from market.pricing import Mode, mode_weights
from models.battery import grid_power
from models.feedback import FeedbackLaw
from models.game import Game

__all__ = [
    "CHUNK",
    "EXCHANGE_SPACING_KWH",
    "OnGrid",
    "OthersSamples",
    "OwnPaths",
    "bill",
    "bill_tables",
    "exchange_grid",
    "others_samples",
    "own_paths",
    "own_zero_prices",
    "owner_weight",
    "subset",
    "typed_game",
]

#: Spacing of the controlled-exchange grid the bills are tabulated on [kWh].
EXCHANGE_SPACING_KWH = 0.01

# --------------------------------------------------------------------------- the others


@dataclass(frozen=True)
class OthersSamples:
    """What the deviator of one cluster faces, per replication ``s`` and step ``k``."""

    m: np.ndarray
    """The clusters' means with the deviator's own exchange taken out, ``(S, K, M)`` [kW]."""
    exo: np.ndarray
    """The deviator's own base load − PV in that replication, ``(S, K)`` [kWh]."""
    grid_price: np.ndarray | None
    """The realised grid price with a wholesale link, ``(S, K)``, else ``None``."""


def others_samples(
    game: Game, samples: pd.DataFrame, p: int, households: int, has_ev: bool
) -> OthersSamples:
    """Cluster ``p``'s rows of :class:`~cosim.studies.epsilon.SampleOthers`, deviator of one type.

    The replications whose deviator owned an EV (or not, per ``has_ev``) — the
    others then hold one EV fewer (or more) — or every replication when fewer
    than two match.
    """
    rows = samples[samples["cluster"] == p]
    typed = rows[rows["has_ev"] == has_ev]
    if typed["replication"].nunique() >= 2:
        rows = typed
    rows = rows.sort_values(["replication", "step"], kind="stable")
    reps, steps = rows["replication"].nunique(), game.steps
    m = rows[[f"m_{q}" for q in range(game.n_clusters)]].to_numpy().reshape(reps, steps, -1)
    own = rows["own_kwh"].to_numpy().reshape(reps, steps)
    m = m.copy()
    m[..., p] -= own / (households * game.dt_h)
    exo = rows["own_exo_kwh"].to_numpy().reshape(reps, steps)
    grid = None
    if sampled_grid_price(game, 0, rows) is not None:
        grid = rows["p_grid"].to_numpy().reshape(reps, steps)
    return OthersSamples(m, exo, grid)


def exchange_grid(game: Game) -> np.ndarray:
    """Every controlled exchange a household can make in one step, on a 0.01 kWh grid [kWh]."""
    hh, dt = game.config.household, game.dt_h
    lo = dt * (grid_power(game.ess.battery, -1.0) + grid_power(game.ev.battery, -1.0))
    ctrl = 2.0 * hh.controllable.duty * hh.controllable.power_kw
    hi = dt * (
        grid_power(game.ess.battery, 1.0)
        + grid_power(game.ev.battery, 1.0)
        + hh.shiftable.power_kw
        + ctrl
    )
    h = EXCHANGE_SPACING_KWH
    return lo - h + h * np.arange(int(np.ceil((hi - lo) / h)) + 3)


def bill(
    game: Game, mode: Mode, p: int, households: int, m: np.ndarray, total: np.ndarray,
    grid_price: np.ndarray | None, k: int,
) -> np.ndarray:  # fmt: skip
    """``total·π_p(k; m + total/(N_p Δt))`` for samples ``m`` ``(S, M)`` and exchanges
    ``total`` ``(S, X)`` [kWh]: the deviator's bill with its own term in the price [$]."""
    p_g = float(game.grid_price[k]) if grid_price is None else grid_price[:, None]
    w = mode_weights(mode, game.config.prices.weights, game.step_hours)[k]
    shift = total / (households * game.dt_h)
    return total * clear_shifted(game.clearing, m.T, shift, p_g, w, cluster=p)


def bill_tables(
    game: Game, mode: Mode, p: int, households: int, others: OthersSamples, x: np.ndarray
) -> np.ndarray:
    """``Φ`` ``(S, K, X)``: per sample, the deviator's bill at controlled exchanges ``x``,
    ``(x_s^exo + x)·π_p(k; m_s^{−i} + (x_s^exo + x)/(N_p Δt))`` [$]."""
    s_count, k_steps, _ = others.m.shape
    phi = np.empty((s_count, k_steps, len(x)))
    for k in range(k_steps):
        grid = None if others.grid_price is None else others.grid_price[:, k]
        total = others.exo[:, k, None] + x[None, :]
        phi[:, k] = bill(game, mode, p, households, others.m[:, k], total, grid, k)
    return phi


# --------------------------------------------------------------------------- own paths


@dataclass(frozen=True)
class OwnPaths:
    """Independent households' own paths under one law: what their bills need."""

    controlled: np.ndarray
    """Exchange of every device but base load − PV per step, ``(n, K)`` [kWh]."""
    private: np.ndarray
    """Day's degradation, discomfort, shortfall and penalties, ``(n,)`` [$]."""
    cluster: np.ndarray
    has_ev: np.ndarray


def own_paths(game: Game, law: FeedbackLaw, mode: Mode, copies: int, seed: int) -> OwnPaths:
    """``copies`` households per cluster applying ``law`` for a day, by the engine.

    Their prices are irrelevant (a feedback law reads no price), so they are
    independent copies of one deviator; the random numbers are keyed by
    household and step, so two laws run on the same ``seed`` share every draw
    (common random numbers).
    """
    hh = np.full(game.n_clusters, copies)
    sim = DeviationSimulation(game, law, mode, hh, seed=seed, watch=np.arange(int(hh.sum())))
    sim.run()
    total = np.array(sim.watch_total)
    exo = np.array(sim.watch_exo)
    return OwnPaths(
        (total - exo).T.copy(),
        sim.rec.private[0].copy(),
        sim.population.cluster.copy(),
        sim.population.has_ev.astype(bool),
    )


def typed_game(game: Game, has_ev: bool) -> Game:
    """``game`` whose households all own an EV (or none do): one deviator type's costs."""
    share = np.full(game.n_clusters, 1.0 if has_ev else 0.0)
    return replace(game, clusters=replace(game.clusters, ev_share=share))


def owner_weight(game: Game, households: int, p: int) -> float:
    """Probability that cluster ``p``'s deviator owns an EV: the finite population's share."""
    return round(float(game.clusters.ev_share[p]) * households) / households


#: Samples per chunk when the bill tables are evaluated.
CHUNK = 32


@dataclass(frozen=True)
class OnGrid:
    """Exchanges ``c`` ``(n, K)`` located on the uniform exchange grid ``x``: a bill at
    ``c`` is read by linear interpolation of its table on ``x`` (0.01 kWh apart, where the
    bill is smooth), so any number of copies costs one table per sample."""

    index: np.ndarray
    """Left grid point of each exchange, ``(n, K)``."""
    weight: np.ndarray
    """Weight of the right grid point, ``(n, K)``."""
    size: int
    """Grid points."""

    @classmethod
    def locate(cls, x: np.ndarray, c: np.ndarray) -> OnGrid:
        t = np.clip((c - x[0]) / (x[1] - x[0]), 0.0, len(x) - 1.0 - 1e-9)
        index = np.floor(t).astype(np.int64)
        return cls(index, t - index, len(x))

    def histogram(self) -> np.ndarray:
        """The copies' share at each grid point per step, ``(K, X)``: ``E_i t(c_ik) =
        Σ_x t(x)·h_k(x)`` for any table ``t``."""
        n, k_steps = self.index.shape
        out = np.zeros((k_steps, self.size))
        for k in range(k_steps):
            out[k] += np.bincount(self.index[:, k], 1.0 - self.weight[:, k], self.size)
            out[k] += np.bincount(self.index[:, k] + 1, self.weight[:, k], self.size)
        return out / n

    def values(self, table: np.ndarray) -> np.ndarray:
        """``Σ_k t_k(c_ik)`` per copy for tables ``t`` ``(K, X)``, ``(n,)``."""
        k = np.arange(table.shape[0])[None, :]
        left, right = table[k, self.index], table[k, self.index + 1]
        return (left + self.weight * (right - left)).sum(axis=1)


def subset(others: OthersSamples, rows: slice) -> OthersSamples:
    """The samples ``rows`` of ``others``."""
    grid = None if others.grid_price is None else others.grid_price[rows]
    return OthersSamples(others.m[rows], others.exo[rows], grid)


def own_zero_prices(game: Game, mode: Mode, p: int, others: OthersSamples) -> np.ndarray:
    """``π_p(k; m_s^{−i})``, ``(S, K)``: each sample's price, the deviator's exchange at zero."""
    out = np.empty(others.exo.shape)
    for k in range(game.steps):
        p_g = None if others.grid_price is None else others.grid_price[:, k]
        out[:, k] = cluster_stage_price(game, mode, k, p, others.m[:, k], p_g)
    return out
