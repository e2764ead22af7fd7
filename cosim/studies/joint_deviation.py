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

from cosim.studies.joint_kernels import (
    AWAY,
    CONNECTED,
    DeviatorDevices,
    JointGrid,
    JointState,
    JointTransitions,
    StageTable,
    StepContinuation,
    joint_backward,
    joint_choice,
)
from market.clearing import clear_prices
from market.pricing import Mode, mode_weights
from models.battery import grid_power
from models.game import Game
from models.kernels import EVTrips, RowMap
from models.shiftable_kernels import ShiftableWindow

#: Set-points of each battery considered at every state (plus the law's own control).
CONTROL_LEVELS = 21
#: Settings of the controllable load considered (plus the law's).
CTRL_LEVELS = 81
#: Spacing of the grid on which the stage cost ``g_k`` is tabulated [kWh].
STAGE_SPACING_KWH = 0.01


def cluster_stage_price(
    game: Game, mode: Mode, k: int, p: int, m: np.ndarray, p_g: np.ndarray | float | None = None
) -> np.ndarray:
    """``π_p(k)`` for cluster means ``m`` of shape ``(..., M)`` — the engine's clearing rule.

    ``p_g`` is the grid price, broadcast against ``m[..., p]`` (default: the
    game's; with a wholesale link, the realised LMP + adder of each sample).
    """
    p_g = float(game.grid_price[k]) if p_g is None else p_g
    w = mode_weights(mode, game.config.prices.weights, game.step_hours)[k]
    return clear_prices(game.clearing, np.moveaxis(m, -1, 0), p_g, w, cluster=p).stage


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
    devices: DeviatorDevices
    """The deviator's batteries, shiftable appliance, step, set-points tried and SoE grids."""

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
        state = JointState(k, ess_soe, ev_soe if self.has_ev else 0.0, layer, left)
        step = StepContinuation(
            self.w_conn[k], self.w_away[k], self.w_depart[k], float(self.leave[k]),
            self.fractions[k], self.fraction_weights[k],
        )  # fmt: skip
        stage = StageTable(self.stage, *self.grid)
        _, ue, uv, run = joint_choice(state, law_ue, law_uv, stage, step, *self.devices)
        dev = self.devices
        c = dev.grid.dt_h * (
            grid_power(dev.ess, ue) + grid_power(dev.ev, uv) + run * dev.shift.power_kw
        )
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


def _ev_tables(game: Game, has_ev: bool) -> tuple[np.ndarray, RowMap, EVTrips, np.ndarray]:
    """``(SoE grid, noise map, trips, end-of-day penalty)`` of the deviator's EV.

    Without an EV: one dummy point, always away, never arriving, costing nothing.
    """
    if has_ev:
        v = game.ev
        return v.soe, v.tables.noise, v.tables.trips, v.terminal
    k_steps = game.steps
    stay = RowMap(np.zeros((1, 1), np.int64), np.ones((1, 1)))
    trips = EVTrips(
        depart=np.zeros(k_steps),
        leave_at=np.ones((k_steps, 1)),
        leave_w=np.ones((k_steps, 1)),
        depart_cost=np.zeros(1),
        trip=stay,
        arrive=np.zeros(k_steps),
    )
    return np.zeros(1), stay, trips, np.zeros(1)


def _deviator_devices(game: Game, v_soe: np.ndarray) -> DeviatorDevices:
    """The deviator's batteries and shiftable appliance, and its DP grid on ``v_soe``."""
    e = game.ess
    return DeviatorDevices(
        ess=e.battery,
        ev=game.ev.battery,
        shift=ShiftableWindow(
            *game.shiftable_window, float(game.config.household.shiftable.power_kw)
        ),
        grid=JointGrid(
            dt_h=game.dt_h,
            levels=np.linspace(-1.0, 1.0, CONTROL_LEVELS),
            ess_first=float(e.soe[0]),
            ess_inv_spacing=1.0 / e.spacing,
            ev_first=float(v_soe[0]),
            ev_inv_spacing=1.0 / float(v_soe[1] - v_soe[0]) if len(v_soe) > 1 else 1.0,
        ),
    )


def _stage_costs(
    game: Game, mode: Mode, p: int, rows: pd.DataFrame, households: int, law_ctrl: np.ndarray
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The deviator's stage cost tables: ``f_k`` on the exchange grid, ``g_k`` on the
    controlled-exchange grid with the controllable setting minimised inside.

    Returns ``(lo, h, f, g, u_c, e_c)``: the grid's first point and spacing
    [kWh], ``f`` ``(K, X)``, ``g`` ``(K, C)``, the controllable settings
    considered ``u_c`` ``(K, U)`` (the law's last) and their energies ``e_c``.
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
    return lo, h, f, g, u_c, e_c


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
    law_ctrl = np.asarray(law_policy.controllable[p], dtype=float)
    lo, h, f, g, u_c, e_c = _stage_costs(game, mode, p, rows, households, law_ctrl)

    e = game.ess
    n_r = game.shiftable_quanta + 1
    quantum = hh.shiftable.power_kw * dt
    v_soe, v_noise, v_trips, term_v = _ev_tables(game, has_ev)
    if has_ev:
        law_uv = np.ascontiguousarray(law_policy.ev[p])
    else:
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
    devices = _deviator_devices(game, v_soe)
    grid = (float(lo), h)
    joint_backward(
        StageTable(np.ascontiguousarray(g), *grid),
        law_ue,
        law_uv,
        *devices,
        JointTransitions(
            ess_soe=e.soe,
            ev_soe=v_soe,
            ess_noise=e.tables.noise,
            ev_noise=v_noise,
            ev_trips=v_trips,
            terminal=np.ascontiguousarray(terminal),
        ),
        w_conn,
        w_away,
        w_depart,
        value0,
    )
    return JointPolicy(
        has_ev, f, g, grid, u_c, e_c, cc.discomfort * dt, w_conn, w_away, w_depart,
        v_trips.depart, v_trips.leave_at, v_trips.leave_w, value0, devices,
    )  # fmt: skip
