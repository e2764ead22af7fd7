"""Compiled kernels of the deviator's joint dynamic program (:mod:`cosim.studies.joint_deviation`).

The DP runs over the deviator's joint state (ESS SoE, EV SoE, EV plugged in /
away, shiftable quanta left) with the mean-field model's transitions, device by
device (the tables of :mod:`models.kernels`), and the battery model of
:mod:`models.battery`: a deviator's move is exactly what its HEMS would do.
Kernels take typed tuples; the ones a parallel loop reads are flat.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from models.battery import Battery, clipped_move, wear, within_bounds
from models.feedback import law_control
from models.kernels import EVTrips, RowMap
from models.shiftable_kernels import ShiftableWindow

#: Layers of the EV dimension.
AWAY, CONNECTED = 0, 1


class JointGrid(NamedTuple):
    """The deviator's DP grid: its step, the set-points it tries and its SoE axes."""

    dt_h: float
    """Control step [h]."""
    levels: np.ndarray
    """Battery set-points tried at every state (besides the law's own control)."""
    ess_first: float
    """First point of the ESS SoE grid [kWh]."""
    ess_inv_spacing: float
    """``1/spacing`` of the ESS SoE grid [1/kWh]."""
    ev_first: float
    """First point of the EV SoE grid [kWh]."""
    ev_inv_spacing: float
    """``1/spacing`` of the EV SoE grid [1/kWh] (1 for the one point of a household
    without an EV)."""


class JointState(NamedTuple):
    """One state of the deviator's DP."""

    k: int
    """Control step."""
    ess_soe: float
    """ESS state of energy [kWh]."""
    ev_soe: float
    """EV state of energy [kWh]."""
    layer: int
    """:data:`CONNECTED` or :data:`AWAY` (always away without an EV)."""
    left: int
    """Quanta the shiftable appliance still has to run."""


class DeviatorDevices(NamedTuple):
    """The deviator's devices and DP grid: the last arguments of :func:`joint_choice`."""

    ess: Battery
    """Its home battery."""
    ev: Battery
    """Its EV's battery (never moved for a household without one)."""
    shift: ShiftableWindow
    """Its shiftable appliance."""
    grid: JointGrid
    """Step, set-points tried and SoE axes."""


class StageTable(NamedTuple):
    """``g_k(c)``: stage cost of the controlled exchange ``c`` on a uniform grid."""

    g: np.ndarray
    """The table, ``(K, C)`` [$]."""
    first: float
    """Exchange at the first column [kWh]."""
    spacing: float
    """Exchange between columns [kWh]."""


class StepContinuation(NamedTuple):
    """Expected continuation after the move at one step, and the EV's departure in it."""

    w_conn: np.ndarray
    """EV plugged in through the step, ``(S_e, S_v, R+1)`` [$]."""
    w_away: np.ndarray
    """EV away (or no EV), ``(S_e, S_v, R+1)`` [$]."""
    w_depart: np.ndarray
    """EV leaving during the step, at its SoE of departure, ``(S_e, S_v, R+1)`` [$]."""
    leave: float
    """Probability that a plugged-in EV leaves during the step."""
    fractions: np.ndarray
    """Fractions of the step spent plugged in before leaving: quadrature nodes ``(G,)`` ..."""
    fraction_weights: np.ndarray
    """... and weights ``(G,)``."""


class JointTransitions(NamedTuple):
    """The deviator's price-free tables: the mean-field battery kernels' grids and maps."""

    ess_soe: np.ndarray
    """ESS grid points [kWh], ``(S_e,)``."""
    ev_soe: np.ndarray
    """EV grid points [kWh], ``(S_v,)`` (one point for a household without an EV)."""
    ess_noise: RowMap
    """ESS SoE noise, ``(S_e, Q)``."""
    ev_noise: RowMap
    """EV SoE noise, ``(S_v, Q)``."""
    ev_trips: EVTrips
    """The EV's departures, trips and arrivals."""
    terminal: np.ndarray
    """``Φ`` at the end of the day, ``(S_e, S_v, 2, R+1)`` [$] (end-of-day penalties of
    both batteries and the shiftable appliance's shortfall)."""


@njit(cache=True)
def _bilinear(w: np.ndarray, grid: JointGrid, y_e: float, y_v: float, r: int) -> float:
    """Bilinear interpolation of ``w[:, :, r]`` at ``(y_e, y_v)`` (clamped to the grid)."""
    n_e, n_v = w.shape[0], w.shape[1]
    pe = min(max((y_e - grid.ess_first) * grid.ess_inv_spacing, 0.0), n_e - 1.0)
    je = min(int(pe), max(n_e - 2, 0))
    we = pe - je if n_e > 1 else 0.0
    pv = min(max((y_v - grid.ev_first) * grid.ev_inv_spacing, 0.0), n_v - 1.0)
    jv = min(int(pv), max(n_v - 2, 0))
    wv = pv - jv if n_v > 1 else 0.0
    je1 = min(je + 1, n_e - 1)
    jv1 = min(jv + 1, n_v - 1)
    return (1.0 - we) * ((1.0 - wv) * w[je, jv, r] + wv * w[je, jv1, r]) + we * (
        (1.0 - wv) * w[je1, jv, r] + wv * w[je1, jv1, r]
    )


@njit(cache=True)
def _move(u: float, soe: float, battery: Battery, dt_h: float) -> tuple[float, float, float, float]:
    """A battery's set-point as the HEMS applies it: ``(u, SoE after, energy [kWh], wear [$])``.

    ``u`` is clipped so a full step stays in bounds (:func:`models.battery.feasible`).
    """
    u, after, power = clipped_move(battery, u, soe, dt_h)
    return u, after, power * dt_h, wear(battery, u, dt_h)


@njit(cache=True)
def joint_choice(
    state: JointState,
    law_ue: float,
    law_uv: float,
    stage: StageTable,
    step: StepContinuation,
    ess: Battery,
    ev: Battery,
    shift: ShiftableWindow,
    grid: JointGrid,
) -> tuple[float, float, float, int]:
    """The best joint control at one state of its step: ``(cost, u_ess, u_ev, run)``.

    Minimises stage cost ``g_k(c)`` of the controlled exchange ``c`` (the
    controllable load already minimised inside it) + battery degradation
    ``κ u² Δt`` + the expected continuation after the move, ``w_conn`` (EV
    plugged in through the step) or ``w_away`` (the EV away keeps its SoE),
    interpolated at the moved SoEs. A plugged-in EV leaves during the step
    with probability ``leave``, after the fraction ``F`` of the step
    (quadrature ``fractions``/``fraction_weights``): it then charged, paid and
    wore for ``F·Δt`` only, and continues with ``w_depart`` (penalty, trip,
    away) at its SoE of departure.

    Parameters
    ----------
    state
        The state and its step ``k``.
    law_ue, law_uv
        The law's ESS and EV controls at that state (always candidates).
    stage
        ``g_k``.
    step
        The continuation tables of step ``k``.
    ess, ev, shift
        The deviator's devices (:class:`DeviatorDevices`).
    grid
        Step, set-points tried and SoE axes.
    """
    k, b_e, b_v, layer, r = state
    g, g_first, g_spacing = stage
    w_conn, w_away, w_depart, leave, fractions, fraction_weights = step
    dt_h, levels = grid.dt_h, grid.levels
    n_lv = levels.shape[0]
    can_run = r > 0 and k >= shift.start and k < shift.end
    n_run = 2 if can_run else 1
    n_uv = n_lv + 1 if layer == CONNECTED else 1
    best, best_ue, best_uv, best_run = np.inf, 0.0, 0.0, 0
    for a in range(n_lv + 1):
        ue, y_e, c_e, deg_e = _move(law_ue if a == n_lv else levels[a], b_e, ess, dt_h)
        for b in range(n_uv):
            uv, y_v, c_v, deg_v = 0.0, b_v, 0.0, 0.0
            if layer == CONNECTED:
                uv, y_v, c_v, deg_v = _move(law_uv if b == n_lv else levels[b], b_v, ev, dt_h)
            for run in range(n_run):
                c = c_e + run * shift.power_kw * dt_h
                cont = w_conn if layer == CONNECTED else w_away
                stay = (
                    law_control(g[k], g_first, g_spacing, c + c_v)
                    + deg_v
                    + _bilinear(cont, grid, y_e, y_v, r - run)
                )
                total = deg_e + stay
                if layer == CONNECTED and leave > 0.0:
                    gone = 0.0
                    for n in range(fractions.shape[0]):
                        f = fractions[n]
                        y_f = within_bounds(ev, b_v + f * (y_v - b_v))
                        gone += fraction_weights[n] * (
                            law_control(g[k], g_first, g_spacing, c + f * c_v)
                            + f * deg_v
                            + _bilinear(w_depart, grid, y_e, y_f, r - run)
                        )
                    total = deg_e + (1.0 - leave) * stay + leave * gone
                if total < best:
                    best, best_ue, best_uv, best_run = total, ue, uv, run
    return best, best_ue, best_uv, best_run


@njit(cache=True)
def _expectations(
    value: np.ndarray,
    ha: float,
    tables: JointTransitions,
    w_conn: np.ndarray,
    w_away: np.ndarray,
    w_depart: np.ndarray,
) -> None:
    """Expected next value after a move (cf. eq. (22)), on the grid.

    ``w_conn``: plugged in through the step — SoE noise of both batteries.
    ``w_depart``: the EV left during the step — ESS noise; penalty and trip
    energy at its SoE of departure; away.
    ``w_away``: ESS noise; arrival with hazard ``ha`` plugs the EV in at its SoE.
    """
    e_idx, e_w = tables.ess_noise
    v_idx, v_w = tables.ev_noise
    trip_idx, trip_w = tables.ev_trips.trip
    depart_cost = tables.ev_trips.depart_cost
    n_e, n_v, _, n_r = value.shape
    back = np.empty((n_e, n_v, n_r))
    leave = np.empty((n_e, n_v, n_r))
    for a in range(n_e):
        for j in range(n_v):
            for r in range(n_r):
                trip = 0.0
                for t in range(trip_idx.shape[1]):
                    trip += trip_w[j, t] * value[a, trip_idx[j, t], AWAY, r]
                back[a, j, r] = ha * value[a, j, CONNECTED, r] + (1.0 - ha) * value[a, j, AWAY, r]
                leave[a, j, r] = depart_cost[j] + trip
    ev_noisy = np.zeros((n_e, n_v, n_r))
    for a in range(n_e):
        for j in range(n_v):
            for q in range(v_idx.shape[1]):
                for r in range(n_r):
                    ev_noisy[a, j, r] += v_w[j, q] * value[a, v_idx[j, q], CONNECTED, r]
    w_conn[:] = 0.0
    w_away[:] = 0.0
    w_depart[:] = 0.0
    for a in range(n_e):
        for q in range(e_idx.shape[1]):
            src, wt = e_idx[a, q], e_w[a, q]
            for j in range(n_v):
                for r in range(n_r):
                    w_conn[a, j, r] += wt * ev_noisy[src, j, r]
                    w_away[a, j, r] += wt * back[src, j, r]
                    w_depart[a, j, r] += wt * leave[src, j, r]


@njit(parallel=True, cache=True)
def joint_backward(
    stage: StageTable,
    law_ue: np.ndarray,
    law_uv: np.ndarray,
    ess: Battery,
    ev: Battery,
    shift: ShiftableWindow,
    grid: JointGrid,
    tables: JointTransitions,
    w_conn: np.ndarray,
    w_away: np.ndarray,
    w_depart: np.ndarray,
    value0: np.ndarray,
) -> None:
    """Backward induction over the joint state (HJB eq. (22) for the household as a whole).

    Parameters
    ----------
    stage
        ``g_k(c)``, the stage cost of the controlled exchange.
    law_ue, law_uv
        The law's ESS / EV controls at the grid points, ``(K, S_e)`` / ``(K, S_v)``.
    ess, ev, shift, grid
        The deviator's devices and DP grid (:class:`DeviatorDevices`).
    tables
        SoE grids and noise maps, the EV's chain (:class:`models.kernels.EVTrips`,
        as in :func:`models.kernels.battery_backward`) and the end-of-day penalty.
    w_conn, w_away, w_depart
        Outputs ``(K, S_e, S_v, R+1)``: expected continuation after the move at
        each step, EV plugged in / away / leaving — what :func:`joint_choice`
        needs online.
    value0
        Output ``(S_e, S_v, 2, R+1)``: cost-to-go at ``k = 0``.
    """
    n_steps = stage.g.shape[0]
    # numba's parallel loop takes no nested tuple: unpack the tables before it
    e_soe, v_soe = tables.ess_soe, tables.ev_soe
    trips = tables.ev_trips
    leave, fractions, fraction_weights = trips.depart, trips.leave_at, trips.leave_w
    n_e, n_v = e_soe.shape[0], v_soe.shape[0]
    value = tables.terminal.copy()
    for k in range(n_steps - 1, -1, -1):
        _expectations(value, trips.arrive[k], tables, w_conn[k], w_away[k], w_depart[k])
        step = StepContinuation(
            w_conn[k], w_away[k], w_depart[k], leave[k], fractions[k], fraction_weights[k]
        )
        new = np.empty_like(value)
        n_r = value.shape[3]
        for a in prange(n_e):
            for j in range(n_v):
                for layer in range(2):
                    for r in range(n_r):
                        new[a, j, layer, r] = joint_choice(
                            JointState(k, e_soe[a], v_soe[j], layer, r), law_ue[k, a],
                            law_uv[k, j], stage, step, ess, ev, shift, grid,
                        )[0]  # fmt: skip
        value = new
    value0[:] = value
