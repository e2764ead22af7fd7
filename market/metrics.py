"""Market metrics of seed 003 §5.2: price volatility (IMV) and ex-post cost.

- Incremental mean volatility, eq. (16) (Roozbehani, Dahleh & Mitter 2012):
  ``IMV = (1/T) Σ_{t=1}^{T} |p_{t+1} − p_t|`` for a price sequence
  ``p_1 … p_{T+1}``; the paper's limit ``T → ∞`` is estimated over the last
  days of a run.
- Ex-post cost: each bid (MW over a step of ``dt`` hours) times the real-time
  LMP at its bus, summed over buses and steps ($).
- Settling: the mean absolute day-to-day change of a daily price profile,
  compared between the first and the last days of a run.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["day_to_day_change", "ex_post_cost", "imv", "settling"]


def imv(prices: ArrayLike, axis: int = 0) -> NDArray[np.float64] | float:
    """Incremental mean volatility of a price sequence, seed 003 eq. (16).

    Parameters
    ----------
    prices
        Prices ($/MWh) in time order along ``axis``; at least two.
    axis
        The time axis.

    Returns
    -------
    float or numpy.ndarray
        ``mean_t |p_{t+1} − p_t|`` ($/MWh), one value per series.
    """
    p = np.asarray(prices, dtype=float)
    if p.shape[axis] < 2:
        raise ValueError(f"imv: needs at least two prices along axis {axis}, got {p.shape[axis]}")
    out = np.abs(np.diff(p, axis=axis)).mean(axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def ex_post_cost(bids_mw: ArrayLike, lmp: ArrayLike, dt_h: float) -> NDArray[np.float64]:
    """Ex-post cost of each step: Σ_n bid_n · dt · LMP_n ($), seed 003 §5.2.

    Parameters
    ----------
    bids_mw
        Bids per step and bus (MW), shape ``(steps, buses)``; negative bids
        (net supply) earn the LMP.
    lmp
        Real-time LMPs ($/MWh), same shape.
    dt_h
        Step length (h).

    Returns
    -------
    numpy.ndarray
        Cost per step ($), shape ``(steps,)``; ``cumsum`` gives the cumulative cost.
    """
    b, p = np.asarray(bids_mw, dtype=float), np.asarray(lmp, dtype=float)
    if b.shape != p.shape:
        raise ValueError(f"ex_post_cost: bids {b.shape} and prices {p.shape} differ in shape")
    return (b * p).sum(axis=-1) * dt_h


def day_to_day_change(prices: ArrayLike, slots: int) -> NDArray[np.float64]:
    """Mean over slots of ``|p_{d+1, τ} − p_{d, τ}|`` for each pair of consecutive days.

    Parameters
    ----------
    prices
        A price per step, ``days × slots`` long, in time order.
    slots
        Steps per day.

    Returns
    -------
    numpy.ndarray
        Shape ``(days − 1,)`` ($/MWh).
    """
    p = np.asarray(prices, dtype=float)
    if p.ndim != 1 or p.size % slots:
        raise ValueError(f"day_to_day_change: {p.size} prices are not whole days of {slots}")
    daily = p.reshape(-1, slots)
    return np.abs(np.diff(daily, axis=0)).mean(axis=1)


def settling(prices: ArrayLike, slots: int, days: int) -> tuple[float, float]:
    """Mean day-to-day change over the first and over the last ``days`` day pairs.

    Prices have settled when the second number is below the first.

    Returns
    -------
    tuple of float
        ``(first, last)`` ($/MWh).
    """
    change = day_to_day_change(prices, slots)
    if not 1 <= days <= change.size:
        raise ValueError(f"settling: window {days} needs 1 ≤ days ≤ {change.size}")
    return float(change[:days].mean()), float(change[-days:].mean())
