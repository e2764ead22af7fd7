"""Aggregators' LMP beliefs per time-of-day slot, seed 003 eq. (8).

Each aggregator keeps one believed LMP per slot of the day. After the
dispatch of a step in slot τ it moves that slot's belief towards the price it
saw at its bus:

    b_τ ← (1 − β) b_τ + β · LMP          (8)

The other slots are unchanged. β ∈ (0, 1] is the learning rate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["update_belief"]


def update_belief(belief: ArrayLike, slot: int, lmp: ArrayLike, rate: float) -> NDArray[np.float64]:
    """Apply eq. (8) to one slot of every aggregator's belief.

    Parameters
    ----------
    belief
        Beliefs ($/MWh), shape ``(n_aggregators, slots)``.
    slot
        The slot τ whose price was observed.
    lmp
        Observed LMP at each aggregator's bus ($/MWh), shape ``(n_aggregators,)``.
    rate
        β ∈ (0, 1].

    Returns
    -------
    numpy.ndarray
        A new belief array; the input is not modified.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"belief rate β: {rate} must lie in (0, 1]")
    out = np.array(belief, dtype=float)
    if out.ndim != 2:
        raise ValueError(f"belief: shape {out.shape}, expected (aggregators, slots)")
    if not 0 <= slot < out.shape[1]:
        raise ValueError(f"slot: {slot} is not in [0, {out.shape[1]})")
    seen = np.asarray(lmp, dtype=float)
    out[:, slot] = (1.0 - rate) * out[:, slot] + rate * seen
    return out
