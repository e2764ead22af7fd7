"""The battery HJB step with a smooth continuation: cubic Hermite in the state of energy.

With the continuation value interpolated linearly (:mod:`models.kernels`) the
minimiser of one HJB step lands on a grid point far more often than not: the
stage cost is a gentle quadratic in the energy moved and the continuation's
slope jumps at every grid point, so the best move is "go to the grid point
where the slope changes". The law then steers every household to the nearest
grid point instead of to the optimal state, and a household free to deviate at
continuous state gains on the order of the grid spacing — far more than the
discretised game's own exploitability shows (docs/performance.md,
"Exploitability in the continuous game").

Here the continuation is the cubic Hermite interpolant of its grid values
with centred-difference slopes (Catmull–Rom; one-sided at the ends): C¹, exact
for quadratics, so the minimiser moves continuously with the state and the
law's control tables — linearly interpolated by the HEMS — are close to the
optimal control at every state. Between the points where ``b + F·d`` crosses a
grid point the objective of eq. (22) is a cubic polynomial in the energy moved
``d``; each piece is minimised exactly (its end points and the roots of its
derivative) and the best piece wins.

The transport (FPK, eq. (28)) is unchanged: mass still moves to
``b_i + Δb(u_i)`` and is split linearly, so densities keep their mass and
sign. The HJB value is then no longer exactly the expected cost of its policy
under that transport (they differ by the interpolation error, ``O(h³)``); the
solver measures costs through the transport (:mod:`models.response`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "cubic_minimum",
    "hermite",
    "node_slopes",
    "segment_curvature",
    "smooth_expectation",
]


@njit(cache=True)
def node_slopes(values: np.ndarray, spacing: float, out: np.ndarray) -> None:
    """Slopes of the cubic Hermite interpolant at the grid points (centred differences).

    ``(v[j+1] − v[j−1]) / 2h`` inside, second-order one-sided differences at the two ends.
    """
    n = values.shape[0]
    if n < 3:
        out[0] = out[n - 1] = (values[n - 1] - values[0]) / spacing
        return
    out[0] = (-3.0 * values[0] + 4.0 * values[1] - values[2]) / (2.0 * spacing)
    out[n - 1] = (3.0 * values[n - 1] - 4.0 * values[n - 2] + values[n - 3]) / (2.0 * spacing)
    for j in range(1, n - 1):
        out[j] = (values[j + 1] - values[j - 1]) / (2.0 * spacing)


@njit(cache=True)
def hermite(
    values: np.ndarray, slopes: np.ndarray, pos: float, spacing: float
) -> tuple[float, float]:
    """Value and derivative of the cubic Hermite interpolant at grid position ``pos``.

    ``pos`` is the state in units of the spacing from the first grid point,
    clipped to the grid.
    """
    n = values.shape[0]
    pos = min(max(pos, 0.0), n - 1.0)
    j = min(int(pos), n - 2)
    t = pos - j
    v0, v1 = values[j], values[j + 1]
    m0, m1 = slopes[j] * spacing, slopes[j + 1] * spacing
    t2 = t * t
    t3 = t2 * t
    value = (
        (2.0 * t3 - 3.0 * t2 + 1.0) * v0
        + (t3 - 2.0 * t2 + t) * m0
        + (-2.0 * t3 + 3.0 * t2) * v1
        + (t3 - t2) * m1
    )
    derivative = (
        (6.0 * t2 - 6.0 * t) * v0
        + (3.0 * t2 - 4.0 * t + 1.0) * m0
        + (-6.0 * t2 + 6.0 * t) * v1
        + (3.0 * t2 - 2.0 * t) * m1
    ) / spacing
    return value, derivative


@njit(cache=True)
def smooth_expectation(
    values: np.ndarray, jumps: tuple[np.ndarray, np.ndarray], spacing: float, out: np.ndarray
) -> None:
    """``out[i] = Σ_q p_q·W(b_i + s_q)``, ``W`` the cubic Hermite interpolant of ``values``.

    The expectation of the next value over a random jump of the state (SoE
    noise, trip energy), the jumped state clipped to the grid. Splitting the
    jumped mass linearly between grid points instead — the transport's
    representation — adds a variance of up to ``h²/4`` per node and step, far
    more than the SoE noise itself on a coarse grid: the value function would
    believe in a much noisier battery than the one simulated.
    """
    shift, prob = jumps
    n = values.shape[0]
    slopes = np.empty(n)
    node_slopes(values, spacing, slopes)
    for i in range(n):
        acc = 0.0
        for q in range(shift.shape[0]):
            acc += prob[q] * hermite(values, slopes, i + shift[q] / spacing, spacing)[0]
        out[i] = acc


@njit(cache=True)
def cubic_minimum(
    d0: float, d1: float, f0: float, g0: float, f1: float, g1: float
) -> tuple[float, float]:
    """Minimum ``(d, f)`` on ``[d0, d1]`` of the cubic with end values ``f`` and slopes ``g``."""
    length = d1 - d0
    a1 = length * g0
    a2 = 3.0 * (f1 - f0) - 2.0 * length * g0 - length * g1
    a3 = 2.0 * (f0 - f1) + length * g0 + length * g1
    best_s, best = 0.0, f0
    if f1 < best:
        best_s, best = 1.0, f1
    # roots of p'(s) = a1 + 2·a2·s + 3·a3·s² inside (0, 1)
    qa, qb, qc = 3.0 * a3, 2.0 * a2, a1
    roots = np.empty(2)
    count = 0
    if abs(qa) <= 1e-14 * (abs(qb) + abs(qc) + 1e-300):
        if qb != 0.0:
            roots[0] = -qc / qb
            count = 1
    else:
        disc = qb * qb - 4.0 * qa * qc
        if disc >= 0.0:
            root = np.sqrt(disc)
            # numerically stable pair of roots
            q = -0.5 * (qb + root) if qb >= 0.0 else -0.5 * (qb - root)
            roots[0] = q / qa
            count = 1
            if q != 0.0:
                roots[1] = qc / q
                count = 2
    for r in range(count):
        s = roots[r]
        if 0.0 < s < 1.0:
            value = f0 + s * (a1 + s * (a2 + s * a3))
            if value < best:
                best_s, best = s, value
    return d0 + best_s * length, best


@njit(cache=True)
def segment_curvature(
    values: np.ndarray, slopes: np.ndarray, spacing: float, out: np.ndarray
) -> None:
    """Smallest second derivative of the cubic Hermite interpolant on each segment, ``(S − 1,)``.

    The second derivative is linear on a segment, so its smaller end value is its minimum.
    """
    inv = 1.0 / (spacing * spacing)
    for j in range(values.shape[0] - 1):
        rise = values[j + 1] - values[j]
        m0, m1 = slopes[j] * spacing, slopes[j + 1] * spacing
        out[j] = min(6.0 * rise - 4.0 * m0 - 2.0 * m1, -6.0 * rise + 2.0 * m0 + 4.0 * m1) * inv
