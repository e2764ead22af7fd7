"""The full-information deviation: an approximate ESS dynamic program (SPEC §7).

The deviator also sees its cluster's last cleared aggregate; the DP runs over
(SoE, bin of that aggregate), with the aggregate's dynamics taken from the
build samples (see :func:`ess_best_response_full`). A smaller class than the
local joint deviation: the gaps it measures are lower bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.studies.joint_deviation import cluster_stage_price, sampled_grid_price
from cosim.studies.law_under_test import LawUnderTest
from models import kernels
from models.battery import clipped_moves

#: Bins of the observed aggregate in the full-information DP.
FULL_BINS = 3
#: Controls of the full-information ESS DP (besides the law's own control at each point).
DEVIATION_CONTROLS = 81


def _ess_stage(
    law: LawUnderTest, at: pd.DataFrame, p: int, k: int, households: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate ESS controls, their per-sample stage costs and next SoEs at step ``k``.

    Returns ``u`` ``(S, U)`` (clipped to what the bounds allow), the stage cost
    per sample ``(S, U, n)`` — the deviator's bill with its own exchange in the
    price, minus the bill of its other devices alone (a constant of the
    sample), plus degradation — and the SoE after the move ``(S, U)``.
    """
    game, mode = law.game, law.mode
    battery = game.ess.battery
    soe = game.ess.soe
    dt = game.dt_h
    m_count = game.n_clusters
    s = len(soe)
    m = at[[f"m_{q}" for q in range(m_count)]].to_numpy()  # (n, M)
    own = at["own_kwh"].to_numpy()
    rest = own - at["own_ess_kwh"].to_numpy()
    base_u = np.linspace(-1.0, 1.0, DEVIATION_CONTROLS)
    u = np.concatenate(
        [np.broadcast_to(base_u, (s, len(base_u))), law.policy.ess[p, k][:, None]], axis=1
    )
    u, after, power = clipped_moves(battery, soe, u, dt)
    mine = rest[None, None, :] + (power * dt)[..., None]  # deviator's exchange, (S, U, n)
    shifted = np.broadcast_to(m, (*mine.shape, m_count)).copy()
    shifted[..., p] += (mine - own[None, None, :]) / (households[p] * dt)
    p_g = sampled_grid_price(game, k, at)
    bill = mine * cluster_stage_price(game, mode, k, p, shifted, p_g)
    rest_bill = rest * cluster_stage_price(game, mode, k, p, m, p_g)
    stage = bill - rest_bill[None, None, :] + (battery.degradation * u**2 * dt)[..., None]
    return u, stage, after


def _after_noise(law: LawUnderTest, value: np.ndarray) -> np.ndarray:
    grid = law.game.ess
    out = np.zeros(len(grid.soe))
    kernels._apply_rows(grid.noise_idx, grid.noise_w, np.ascontiguousarray(value), out)
    return out


@dataclass(frozen=True)
class FullInformationTables:
    """The deviators' ESS tables indexed by the bin of the last cleared aggregate."""

    tables: np.ndarray
    """``u(p, k, bin, SoE grid point)``, ``(M, K, B, S)``."""
    edges: np.ndarray
    """Bin edges of the others' cluster mean at each step [kW], ``(M, K, B−1)``."""


def ess_best_response_full(
    law: LawUnderTest, samples: pd.DataFrame, households: np.ndarray, bins: int = FULL_BINS
) -> FullInformationTables:
    """The deviators' ESS tables, full information: an *approximate* DP.

    The deviator also sees its cluster's last cleared aggregate (the others'
    mean ``x(k−1)`` of the previous interval, its own term removed). State:
    (SoE, bin of ``x(k−1)``), bins at the per-step sample terciles. The
    expectation at step ``k`` given bin ``b`` averages over the build samples
    whose ``x(k−1)`` fell in ``b``, and the continuation uses each sample's own
    next bin: the aggregate's dynamics are the empirical transitions of the
    samples, treated as Markov in the binned signal (the approximation).
    """
    game = law.game
    soe = game.ess.soe
    m_count, k_steps, s = law.policy.ess.shape
    tables = np.empty((m_count, k_steps, bins, s))
    edges = np.empty((m_count, k_steps, bins - 1))
    dt = game.dt_h
    for p in range(m_count):
        rows = samples[samples["cluster"] == p].sort_values(["step", "replication"], kind="stable")
        per_k = [rows[rows["step"] == k] for k in range(k_steps)]
        x = np.array(
            [a[f"m_{p}"].to_numpy() - a["own_kwh"].to_numpy() / (households[p] * dt) for a in per_k]
        )
        edges[p] = np.quantile(x, np.arange(1, bins) / bins, axis=1).T
        bin_of = np.array([np.searchsorted(edges[p, k], x[k], "right") for k in range(k_steps)])
        value = np.broadcast_to(game.ess.terminal.astype(float), (bins, s)).copy()
        for k in range(k_steps - 1, -1, -1):
            u, stage, nxt = _ess_stage(law, per_k[k], p, k, households)
            cont = np.stack([np.interp(nxt, soe, _after_noise(law, v)) for v in value])  # (B,S,U)
            per_sample = stage + np.moveaxis(cont[bin_of[k]], 0, -1)  # (S, U, n)
            seen = bin_of[k - 1] if k > 0 else np.zeros(x.shape[1], dtype=int)
            new = np.empty((bins, s))
            for b in range(bins):
                chosen = seen == b
                total = per_sample[..., chosen if chosen.any() else slice(None)].mean(axis=-1)
                best = np.argmin(total, axis=1)
                tables[p, k, b] = u[np.arange(s), best]
                new[b] = total[np.arange(s), best]
            value = new
    return FullInformationTables(tables, edges)
