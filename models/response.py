"""Best responses (HJB) and population flows (FPK) for given price paths.

Given stage prices ``π_p(k)``, the household problem decouples by device
(SPEC §1): the home ESS, the EV (SoE × connected), the shiftable appliance
(remaining energy) and the controllable load (static). :func:`best_response`
solves each device's dynamic program; :func:`population_flow` pushes the
population law of each device through a policy and returns the expected
powers and costs the prices need. All flow quantities are linear in the
population, so a mixture of populations is the same mixture of their flows
(what fictitious play averages).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from market.pricing import Mode, mode_weights
from models import devices, kernels, shiftable_kernels
from models.game import Game, Prices
from models.grids import BatteryGrid


@dataclass(frozen=True)
class Policy:
    """A Markov policy of every cluster's representative household."""

    ess: np.ndarray
    """ESS control ``u ∈ [-1, 1]`` per ``(cluster, step, SoE grid point)``, ``(M, K, S)``."""
    ev: np.ndarray
    """EV control while connected, ``(M, K, S)``."""
    shiftable_run: np.ndarray
    """Probability of running the shiftable appliance at ``(cluster, step, quanta left)``."""
    controllable: np.ndarray
    """Controllable-load setting ``u_c ∈ [-1, 1]``, ``(M, K)``."""


@dataclass(frozen=True)
class Flow:
    """Expected behaviour of a population, per household of each cluster.

    Powers are in kW with shape ``(M, K)`` (the EV's include the EV share);
    ``*_cost`` are expected non-energy costs over the day [$] (degradation,
    discomfort, penalties) with shape ``(M,)``.
    """

    exogenous_kw: np.ndarray
    """Base load minus PV."""
    ess_kw: np.ndarray
    ev_kw: np.ndarray
    shiftable_kw: np.ndarray
    controllable_kw: np.ndarray
    ess_cost: np.ndarray
    ev_cost: np.ndarray
    shiftable_cost: np.ndarray
    controllable_cost: np.ndarray
    ess_density: np.ndarray | None
    """``(M, K+1, S)``; ``None`` in a fixed-point mixture, which needs no densities."""
    ev_density: np.ndarray | None
    """Connected EVs, ``(M, K+1, S)``, per EV owner."""
    ev_away_density: np.ndarray | None
    shiftable_occupancy: np.ndarray
    """``(M, K+1, R+1)``."""
    shiftable_running: np.ndarray
    """Mass running at ``(k, r)``, ``(M, K, R+1)``."""

    @property
    def net_kw(self) -> np.ndarray:
        """Mean net exchange ``m_p(k)`` [kW] — eq. (16); positive = buying."""
        return (
            self.exogenous_kw + self.ess_kw + self.ev_kw + self.shiftable_kw + self.controllable_kw
        )

    @property
    def other_cost(self) -> np.ndarray:
        """Expected non-energy cost over the day [$], ``(M,)``."""
        return self.ess_cost + self.ev_cost + self.shiftable_cost + self.controllable_cost

    def mix(self, other: Flow, step: float, shiftable_step: float | None = None) -> Flow:
        """The flow of the mixture ``(1 − step)·self + step·other``.

        The shiftable appliance's fields may move with their own step: the
        devices are decoupled given the prices, so each device's population
        can be a different mixture of past responses.
        """
        mixed: dict[str, Any] = {}  # Flow's fields: arrays, or None where left out
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is None or theirs is None:
                mixed[f.name] = None
                continue
            r = step
            if shiftable_step is not None and f.name.startswith("shiftable"):
                r = shiftable_step
            mixed[f.name] = (1.0 - r) * mine + r * theirs
        return Flow(**mixed)

    def without_densities(self) -> Flow:
        """The same flow without the battery densities (all a fixed-point mixture needs)."""
        return replace(self, ess_density=None, ev_density=None, ev_away_density=None)

    def cost(self, stage_price: np.ndarray, dt_h: float) -> np.ndarray:
        """Expected daily cost per household under ``stage_price`` [$], ``(M,)`` — eq. (21)."""
        return dt_h * np.sum(stage_price * self.net_kw, axis=1) + self.other_cost


def best_response(
    game: Game, stage_price: np.ndarray, smooth: bool | None = None
) -> tuple[Policy, np.ndarray]:
    """Optimal policy of every cluster's household facing ``stage_price`` (HJB, eq. (22)).

    ``smooth`` chooses the battery HJB's interpolation (cubic when true,
    :mod:`models.cubic`); by default the game's ``solver.continuation``.

    Returns
    -------
    tuple
        The policy and its expected daily cost per household [$], ``(M,)``: the
        optimal cost in the grid's chain, read off the value functions (linear);
        or the cubic law's cost pushed through the chain's transport.
    """
    m, k = stage_price.shape
    price = np.ascontiguousarray(stage_price, dtype=float)
    controls = []
    values = []
    if smooth is None:
        smooth = game.config.solver.continuation == "cubic"
    for grid in (game.ess, game.ev):
        s = len(grid.soe)
        value = np.empty((m, k + 1, s))
        value_away = np.empty((m, k + 1, s))
        control = np.empty((m, k, s))
        kernels.battery_backward(
            price, game.dt_h, grid.battery, grid.tables, value, value_away, control, smooth
        )
        controls.append(control)
        if smooth:  # the cost of the policy through the transport, not the cubic value
            _, _, power, other = _grid_flow(game.dt_h, grid, control)
            values.append(game.dt_h * np.sum(price * power, axis=1) + other)
        else:  # the exact dynamic program of the grid's chain: its value is that cost
            values.append(value[:, 0, :] @ grid.initial)

    sh = game.config.household.shiftable
    quantum = sh.power_kw * game.dt_h
    sh_value = np.empty((m, k + 1, game.shiftable_quanta + 1))
    run = np.empty((m, k, game.shiftable_quanta + 1), dtype=np.int8)
    shiftable_kernels.shiftable_backward(
        price, quantum, *game.shiftable_window, sh.shortfall_penalty * quantum, sh_value, run
    )

    cc = game.config.household.controllable
    u_c = devices.controllable_response(price, cc.power_kw, cc.duty, cc.discomfort)
    ctrl_cost = game.dt_h * np.sum(
        price * cc.duty * cc.power_kw * (1.0 + u_c) + cc.discomfort * u_c**2, axis=1
    )
    exogenous = game.dt_h * np.sum(price * game.exogenous_kw, axis=1)
    optimal = (
        exogenous
        + ctrl_cost
        + values[0]
        + game.clusters.ev_share * values[1]
        + sh_value[:, 0, game.shiftable_quanta]
    )
    policy = Policy(
        ess=controls[0], ev=controls[1], shiftable_run=run.astype(float), controllable=u_c
    )
    return policy, optimal


def _grid_flow(dt_h: float, grid: BatteryGrid, control: np.ndarray) -> tuple[np.ndarray, ...]:
    """Densities (connected, away), power and non-energy cost of one battery under ``control``."""
    m, k, s = control.shape
    density = np.empty((m, k + 1, s))
    away = np.empty((m, k + 1, s))
    power = np.empty((m, k))
    other = np.empty(m)
    kernels.battery_forward(
        control, grid.initial, dt_h, grid.battery, grid.tables, density, away, power, other
    )
    return density, away, power, other


def population_flow(game: Game, policy: Policy) -> Flow:
    """Push every device's population law through ``policy`` (FPK, eq. (28))."""
    ess_density, _, ess_kw, ess_other = _grid_flow(game.dt_h, game.ess, policy.ess)
    ev_density, ev_away, ev_kw, ev_other = _grid_flow(game.dt_h, game.ev, policy.ev)
    share = game.clusters.ev_share[:, None]

    m, k, levels = policy.shiftable_run.shape
    occupancy = np.empty((m, k + 1, levels))
    running = np.empty((m, k, levels))
    shiftable_kernels.shiftable_forward(
        np.ascontiguousarray(policy.shiftable_run), occupancy, running
    )
    sh = game.config.household.shiftable
    quantum = sh.power_kw * game.dt_h
    shiftable_kw = running.sum(axis=2) * sh.power_kw
    end = game.shiftable_window[1]
    shortfall = sh.shortfall_penalty * quantum * (occupancy[:, end, :] @ np.arange(levels))

    cc = game.config.household.controllable
    controllable_kw = cc.duty * cc.power_kw * (1.0 + policy.controllable)
    discomfort = game.dt_h * cc.discomfort * np.sum(policy.controllable**2, axis=1)

    return Flow(
        exogenous_kw=game.exogenous_kw,
        ess_kw=ess_kw,
        ev_kw=share * ev_kw,
        shiftable_kw=shiftable_kw,
        controllable_kw=controllable_kw,
        ess_cost=ess_other,
        ev_cost=share[:, 0] * ev_other,
        shiftable_cost=shortfall,
        controllable_cost=discomfort,
        ess_density=ess_density,
        ev_density=ev_density,
        ev_away_density=ev_away,
        shiftable_occupancy=occupancy,
        shiftable_running=running,
    )


@dataclass(frozen=True)
class ShiftableFlow:
    """The shiftable appliance's part of a :class:`Flow`."""

    kw: np.ndarray
    cost: np.ndarray
    occupancy: np.ndarray
    running: np.ndarray


def with_shiftable(flow: Flow, part: ShiftableFlow) -> Flow:
    """``flow`` with its shiftable-appliance fields replaced by ``part``."""
    return replace(
        flow,
        shiftable_kw=part.kw,
        shiftable_cost=part.cost,
        shiftable_occupancy=part.occupancy,
        shiftable_running=part.running,
    )


def shiftable_response(game: Game, mode: Mode, current: Flow, prices: Prices) -> ShiftableFlow:
    """The shiftable appliances' population response: the within-cluster Wardrop split.

    A single household's best response to fixed prices runs its appliance in
    the cheapest steps — all-or-nothing for identical households. The response
    of the cluster's population is the split over the window that equalises
    the cost of the steps used, with the local price reacting to the split
    (:func:`models.shiftable_kernels.shiftable_split`); everything else — the rest of the
    cluster's exchange and the inter-cluster price — is held at ``current``.
    At a fixed point every household's schedule is a best response.
    """
    m, k = current.net_kw.shape
    weights = mode_weights(mode, game.config.prices.weights, game.step_hours)
    p_g = game.grid_price[None, :]
    frozen = weights[None, :, 1] * prices.coc + weights[None, :, 2] * p_g
    sh = game.config.household.shiftable
    rpc = game.config.prices.rpc
    quanta = game.shiftable_quanta
    skip = sh.shortfall_penalty * sh.power_kw * game.dt_h
    share_run = np.empty((m, k))
    shiftable_kernels.shiftable_split(
        np.ascontiguousarray(current.net_kw - current.shiftable_kw),
        weights[:, 0].copy(),
        np.ascontiguousarray(frozen),
        shiftable_kernels.LocalPrice(
            grid_price=game.grid_price,
            network_charge=game.clusters.rpc_network_charge,
            slope=game.clusters.rpc_slope,
            floor=rpc.floor,
            smoothing=rpc.smoothing,
        ),
        shiftable_kernels.ShiftableWindow(*game.shiftable_window, sh.power_kw),
        game.dt_h,
        quanta,
        skip,
        shiftable_kernels.SplitSettings(
            game.config.solver.split_samples, game.config.solver.split_tie_cost
        ),
        share_run,
    )
    occupancy = np.empty((m, k + 1, quanta + 1))
    running = np.empty((m, k, quanta + 1))
    shiftable_kernels.shiftable_split_flow(share_run, occupancy, running)
    left = occupancy[:, game.shiftable_window[1], :] @ np.arange(quanta + 1)
    return ShiftableFlow(
        kw=share_run * sh.power_kw, cost=skip * left, occupancy=occupancy, running=running
    )
