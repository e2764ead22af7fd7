"""Market metrics of seed 003 §5.2: price volatility (IMV) and ex-post cost.

- Incremental mean volatility, eq. (16) (Roozbehani, Dahleh & Mitter 2012):
  ``IMV = (1/T) Σ_{t=1}^{T} |p_{t+1} − p_t|`` for a price sequence
  ``p_1 … p_{T+1}``; the paper's limit ``T → ∞`` is estimated over the last
  days of a run.
- Ex-post cost: each bid (MW over a step of ``dt`` hours) times the real-time
  LMP at its bus, summed over buses and steps ($).
- Settling: the mean absolute day-to-day change of a daily price profile,
  compared between the first and the last days of a run.
- Scarcity steps: steps where load is shed or a bus's LMP reaches the value
  of lost load. A few of them can dominate both metrics (one step at
  10 000 $/MWh outweighs days at 20 $/MWh), so each metric also has a form
  that leaves given steps out (``imv_excluding``; a boolean mask on the
  ``ex_post_cost`` array).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "SHED_TOLERANCE_MW",
    "VOLL_RELATIVE_TOLERANCE",
    "day_to_day_change",
    "ex_post_cost",
    "imv",
    "imv_excluding",
    "scarcity_metrics",
    "scarcity_steps",
    "settling",
]

SHED_TOLERANCE_MW = 1e-6
"""Shed power (MW, all buses) above which a step counts as shedding load."""
VOLL_RELATIVE_TOLERANCE = 1e-6
"""An LMP at or above ``VOLL · (1 − this)`` counts as priced at the value of lost load."""


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


def imv_excluding(
    prices: ArrayLike, exclude: ArrayLike, axis: int = 0
) -> NDArray[np.float64] | float:
    """IMV, eq. (16), over the increments that touch no excluded step.

    An increment ``|p_{t+1} − p_t|`` is dropped when step ``t`` or ``t + 1``
    is excluded (the jumps into and out of an excluded step go with it); the
    rest are averaged as in :func:`imv`. No step excluded gives :func:`imv`.

    Parameters
    ----------
    prices
        Prices ($/MWh) in time order along ``axis``.
    exclude
        Boolean mask of the steps to leave out, one per price along ``axis``.
    axis
        The time axis.

    Returns
    -------
    float or numpy.ndarray
        Mean ``|p_{t+1} − p_t|`` over the kept increments ($/MWh), one value
        per series; NaN when no increment is kept.
    """
    p = np.moveaxis(np.asarray(prices, dtype=float), axis, 0)
    out_mask = np.asarray(exclude, dtype=bool)
    if out_mask.shape != (p.shape[0],):
        raise ValueError(
            f"imv_excluding: mask of shape {out_mask.shape} "
            f"for {p.shape[0]} prices along axis {axis}"
        )
    keep = ~(out_mask[:-1] | out_mask[1:])
    if p.shape[0] < 2 or not keep.any():
        out = np.full(p.shape[1:], np.nan)
    else:
        out = np.abs(np.diff(p, axis=0))[keep].mean(axis=0)
    return float(out) if np.ndim(out) == 0 else out


def scarcity_steps(
    lmp: ArrayLike, shed_mw: ArrayLike, value_of_lost_load: float
) -> NDArray[np.bool_]:
    """Steps of scarcity: load shed, or some bus priced at the value of lost load.

    A step is a scarcity step when its shed power exceeds
    :data:`SHED_TOLERANCE_MW` or any bus's LMP is at least
    ``value_of_lost_load · (1 −`` :data:`VOLL_RELATIVE_TOLERANCE` ``)``.

    Parameters
    ----------
    lmp
        LMPs per step and bus ($/MWh), shape ``(steps, buses)``.
    shed_mw
        Load shed per step (MW, all buses), shape ``(steps,)``.
    value_of_lost_load
        The dispatch's value of lost load ($/MWh).

    Returns
    -------
    numpy.ndarray of bool
        Shape ``(steps,)``.
    """
    p, shed = np.asarray(lmp, dtype=float), np.asarray(shed_mw, dtype=float)
    if p.ndim != 2 or shed.shape != p.shape[:1]:
        raise ValueError(f"scarcity_steps: lmp {p.shape} and shed {shed.shape} do not match")
    at_voll = p.max(axis=1, initial=-np.inf) >= value_of_lost_load * (1 - VOLL_RELATIVE_TOLERANCE)
    return np.asarray((shed > SHED_TOLERANCE_MW) | at_voll, dtype=bool)


def _share(part: float, whole: float) -> float:
    return part / whole if whole != 0 else 0.0


def scarcity_metrics(
    lmp: ArrayLike,
    hub_price: ArrayLike,
    shed_mwh: ArrayLike,
    cost: ArrayLike,
    *,
    own: ArrayLike,
    exclude: ArrayLike | None = None,
    last: int,
) -> dict[str, float]:
    """A run's scarcity steps, and its IMV and ex-post cost without the excluded steps.

    Parameters
    ----------
    lmp
        LMPs per step and bus ($/MWh), shape ``(steps, buses)``.
    hub_price
        The hub's price per step ($/MWh).
    shed_mwh
        Energy shed per step (MWh, all buses).
    cost
        Ex-post cost per step ($), from :func:`ex_post_cost`.
    own
        The run's scarcity steps (:func:`scarcity_steps`), a mask per step.
    exclude
        The steps the ``*_excl_scarcity`` figures leave out; ``own`` by default.
    last
        Steps in the closing window (the ``*_last_days`` figures).

    Returns
    -------
    dict of str to float
        Counts of scarcity and excluded steps, shed energy (MWh), the share of
        the ex-post cost incurred in scarcity steps (whole run and window), and
        IMV (mean over buses, and at the hub; :func:`imv_excluding`) and
        ex-post cost ($) over the kept steps.
    """
    p, hub = np.asarray(lmp, dtype=float), np.asarray(hub_price, dtype=float)
    shed, c = np.asarray(shed_mwh, dtype=float), np.asarray(cost, dtype=float)
    mine = np.asarray(own, dtype=bool)
    out = mine if exclude is None else np.asarray(exclude, dtype=bool)
    keep, w = ~out, slice(-last, None)
    return {
        "scarcity_steps": int(mine.sum()),
        "scarcity_steps_last_days": int(mine[w].sum()),
        "shed_mwh": float(shed.sum()),
        "shed_mwh_last_days": float(shed[w].sum()),
        "scarcity_cost_share": _share(float(c[mine].sum()), float(c.sum())),
        "scarcity_cost_share_last_days": _share(float(c[w][mine[w]].sum()), float(c[w].sum())),
        "steps_excluded": int(out.sum()),
        "steps_excluded_last_days": int(out[w].sum()),
        "imv_last_days_excl_scarcity": float(np.mean(imv_excluding(p[w], out[w], axis=0))),
        "imv_hub_last_days_excl_scarcity": float(imv_excluding(hub[w], out[w])),
        "imv_whole_run_excl_scarcity": float(np.mean(imv_excluding(p, out, axis=0))),
        "ex_post_cost_last_days_excl_scarcity": float(c[w][keep[w]].sum()),
        "ex_post_cost_total_excl_scarcity": float(c[keep].sum()),
    }


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
