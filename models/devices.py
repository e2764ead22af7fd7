"""Household devices as pure array functions (SPEC §1, eqs. (1)–(12) of Aziz et al.).

Everything here is plain NumPy over arrays of any shape, so the mean-field
solver (on grids) and the finite-N simulation (on columns of households) use
the very same penalties, hazards and responses. The battery's own physics —
stored energy, power at the meter, bounds — is :mod:`models.battery`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr


def smooth_shortfall(shortfall: np.ndarray, width: float) -> np.ndarray:
    """``(x)₊`` smoothed to C¹ over ``[0, width]`` (a Huber ramp); exact when ``width = 0``."""
    x = np.asarray(shortfall, dtype=float)
    if width <= 0:
        return np.maximum(x, 0.0)
    return np.where(x <= 0, 0.0, np.where(x < width, x * x / (2 * width), x - width / 2))


def terminal_penalty(
    soe: np.ndarray, reference: float, linear: float, quadratic: float, width: float
) -> np.ndarray:
    """End-of-day penalty ``Φ(b) = c1·(b0 − b)₊ + c2·(b0 − b)₊²`` [$], the ramp smoothed."""
    short = np.asarray(reference - soe, dtype=float)
    return linear * smooth_shortfall(short, width) + quadratic * np.maximum(short, 0.0) ** 2


def departure_penalty(soe: np.ndarray | float, target: float, weight: float) -> np.ndarray:
    """Penalty on an EV leaving below its target, ``c·(target − b)₊²`` [$] (the paper's α)."""
    return weight * np.maximum(target - np.asarray(soe, dtype=float), 0.0) ** 2


def uniform_window_hazard(
    window: Sequence[float], step_hours: np.ndarray, dt_h: float
) -> np.ndarray:
    """Per-step hazard of an event whose time is ``U(window)`` [h].

    ``h_k = P(event in (t_k, t_k + Δt] | not before t_k)``; 0 outside the window,
    1 on the step that contains the window's end. This is the exogenous
    connected/away Markov chain of the mean-field EV model (SPEC §1): its
    marginals equal those of the drawn departure and arrival times.
    """
    lo, hi = window
    t0 = np.asarray(step_hours, dtype=float)
    t1 = t0 + dt_h
    if hi <= lo:  # a point mass
        return ((t0 < lo) & (lo <= t1)).astype(float) + ((t0 == lo) & (lo == 0)).astype(float)
    cdf0 = np.clip((t0 - lo) / (hi - lo), 0.0, 1.0)
    cdf1 = np.clip((t1 - lo) / (hi - lo), 0.0, 1.0)
    survive = 1.0 - cdf0
    return np.where(survive > 1e-12, (cdf1 - cdf0) / np.where(survive > 1e-12, survive, 1.0), 0.0)


def positive_part_mean(noise: float) -> float:
    """``E[max(0, 1 + ε Z)]`` for ``Z ~ N(0, 1)``: the mean factor of PV and base load."""
    if noise <= 0:
        return 1.0
    a = 1.0 / noise
    return float(ndtr(a) + noise * np.exp(-0.5 * a * a) / np.sqrt(2 * np.pi))


def controllable_response(
    price: np.ndarray, power_kw: float, duty: float, discomfort: float
) -> np.ndarray:
    """Minimiser of ``Δt(π f_c P_c (1 + u) + κ_c u²)`` over ``u ∈ [-1, 1]`` (closed form, eq. (24)).

    With the strictly convex discomfort the bang-bang switch of eq. (24)
    becomes the clipped linear response ``u = clip(−π f_c P_c / (2 κ_c), −1, 1)``.
    """
    return np.clip(-np.asarray(price) * duty * power_kw / (2.0 * discomfort), -1.0, 1.0)


def ar1_noise(rng: np.random.Generator, shape: tuple[int, int], corr: float) -> np.ndarray:
    """Stationary AR(1) paths ``ζ_{k+1} = ρ ζ_k + √(1−ρ²) ε_k``, unit variance, shape ``(n, K)``.

    The discretised Ornstein–Uhlenbeck term of eq. (1) (and of the load).
    """
    n, steps = shape
    out = np.empty(shape)
    out[:, 0] = rng.standard_normal(n)
    scale = np.sqrt(1.0 - corr * corr)
    for k in range(1, steps):
        out[:, k] = corr * out[:, k - 1] + scale * rng.standard_normal(n)
    return out
