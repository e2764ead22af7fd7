"""The deviator's exact best response over all its devices (local information, SPEC §7).

With the others playing the law, the deviating household ``i`` of cluster ``p``
faces the stage cost ``E[x · π_p(m^{−i} + x/(N_p Δt))]`` of its total exchange
``x`` over an interval — nonlinear in ``x`` through its own term, so its
devices no longer decouple as they do in the mean field. Its best response is
the dynamic program over its **joint** state

    (ESS SoE, EV SoE, EV plugged in / away, shiftable quanta left)

with every control at once: ESS and EV set-points, whether the shiftable
appliance runs, and the controllable-load setting (static, minimised inside the
stage cost). Transitions are the mean-field model's (the same grids, SoE noise
maps, in-step departures, trip/arrival chain and penalties as
:mod:`models.kernels`, eq. (22)), applied device by device: the devices'
randomness is independent, so the expectation of the joint continuation is a
tensor product of their row-stochastic maps. For a price-taker (``N_p → ∞``)
the DP reproduces :func:`models.response.best_response` exactly (tested).

Controls: each battery's set-point from ``levels`` values in ``[−1, 1]`` plus
the law's own control at that state (clipped to what the bounds allow, as the
HEMS does); the shiftable appliance runs or waits; the controllable setting
from ``levels`` values plus the law's. The law's full control is always a
candidate, so on the grid the DP never does worse than the law.

Stage cost: ``g_k(c) = min_{u_c} f_k(c + e_c(u_c)) + κ_c u_c² Δt`` with
``f_k(x) = mean_s (x_s^exo + x) · π_p(k; m_s + (x_s^exo + x − own_s)/(N_p Δt))``,
the mean over the build samples ``s`` of the others' cluster means (the
realised ``m_s`` with the deviator's own law exchange ``own_s`` taken out) and
of the deviator's own base load − PV ``x_s^exo``. ``f`` is tabulated on a fine
grid of the controlled exchange and interpolated linearly (exact where the
price is flat, and ``O(h² π'/N_p)`` otherwise).

In the co-simulation the deviator re-solves the one-step problem at its actual
(continuous) state each control step — the argmin of stage cost plus the
interpolated continuation — exactly as the DP does at grid points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from cosim.sim.hems import law_control
from market.pricing import Mode, mode_weights, price_curve
from models.battery import Battery, clipped_move, grid_power, wear, within_bounds
from models.game import Game

#: Set-points of each battery considered at every state (plus the law's own control).
CONTROL_LEVELS = 21
#: Settings of the controllable load considered (plus the law's).
CTRL_LEVELS = 81
#: Spacing of the grid on which the stage cost ``g_k`` is tabulated [kWh].
STAGE_SPACING_KWH = 0.01
#: Layers of the EV dimension.
AWAY, CONNECTED = 0, 1


def cluster_stage_price(
    game: Game, mode: Mode, k: int, p: int, m: np.ndarray, p_g: np.ndarray | float | None = None
) -> np.ndarray:
    """``π_p(k)`` for cluster means ``m`` of shape ``(..., M)`` — the engine's clearing rule.

    ``p_g`` is the grid price, broadcast against ``m[..., p]`` (default: the
    game's; with a wholesale link, the realised LMP + adder of each sample).
    """
    cp = game.clusters
    pr = game.config.prices
    p_g = float(game.grid_price[k]) if p_g is None else p_g
    rpc = price_curve(
        m[..., p], p_g, cp.rpc_network_charge[p], cp.rpc_slope[p], pr.rpc.floor, pr.rpc.smoothing
    )
    seen = (m * cp.shares) @ game.weights.T  # A_q = Σ_r W_qr λ_r m_r
    agg = seen[..., p] if pr.coc_aggregate == "per_cluster" else seen @ cp.shares
    coc = price_curve(
        agg, p_g, cp.coc_network_charge[p], cp.coc_slope[p], pr.coc.floor, pr.coc.smoothing
    )
    w = mode_weights(mode, pr.weights, game.step_hours)[k]
    return w[0] * rpc + w[1] * coc + w[2] * p_g


# --------------------------------------------------------------------------- compiled core


@njit(cache=True)
def _bilinear(
    w: np.ndarray, e0: float, e_inv: float, v0: float, v_inv: float, y_e: float, y_v: float, r: int
) -> float:
    """Bilinear interpolation of ``w[:, :, r]`` at ``(y_e, y_v)`` (clamped to the grid)."""
    n_e, n_v = w.shape[0], w.shape[1]
    pe = min(max((y_e - e0) * e_inv, 0.0), n_e - 1.0)
    je = min(int(pe), max(n_e - 2, 0))
    we = pe - je if n_e > 1 else 0.0
    pv = min(max((y_v - v0) * v_inv, 0.0), n_v - 1.0)
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
    k: int,
    b_e: float,
    b_v: float,
    layer: int,
    r: int,
    law_ue: float,
    law_uv: float,
    levels: np.ndarray,
    g: np.ndarray,
    g_first: float,
    g_spacing: float,
    w_conn: np.ndarray,
    w_away: np.ndarray,
    w_depart: np.ndarray,
    leave: float,
    fractions: np.ndarray,
    fraction_weights: np.ndarray,
    e_grid: np.ndarray,
    v_grid: np.ndarray,
    ess: Battery,
    ev: Battery,
    shift: np.ndarray,
    dt_h: float,
) -> tuple[float, float, float, int]:
    """The best joint control at one state of step ``k``: ``(cost, u_ess, u_ev, run)``.

    Minimises stage cost ``g_k(c)`` of the controlled exchange ``c`` (the
    controllable load already minimised inside it) + battery degradation
    ``κ u² Δt`` + the expected continuation after the move, ``w_conn`` (EV
    plugged in through the step) or ``w_away`` (the EV away keeps its SoE),
    interpolated at the moved SoEs. A plugged-in EV leaves during the step
    with probability ``leave``, after the fraction ``F`` of the step
    (quadrature ``fractions``/``fraction_weights``): it then charged, paid and
    wore for ``F·Δt`` only, and continues with ``w_depart`` (penalty, trip,
    away) at its SoE of departure. ``ess``/``ev`` are the deviator's
    batteries (:mod:`models.battery`); ``shift`` is ``[window start, window
    end, power kW]``; the grids are ``[first point, 1/spacing]``.
    """
    n_lv = levels.shape[0]
    can_run = r > 0 and k >= shift[0] and k < shift[1]
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
                c = c_e + run * shift[2] * dt_h
                cont = w_conn if layer == CONNECTED else w_away
                stay = (
                    law_control(g[k], g_first, g_spacing, c + c_v)
                    + deg_v
                    + _bilinear(cont, e_grid[0], e_grid[1], v_grid[0], v_grid[1], y_e, y_v, r - run)
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
                            + _bilinear(
                                w_depart, e_grid[0], e_grid[1], v_grid[0], v_grid[1], y_e, y_f,
                                r - run,
                            )
                        )  # fmt: skip
                    total = deg_e + (1.0 - leave) * stay + leave * gone
                if total < best:
                    best, best_ue, best_uv, best_run = total, ue, uv, run
    return best, best_ue, best_uv, best_run


@njit(cache=True)
def _expectations(
    value: np.ndarray,
    ha: float,
    e_idx: np.ndarray,
    e_w: np.ndarray,
    v_idx: np.ndarray,
    v_w: np.ndarray,
    depart_cost: np.ndarray,
    trip_idx: np.ndarray,
    trip_w: np.ndarray,
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
    g: np.ndarray,
    g_first: float,
    g_spacing: float,
    law_ue: np.ndarray,
    law_uv: np.ndarray,
    levels: np.ndarray,
    e_soe: np.ndarray,
    v_soe: np.ndarray,
    ess: Battery,
    ev: Battery,
    shift: np.ndarray,
    dt_h: float,
    e_idx: np.ndarray,
    e_w: np.ndarray,
    v_idx: np.ndarray,
    v_w: np.ndarray,
    leave: np.ndarray,
    fractions: np.ndarray,
    fraction_weights: np.ndarray,
    depart_cost: np.ndarray,
    trip_idx: np.ndarray,
    trip_w: np.ndarray,
    arrive: np.ndarray,
    terminal: np.ndarray,
    w_conn: np.ndarray,
    w_away: np.ndarray,
    w_depart: np.ndarray,
    value0: np.ndarray,
) -> None:
    """Backward induction over the joint state (HJB eq. (22) for the household as a whole).

    Parameters
    ----------
    g
        Stage cost ``g_k(c)`` on the grid ``g_first + j·g_spacing``, ``(K, C)`` [$].
    law_ue, law_uv
        The law's ESS / EV controls at the grid points, ``(K, S_e)`` / ``(K, S_v)``.
    levels
        Battery set-points tried at every state.
    e_soe, v_soe
        The grids (``v_soe`` has one point for a household without an EV).
    leave, fractions, fraction_weights
        Probability of leaving during step ``k`` ``(K,)``, and where in the
        step: fractions and weights ``(K, G)`` (:attr:`models.grids.BatteryGrid.leave_at`).
    terminal
        ``Φ`` at the end of the day, ``(S_e, S_v, 2, R+1)`` [$] (end-of-day
        penalties of both batteries and the shiftable appliance's shortfall).
    w_conn, w_away, w_depart
        Outputs ``(K, S_e, S_v, R+1)``: expected continuation after the move at
        each step, EV plugged in / away / leaving — what :func:`joint_choice`
        needs online.
    value0
        Output ``(S_e, S_v, 2, R+1)``: cost-to-go at ``k = 0``.

    Other parameters are those of :func:`joint_choice` and
    :func:`models.kernels.battery_backward`.
    """
    n_steps = g.shape[0]
    n_e, n_v = e_soe.shape[0], v_soe.shape[0]
    n_r = terminal.shape[3]
    e_grid = np.array([e_soe[0], 1.0 / (e_soe[1] - e_soe[0]) if n_e > 1 else 1.0])
    v_grid = np.array([v_soe[0], 1.0 / (v_soe[1] - v_soe[0]) if n_v > 1 else 1.0])
    value = terminal.copy()
    for k in range(n_steps - 1, -1, -1):
        _expectations(
            value, arrive[k], e_idx, e_w, v_idx, v_w, depart_cost, trip_idx, trip_w,
            w_conn[k], w_away[k], w_depart[k],
        )  # fmt: skip
        new = np.empty_like(value)
        for a in prange(n_e):
            for j in range(n_v):
                for layer in range(2):
                    for r in range(n_r):
                        new[a, j, layer, r] = joint_choice(
                            k, e_soe[a], v_soe[j], layer, r, law_ue[k, a], law_uv[k, j], levels,
                            g, g_first, g_spacing, w_conn[k], w_away[k], w_depart[k], leave[k],
                            fractions[k], fraction_weights[k], e_grid, v_grid, ess, ev, shift,
                            dt_h,
                        )[0]  # fmt: skip
        value = new
    value0[:] = value


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class JointPolicy:
    """One deviator type's joint best response: what its HEMS needs to act online."""

    has_ev: bool
    exchange: np.ndarray
    """``f_k(x)``: expected bill of a controlled exchange ``x``, ``(K, X)`` [$]."""
    stage: np.ndarray
    """``g_k(c)``: ``f_k`` with the controllable load chosen, ``(K, C)`` [$]."""
    grid: tuple[float, float]
    """``(first point, spacing)`` of both tables' grid [kWh]."""
    ctrl_u: np.ndarray
    """Candidate controllable settings ``u_c`` per step, ``(K, U_c)``."""
    ctrl_energy: np.ndarray
    """Their energies [kWh], ``(K, U_c)``."""
    discomfort: float
    """``κ_c Δt`` [$]."""
    w_conn: np.ndarray
    """Expected continuation after the move, EV plugged in, ``(K, S_e, S_v, R+1)`` [$]."""
    w_away: np.ndarray
    """The same with the EV away (or no EV)."""
    w_depart: np.ndarray
    """The same for an EV that leaves during the step, at its SoE of departure."""
    leave: np.ndarray
    """Probability of leaving during step ``k`` if plugged in at its start, ``(K,)``."""
    fractions: np.ndarray
    """Quadrature of the fraction of the step before leaving: nodes ``(K, G)`` ..."""
    fraction_weights: np.ndarray
    """... and weights ``(K, G)``."""
    value0: np.ndarray
    """Cost-to-go at ``k = 0`` over the joint grid, ``(S_e, S_v, 2, R+1)`` [$]."""
    grids: np.ndarray
    """``[[ESS first, 1/spacing], [EV first, 1/spacing]]``."""
    devices: tuple[Battery, Battery]
    """The ESS and the EV (:mod:`models.battery`)."""
    shift: np.ndarray
    """``[window start, window end, power kW]``."""
    dt_h: float

    def act(
        self, k: int, ess_soe: float, ev_soe: float, connected: bool, left: int,
        law_ue: float, law_uv: float,
    ) -> tuple[float, float, float, float]:  # fmt: skip
        """The deviator's controls at its actual state: ``(u_ess, u_ev, run, u_c)``.

        The one-step problem of the DP at a continuous state (law controls
        ``law_ue``/``law_uv`` at that state are candidates too); the
        controllable setting minimises ``f_k`` given the other devices' exchange.
        """
        layer = CONNECTED if (self.has_ev and connected) else AWAY
        _, ue, uv, run = joint_choice(
            k, ess_soe, ev_soe if self.has_ev else 0.0, layer, left, law_ue, law_uv,
            np.linspace(-1.0, 1.0, CONTROL_LEVELS), self.stage, self.grid[0], self.grid[1],
            self.w_conn[k], self.w_away[k], self.w_depart[k], float(self.leave[k]),
            self.fractions[k], self.fraction_weights[k], self.grids[0], self.grids[1],
            self.devices[0], self.devices[1], self.shift, self.dt_h,
        )  # fmt: skip
        ess, ev = self.devices
        c = self.dt_h * (grid_power(ess, ue) + grid_power(ev, uv) + run * self.shift[2])
        points = self.grid[0] + self.grid[1] * np.arange(self.exchange.shape[1])
        bill = np.interp(c + self.ctrl_energy[k], points, self.exchange[k])
        u_c = self.ctrl_u[k, int(np.argmin(bill + self.discomfort * self.ctrl_u[k] ** 2))]
        return float(ue), float(uv), float(run), float(u_c)


@dataclass(frozen=True)
class JointDeviation:
    """A cluster's deviator policies: one for an EV owner, one for a household without."""

    cluster: int
    with_ev: JointPolicy
    without_ev: JointPolicy

    def policy(self, has_ev: bool) -> JointPolicy:
        """The policy of a deviator that owns an EV or not."""
        return self.with_ev if has_ev else self.without_ev


def exchange_cost(
    game: Game, mode: Mode, p: int, k: int, rows: pd.DataFrame, households: int, x: np.ndarray
) -> np.ndarray:
    """``f_k(x)``: the deviator's expected bill at step ``k`` for controlled exchanges ``x`` [$].

    The mean over the build samples of ``(x^exo + x)·π_p(m^{−i} + (x^exo + x)/(N_p Δt))``,
    its own exchange inside its cluster's mean (the engine's clearing rule), at
    each sample's grid price.
    """
    dt = game.dt_h
    at = rows[rows["step"] == k]
    m = at[[f"m_{q}" for q in range(game.n_clusters)]].to_numpy()  # (n, M)
    own = at["own_kwh"].to_numpy()
    total = at["own_exo_kwh"].to_numpy()[None, :] + x[:, None]  # (X, n)
    shifted = np.broadcast_to(m, (*total.shape, game.n_clusters)).copy()
    shifted[..., p] += (total - own[None, :]) / (households * dt)
    p_g = sampled_grid_price(game, k, at)
    return np.mean(total * cluster_stage_price(game, mode, k, p, shifted, p_g), axis=1)


def sampled_grid_price(game: Game, k: int, at: pd.DataFrame) -> np.ndarray | None:
    """The realised ``p_G`` of each sample at step ``k`` with a wholesale link, else ``None``.

    The deviator's own exchange moves the LMP by ``∂LMP/∂D · x/1000``: one
    household against a bus of thousands — left out (the own term stays in its
    cluster's RPC and CoC prices).
    """
    if game.wholesale is None or "p_grid" not in at:
        return None
    return at["p_grid"].to_numpy()


def joint_policy(
    game: Game,
    mode: Mode,
    law_policy,
    p: int,
    rows: pd.DataFrame,
    households: int,
    has_ev: bool,
) -> JointPolicy:
    """The exact joint best response of a deviator of cluster ``p`` that owns an EV or not.

    Parameters
    ----------
    game, mode
        The game and its price design.
    law_policy
        The law the others play (:class:`models.response.Policy`); its controls
        are candidates at every state.
    p
        The deviator's cluster.
    rows
        Build samples of that cluster (columns ``step``, ``m_q``, ``own_kwh``,
        ``own_exo_kwh``), see :class:`cosim.studies.epsilon.SampleOthers`.
    households
        ``N_p``.
    has_ev
        Whether the deviator owns an EV.
    """
    hh = game.config.household
    dt = game.dt_h
    k_steps = game.steps
    cc = hh.controllable
    ctrl_kw = cc.duty * cc.power_kw
    h = STAGE_SPACING_KWH
    lo = -dt * (hh.ess.discharge_kw + hh.ev.discharge_kw)
    n_c = (
        int(np.ceil(dt * (hh.ess.charge_kw + hh.ev.charge_kw + hh.shiftable.power_kw) / h - lo / h))
        + 2
    )
    n_x = n_c + int(np.ceil(2.0 * ctrl_kw * dt / h)) + 1
    x = lo + h * np.arange(n_x)
    f = np.stack([exchange_cost(game, mode, p, k, rows, households, x) for k in range(k_steps)])
    law_ctrl = np.asarray(law_policy.controllable[p], dtype=float)
    u_c = np.concatenate(
        [np.broadcast_to(np.linspace(-1.0, 1.0, CTRL_LEVELS), (k_steps, CTRL_LEVELS)),
         law_ctrl[:, None]],
        axis=1,
    )  # fmt: skip
    e_c = ctrl_kw * (1.0 + u_c) * dt
    pos = (e_c[:, None, :] / h) + np.arange(n_c)[None, :, None]  # c_j + e_c on the x grid
    j = np.minimum(np.floor(pos).astype(np.int64), n_x - 2)
    w = pos - j
    k_idx = np.arange(k_steps)[:, None, None]
    bills = (1.0 - w) * f[k_idx, j] + w * f[k_idx, j + 1]
    g = np.min(bills + cc.discomfort * dt * u_c[:, None, :] ** 2, axis=2)  # (K, C)

    e = game.ess
    n_r = game.shiftable_quanta + 1
    quantum = hh.shiftable.power_kw * dt
    if has_ev:
        v = game.ev
        v_soe, v_idx, v_w = v.soe, v.noise_idx, v.noise_w
        leave, fractions, fraction_weights = v.depart, v.leave_at, v.leave_w
        depart_cost, trip_idx, trip_w, arrive = v.depart_cost, v.trip_idx, v.trip_w, v.arrive
        term_v = v.terminal
        law_uv = np.ascontiguousarray(law_policy.ev[p])
    else:  # one dummy EV point, always away, never arriving, costing nothing
        v_soe = np.zeros(1)
        v_idx, v_w = np.zeros((1, 1), np.int64), np.ones((1, 1))
        leave, arrive = np.zeros(k_steps), np.zeros(k_steps)
        fractions, fraction_weights = np.ones((k_steps, 1)), np.ones((k_steps, 1))
        depart_cost, trip_idx, trip_w = np.zeros(1), np.zeros((1, 1), np.int64), np.ones((1, 1))
        term_v = np.zeros(1)
        law_uv = np.zeros((k_steps, 1))
    terminal = np.broadcast_to(
        e.terminal[:, None, None, None]
        + term_v[None, :, None, None]
        + hh.shiftable.shortfall_penalty * quantum * np.arange(n_r)[None, None, None, :],
        (len(e.soe), len(v_soe), 2, n_r),
    )
    shape = (k_steps, len(e.soe), len(v_soe), n_r)
    w_conn, w_away, w_depart = np.empty(shape), np.empty(shape), np.empty(shape)
    value0 = np.empty((len(e.soe), len(v_soe), 2, n_r))
    law_ue = np.ascontiguousarray(law_policy.ess[p])
    devices = (e.battery, game.ev.battery)
    shift = np.array([*game.shiftable_window, hh.shiftable.power_kw], dtype=float)
    grid = (float(lo), h)
    joint_backward(
        np.ascontiguousarray(g), grid[0], grid[1], law_ue, law_uv,
        np.linspace(-1.0, 1.0, CONTROL_LEVELS), e.soe, v_soe, devices[0], devices[1], shift, dt,
        e.noise_idx, e.noise_w, v_idx, v_w, leave, fractions, fraction_weights,
        depart_cost, trip_idx, trip_w, arrive, np.ascontiguousarray(terminal), w_conn, w_away,
        w_depart, value0,
    )  # fmt: skip
    grids = np.array(
        [
            [e.soe[0], 1.0 / e.spacing],
            [v_soe[0], 1.0 / (v_soe[1] - v_soe[0]) if len(v_soe) > 1 else 1.0],
        ]
    )
    return JointPolicy(
        has_ev, f, g, grid, u_c, e_c, cc.discomfort * dt, w_conn, w_away, w_depart, leave,
        fractions, fraction_weights, value0, grids, devices, shift, dt,
    )  # fmt: skip
