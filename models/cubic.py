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

from models.battery import Battery, move_costs

__all__ = [
    "cubic_minimum",
    "hermite",
    "minimise_moves_cubic",
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


@njit(cache=True, inline="always")
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


@njit(cache=True)
def _side(
    i: int,
    sign: float,
    reach: float,
    stage: tuple[float, float],
    values: np.ndarray,
    slopes: np.ndarray,
    spacing: float,
    convex: bool,
) -> tuple[float, float]:
    """Minimum ``(d, f)`` of a staying battery's cubic step objective on one side of ``d = 0``.

    With ``a = |d|`` (``sign`` ±1 the side) and ``stage = (lin, quad)`` the
    objective is ``lin·sign·a + quad·a² + W(b_i + sign·a)`` on ``[0, reach]``.
    Its pieces are the grid segments crossed, whose end values and slopes are
    the table's own; only a piece ending at the reach needs the interpolant.
    When the objective is ``convex`` on the side its derivative only grows, and
    a bisection over the grid points finds the one piece holding the minimum;
    otherwise every piece is minimised.
    """
    lin, quad = stage
    full = int(reach / spacing + 1e-9)  # grid points b_i ± spacing, ..., b_i ± full·spacing
    best_a, best = 0.0, values[i]
    if reach <= 0.0:
        return 0.0, best
    step = 1 if sign > 0.0 else -1
    lo, hi = 0, full + 1  # pieces m = 1..full end on grid points; m = full + 1 at the reach
    if convex:
        if sign * (lin + slopes[i]) >= 0.0:
            return 0.0, best
        lo = 1
        while lo < hi:  # the first grid point with a non-negative derivative
            mid = (lo + hi) // 2
            if sign * (lin + slopes[i + step * mid]) + 2.0 * quad * mid * spacing >= 0.0:
                hi = mid
            else:
                lo = mid + 1
        lo = hi - 1
        # the minimum is in piece hi, or at its start when that piece is empty
        a0 = lo * spacing
        f0 = lin * sign * a0 + quad * a0 * a0 + values[i + step * lo]
        if f0 < best:
            best_a, best = a0, f0
    for m in range(lo + 1, hi + 1):
        a0 = (m - 1) * spacing
        j0 = i + step * (m - 1)
        f0 = lin * sign * a0 + quad * a0 * a0 + values[j0]
        g0 = sign * (lin + slopes[j0]) + 2.0 * quad * a0
        if m <= full:
            a1 = m * spacing
            v1, s1 = values[j0 + step], slopes[j0 + step]
        else:
            a1 = reach
            if a1 - a0 <= 1e-12 * spacing:
                continue
            v1, s1 = hermite(values, slopes, i + sign * a1 / spacing, spacing)
        f1 = lin * sign * a1 + quad * a1 * a1 + v1
        g1 = sign * (lin + s1) + 2.0 * quad * a1
        a, f = cubic_minimum(a0, a1, f0, g0, f1, g1)
        if f < best:
            best_a, best = a, f
    return sign * best_a, best


@njit(cache=True)
def minimise_moves_cubic(
    stay: np.ndarray,
    battery: Battery,
    spacing: float,
    price_dt: float,
    dt_h: float,
    value: np.ndarray,
    control: np.ndarray,
) -> None:
    """:func:`models.hjb_step.minimise_step` of a battery that stays, cubic: the fast path.

    With one continuation only, the pieces are the grid segments and their
    ends are table entries, so no interpolant is evaluated but at the reach.
    A side of a state's reach whose segments all have a curvature above
    ``−2·quad`` has a convex objective (:func:`_side` bisects it).
    """
    n_soe = stay.shape[0]
    up_max, down_max, lin_up, quad_up, lin_down, quad_down = move_costs(
        battery, price_dt, dt_h, 1.0
    )
    slopes = np.empty(n_soe)
    node_slopes(stay, spacing, slopes)
    curvature = np.empty(n_soe - 1)
    segment_curvature(stay, slopes, spacing, curvature)
    bent = np.zeros(n_soe, dtype=np.int64)  # bent[j]: segments 0..j−1 below the floor
    for j in range(n_soe - 1):
        bent[j + 1] = bent[j] + (1 if curvature[j] < -2.0 * min(quad_up, quad_down) else 0)
    n_up = int(np.ceil(up_max / spacing - 1e-12))
    n_down = int(np.ceil(down_max / spacing - 1e-12))
    for i in range(n_soe):
        top = min(i + n_up, n_soe - 1)
        bottom = max(i - n_down, 0)
        d_up, f_up = _side(
            i,
            1.0,
            min(up_max, (n_soe - 1 - i) * spacing),
            (lin_up, quad_up),
            stay,
            slopes,
            spacing,
            bent[top] == bent[i],
        )
        d_down, f_down = _side(
            i,
            -1.0,
            min(down_max, i * spacing),
            (lin_down, quad_down),
            stay,
            slopes,
            spacing,
            bent[i] == bent[bottom],
        )
        d, f = (d_up, f_up) if f_up <= f_down else (d_down, f_down)
        value[i] = f
        control[i] = min(d / up_max, 1.0) if d > 0.0 else max(d / down_max, -1.0)
