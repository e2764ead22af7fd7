"""One step of the battery HJB, eq. (22), minimised exactly over the energy moved.

At grid point ``i`` the step objective over the energy moved ``d`` is

    f(d) = a·(π·e(d) + κ·u(d)²·Δt) + (1 − h_d)·W_stay(b_i + d) + h_d·Σ_n w_n·W_gone(b_i + F_n d),

``u`` and the energy at the meter ``e`` following from ``d`` and the
efficiency (:func:`models.battery.move_costs`). A home battery and an EV
outside its departure window stay (``h_d = 0``); an EV in the window leaves
during the step with hazard ``h_d``, after the fraction ``F_n`` of it
(Gauss–Legendre nodes ``F_n``, weights ``w_n``), ``a = 1 − h_d + h_d·Σ w_n F_n``
being the expected part of the step it is plugged in. ``W_stay`` is the next
value after the SoE noise and ``W_gone`` the departure penalty plus the value
after the trip, both interpolated on the grid: linearly (the grid chain's
exact program — the transport of :func:`models.kernels.battery_forward`) or
by cubic Hermite pieces (:mod:`models.cubic`).

The objective has kinks where ``b_i + d`` or one of the ``b_i + F_n d``
crosses a grid point, and at ``d = 0`` where the stage cost switches between
charging and discharging; between kinks it is a quadratic (linear) or a cubic
(cubic) in ``d`` whose minimum is found in closed form. Each side of ``d = 0``
is searched on its own: when the continuations are convex enough over the
state's reach the derivative only grows along a walk away from ``d = 0``, so a
bisection over the grid points ``b_i ± m·h`` finds the one grid segment that
holds the minimum and only the few pieces inside it are examined; otherwise
every piece in reach is. This is the closed-form minimiser of the strictly
convex stage cost (SPEC §4) replacing the switching rules (23)–(27).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.battery import Battery, move_costs, plugged_share
from models.cubic import cubic_minimum, hermite, node_slopes, segment_curvature

__all__ = ["minimise_step", "side_minimum"]


@njit(cache=True, inline="always")
def _component(
    table: np.ndarray,
    slopes: np.ndarray,
    pos: float,
    spacing: float,
    smooth: bool,
    ahead: float,
) -> tuple[float, float]:
    """Value and derivative of one continuation at grid position ``pos``.

    Cubic: the Hermite interpolant's. Linear: the segment's slope on the
    ``ahead`` side of ``pos`` (``+1`` above it, ``−1`` below it).
    """
    if smooth:
        return hermite(table, slopes, pos, spacing)
    n = table.shape[0]
    pos = min(max(pos, 0.0), n - 1.0)
    j = min(int(pos), n - 2)
    t = pos - j
    if ahead < 0.0 and t <= 1e-12 and j > 0:  # on a grid point, looking below it
        j -= 1
        t = 1.0
    return (1.0 - t) * table[j] + t * table[j + 1], (table[j + 1] - table[j]) / spacing


@njit(cache=True, inline="always")
def _continuation(
    d: float,
    i: int,
    stay: tuple[np.ndarray, np.ndarray],
    gone: tuple[np.ndarray, np.ndarray],
    departure: tuple[float, np.ndarray, np.ndarray],
    spacing: float,
    smooth: bool,
    ahead: float,
) -> tuple[float, float]:
    """``(1 − h_d)·W_stay(b_i + d) + h_d·Σ_n w_n·W_gone(b_i + F_n d)`` and its ``d``-derivative."""
    hd, at, w = departure
    value, slope = _component(stay[0], stay[1], i + d / spacing, spacing, smooth, ahead)
    if hd <= 0.0:
        return value, slope
    value *= 1.0 - hd
    slope *= 1.0 - hd
    for q in range(at.shape[0]):
        v, s = _component(gone[0], gone[1], i + at[q] * d / spacing, spacing, smooth, ahead)
        value += hd * w[q] * v
        slope += hd * w[q] * at[q] * s
    return value, slope


@njit(cache=True)
def convex_reach(curvature: np.ndarray, floor: float, out: np.ndarray) -> None:
    """``out[j]``: how many of the segments ``0..j−1`` have a curvature below ``floor``.

    A range of segments is convex enough when the counts at its two ends agree.
    """
    out[0] = 0
    for j in range(curvature.shape[0]):
        out[j + 1] = out[j] + (1 if curvature[j] < floor else 0)


@njit(cache=True)
def side_minimum(
    i: int,
    sign: float,
    reach: float,
    stage: tuple[float, float],
    stay: tuple[np.ndarray, np.ndarray],
    gone: tuple[np.ndarray, np.ndarray],
    departure: tuple[float, np.ndarray, np.ndarray],
    spacing: float,
    flags: tuple[bool, bool],
    cuts: np.ndarray,
) -> tuple[float, float]:
    """Minimum ``(d, f)`` of the step objective on one side of ``d = 0``.

    ``stage = (lin, quad)``: the stage cost ``lin·d + quad·d²`` on this side;
    ``stay`` and ``gone`` are ``(table, node slopes)`` (the slopes are read
    by the cubic interpolation only); ``departure = (h_d, F, w)``;
    ``flags = (smooth, convex)``: cubic interpolation, and whether the
    objective is convex on this side (then a bisection narrows the search to
    one grid segment; otherwise every piece in reach is examined); ``cuts`` a
    scratch buffer for the pieces' ends, long enough for every piece in reach.
    """
    smooth, convex = flags
    lin, quad = stage
    c0, s0 = _continuation(0.0, i, stay, gone, departure, spacing, smooth, sign)
    if reach <= 0.0 or (convex and sign * (lin + s0) >= 0.0):
        return 0.0, c0
    a_start, a_end = 0.0, reach
    if convex:  # first grid crossing m ≥ 1 where the derivative (looking back) is ≥ 0
        full = int(reach / spacing + 1e-9)
        lo, hi = 1, full + 1
        while lo < hi:
            mid = (lo + hi) // 2
            d = sign * mid * spacing
            _, s = _continuation(d, i, stay, gone, departure, spacing, smooth, -sign)
            if sign * (lin + s) + 2.0 * quad * mid * spacing >= 0.0:
                hi = mid
            else:
                lo = mid + 1
        a_start, a_end = (hi - 1) * spacing, min(hi * spacing, reach)
    # the pieces of [a_start, a_end]: where some b_i + F·d crosses a grid point
    leaving = departure[0] > 0.0
    at = departure[1]
    cuts[0] = a_start
    count = 1
    for q in range(-1, at.shape[0] if leaving else 0):
        f = 1.0 if q < 0 else at[q]
        if f <= 1e-12:
            continue
        for m in range(int(np.floor(f * a_start / spacing)) + 1, int(np.ceil(f * a_end / spacing))):
            a = m * spacing / f
            if a_start < a < a_end:
                cuts[count] = a
                count += 1
    cuts[count] = a_end
    count += 1
    points = cuts[:count]
    if leaving:  # one component alone crosses grid points in order
        points.sort()
    v0, g0 = _continuation(sign * a_start, i, stay, gone, departure, spacing, smooth, sign)
    best_a, best = a_start, lin * sign * a_start + quad * a_start * a_start + v0
    if c0 < best:
        best_a, best = 0.0, c0
    for piece in range(count - 1):
        a0, a1 = points[piece], points[piece + 1]
        if a1 - a0 <= 1e-15:
            continue
        # the piece's start is the last one's end: the value is continuous, and so
        # is the cubic's derivative (the linear pieces need only values)
        v1, g1 = _continuation(sign * a1, i, stay, gone, departure, spacing, smooth, -sign)
        f0 = lin * sign * a0 + quad * a0 * a0 + v0
        f1 = lin * sign * a1 + quad * a1 * a1 + v1
        if smooth:
            a, f = cubic_minimum(
                a0,
                a1,
                f0,
                sign * (lin + g0) + 2.0 * quad * a0,
                f1,
                sign * (lin + g1) + 2.0 * quad * a1,
            )
        else:  # the continuation is linear on the piece: a quadratic, its vertex clamped
            slope = (v1 - v0) / (a1 - a0)
            a = a0 if quad <= 0.0 else min(max(-(lin * sign + slope) / (2.0 * quad), a0), a1)
            if quad <= 0.0 and f1 < f0:
                a = a1
            f = lin * sign * a + quad * a * a + v0 + slope * (a - a0)
        if f < best:
            best_a, best = a, f
        v0, g0 = v1, g1
    return sign * best_a, best


@njit(cache=True)
def _bent_counts(
    table: np.ndarray, slopes: np.ndarray, spacing: float, smooth: bool, allowance: float
) -> np.ndarray:
    """Prefix counts of the interpolant's too-concave segments (see :func:`convex_reach`).

    Cubic: segments whose curvature dips below ``−allowance`` (the part of the
    stage cost's curvature this table may use up). Linear: segments ending at
    a concave kink (the slope falls there). Bends at rounding level —
    ``10⁻¹⁰`` of the table's range — do not count: they move the minimum by
    no more than that.
    """
    n = table.shape[0]
    tolerance = 1e-10 * (np.max(table) - np.min(table)) + 1e-300
    curvature = np.empty(n - 1)
    if smooth:
        segment_curvature(table, slopes, spacing, curvature)
        floor = -allowance - tolerance / (spacing * spacing)
    else:
        curvature[n - 2] = 0.0
        for j in range(n - 2):
            curvature[j] = (table[j + 2] - table[j + 1]) - (table[j + 1] - table[j])
        floor = -np.inf if allowance == np.inf else -tolerance  # a table of weight 0
    out = np.empty(n, dtype=np.int64)
    convex_reach(curvature, floor, out)
    return out


@njit(cache=True)
def minimise_step(
    stay: np.ndarray,
    gone: np.ndarray,
    departure: tuple[float, np.ndarray, np.ndarray],
    battery: Battery,
    spacing: float,
    price_dt: float,
    dt_h: float,
    smooth: bool,
    value: np.ndarray,
    control: np.ndarray,
) -> None:
    """Exact minimiser of one battery HJB step, eq. (22), at every grid point.

    Writes the minimum into ``value`` and the control ``u ∈ [−1, 1]`` of the
    minimising move into ``control``. ``departure = (h_d, F, w)``; with
    ``h_d = 0`` the battery stays and ``gone`` is not read. ``smooth``: cubic
    Hermite continuations instead of linear ones (pass it as a literal: numba
    compiles each interpolation on its own, several times faster than one
    function that branches at run time).
    """
    hd, at, w = departure
    n_soe = stay.shape[0]
    up_max, down_max, lin_up, quad_up, lin_down, quad_down = move_costs(
        battery, price_dt, dt_h, plugged_share(hd, at, w)
    )
    stay_slopes = np.empty(n_soe)
    gone_slopes = np.zeros(n_soe)
    node_slopes(stay, spacing, stay_slopes)
    if hd > 0.0:
        node_slopes(gone, spacing, gone_slopes)
    # f'' = stage'' + (1 − h_d)·W_stay'' + h_d·Σ w_n F_n²·W_gone'' ≥ 0 when each
    # table's curvature stays above minus half the stage's, divided by its weight
    spread = 0.0
    for q in range(at.shape[0]):
        spread += hd * w[q] * at[q] * at[q]
    stage_curvature = 2.0 * min(quad_up, quad_down)
    share = 1.0 if spread <= 0.0 else 0.5  # a battery that stays has one table
    stay_allowance = np.inf if hd >= 1.0 else share * stage_curvature / (1.0 - hd)
    bent_stay = _bent_counts(stay, stay_slopes, spacing, smooth, stay_allowance)
    bent_gone = np.zeros(n_soe, dtype=np.int64)
    if spread > 0.0:
        bent_gone = _bent_counts(gone, gone_slopes, spacing, smooth, 0.5 * stage_curvature / spread)
    n_up = int(np.ceil(up_max / spacing - 1e-12))
    n_down = int(np.ceil(down_max / spacing - 1e-12))
    cuts = np.empty(2 + (at.shape[0] + 1) * (max(n_up, n_down) + 3))
    pair_stay = (stay, stay_slopes)
    pair_gone = (gone, gone_slopes)
    for i in range(n_soe):
        top = min(i + n_up, n_soe - 1)
        bottom = max(i - n_down, 0)
        up_convex = bent_stay[top] == bent_stay[i] and bent_gone[top] == bent_gone[i]
        down_convex = bent_stay[i] == bent_stay[bottom] and bent_gone[i] == bent_gone[bottom]
        d_up, f_up = side_minimum(
            i,
            1.0,
            min(up_max, (n_soe - 1 - i) * spacing),
            (lin_up, quad_up),
            pair_stay,
            pair_gone,
            departure,
            spacing,
            (smooth, up_convex),
            cuts,
        )
        d_down, f_down = side_minimum(
            i,
            -1.0,
            min(down_max, i * spacing),
            (lin_down, quad_down),
            pair_stay,
            pair_gone,
            departure,
            spacing,
            (smooth, down_convex),
            cuts,
        )
        d, f = (d_up, f_up) if f_up <= f_down else (d_down, f_down)
        value[i] = f
        control[i] = min(d / up_max, 1.0) if d > 0.0 else max(d / down_max, -1.0)
