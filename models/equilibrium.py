"""The GMFG equilibrium: fictitious play on the population, eq. (29) of Aziz et al.

The operator ``T: μ ↦ u* ↦ μ'`` is never iterated plainly (best responses
are nearly all-or-nothing, so the undamped map oscillates). Fictitious play
keeps a *mixture* population: each iteration computes the prices it induces,
the best response to them (HJB), that response's flow (FPK), and moves the
mixture toward it with step ``r_n = max(r_0/(1 + n/n_half), r_min)``. Two
residuals per iteration:

* ``price_residual`` — sup-norm change of ``p_RPC`` and ``p_CoC`` relative to
  the grid price (the paper's ``ε_con``);
* ``exploitability`` — per cluster, the expected daily cost of the mixture
  minus that of the best response, both at the mixture's prices, maximised
  over clusters [$ per household-day].

After the loop the mixture becomes the **feedback law** every HEMS applies:
batteries and the controllable load take the best response to the final
prices; the shiftable appliance keeps the mixture's randomised Markov policy
(identical agents cannot reach a pure equilibrium with a binary appliance).
The law is then evaluated on its own: its flow, its prices and its
exploitability are what the result reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from market.pricing import Mode
from models.exploitability import CONTINUOUS_REFINE, continuous_exploitability
from models.fixed_point import FixedPointRun, run_fixed_point
from models.game import Game, Prices, stage_prices
from models.graphon import monotonicity_eigenvalue
from models.response import (
    Flow,
    Policy,
    best_response,
    population_flow,
    shiftable_response,
    with_shiftable,
)
from models.result import EquilibriumResult


@dataclass(frozen=True)
class PlayState:
    """Fictitious-play iterate: the mixture's flow, its prices, the iteration count."""

    flow: Flow
    prices: Prices
    iteration: int
    last_policy: Policy
    game: Game
    """The game at the mixture's grid price (the LMP-based ``p_G`` when coupled)."""


class FictitiousPlay:
    """Damped fictitious play on the mixture population (SPEC §4)."""

    def __init__(self, game: Game, mode: Mode) -> None:
        self.game = game
        self.mode = mode
        self.solver = game.config.solver
        self.margin = 1.0
        """Multiple of the tolerances the iterates must meet (looser in the linear phase)."""
        self.smooth = False
        """Best responses with the cubic continuation (:mod:`models.cubic`): the second phase."""

    def step_size(self, n: int) -> float:
        """``r_n = max(r_0 / (1 + n / n_half), r_min)``."""
        s = self.solver
        return max(s.step_initial / (1.0 + n / s.step_half_life), s.step_min)

    def init_state(self) -> PlayState:
        """Start from the best response to the scenario's grid price alone."""
        flat = np.broadcast_to(self.game.grid_price, (self.game.n_clusters, self.game.steps))
        policy, _ = best_response(self.game, np.array(flat), self.smooth)
        flow = population_flow(self.game, policy).without_densities()
        game = self.game.priced_by(flow.net_kw)
        return PlayState(flow, stage_prices(game, self.mode, flow.net_kw), 0, policy, game)

    def step_next_state(self, state: PlayState) -> tuple[PlayState, dict[str, float]]:
        """One fictitious-play step; residuals measured at the current mixture.

        With a wholesale link, ``p_G`` is the LMP of the flow being priced
        (a dispatch per step), so every price below moves with it.
        """
        game = state.game
        policy, optimal = best_response(game, state.prices.stage, self.smooth)
        gap = state.flow.cost(state.prices.stage, game.dt_h) - optimal
        response = with_shiftable(
            population_flow(game, policy),
            shiftable_response(game, self.mode, state.flow, state.prices),
        )
        law_prices = stage_prices(game.priced_by(response.net_kw), self.mode, response.net_kw)
        step = self.step_size(state.iteration)
        flow = state.flow.mix(response, step)
        mixed = game.priced_by(flow.net_kw)
        prices = stage_prices(mixed, self.mode, flow.net_kw)
        residuals = {
            "price_residual": price_distance(law_prices, state.prices, self.game.grid_price),
            "exploitability": float(np.max(gap)),
            "step": step,
            "cubic": float(self.smooth),
        }
        return PlayState(flow, prices, state.iteration + 1, policy, mixed), residuals

    def is_converged(self, residuals: dict[str, float]) -> bool:
        """Both residuals within tolerance."""
        return (
            residuals["price_residual"] <= self.margin * self.solver.price_tolerance
            and residuals["exploitability"] <= self.margin * self.solver.exploitability_tolerance
        )


def price_distance(a: Prices, b: Prices, grid_price: np.ndarray) -> float:
    """Sup-norm distance of the stage prices ``π_p(k)``, relative to the grid price (``ε_con``).

    The stage price carries ``p_RPC`` and ``p_CoC`` with the mode's weights, so
    a price a mode does not use (``p_CoC`` when RPC-only) cannot hold it back.
    """
    return float(np.max(np.abs(a.stage - b.stage)) / np.max(grid_price))


def mixture_shiftable_policy(flow: Flow, fallback: np.ndarray) -> np.ndarray:
    """Markov policy realising the mixture's shiftable state–action flow.

    ``P(run | k, r) = running(k, r) / occupancy(k, r)``: for a finite MDP the
    mixture of policies and this randomised Markov policy have the same
    occupancy measure, hence the same aggregates and costs.
    """
    occ = flow.shiftable_occupancy[:, :-1, :]
    safe = np.where(occ > 1e-15, occ, 1.0)
    return np.where(occ > 1e-15, np.clip(flow.shiftable_running / safe, 0.0, 1.0), fallback)


def density_diagnostics(flow: Flow) -> tuple[float, float]:
    """Largest ``|total mass − 1|`` over clusters and steps, and the smallest density value."""
    assert (  # a flow with its battery densities, not a fixed-point mixture's
        flow.ess_density is not None
        and flow.ev_density is not None
        and flow.ev_away_density is not None
    )
    ess = flow.ess_density.sum(axis=2)
    ev = flow.ev_density.sum(axis=2) + flow.ev_away_density.sum(axis=2)
    sh = flow.shiftable_occupancy.sum(axis=2)
    error = max(float(np.max(np.abs(x - 1.0))) for x in (ess, ev, sh))
    smallest = min(
        float(x.min())
        for x in (flow.ess_density, flow.ev_density, flow.ev_away_density, flow.shiftable_occupancy)
    )
    return error, smallest


@dataclass(frozen=True)
class LawOnItsOwn:
    """The mixture's feedback law evaluated on its own (what a result reports)."""

    policy: Policy
    flow: Flow
    game: Game
    """The game at the law's own grid price."""
    prices: Prices
    cost: np.ndarray
    gap: np.ndarray
    """Exploitability per cluster [$]."""
    price_gap: float
    """Distance of the law's prices to the mixture's (``ε_con``)."""


def feedback_law(game: Game, mode: Mode, mixture: PlayState) -> LawOnItsOwn:
    """The mixture's feedback law, evaluated on its own.

    Batteries and the controllable load take the best response to the
    mixture's prices; the shiftable appliance keeps the mixture's randomised
    policy.
    """
    batteries, _ = best_response(mixture.game, mixture.prices.stage)
    law = Policy(
        ess=batteries.ess,
        ev=batteries.ev,
        shiftable_run=mixture_shiftable_policy(mixture.flow, batteries.shiftable_run),
        controllable=batteries.controllable,
    )
    flow = population_flow(game, law)
    priced = mixture.game.priced_by(flow.net_kw)
    prices = stage_prices(priced, mode, flow.net_kw)
    _, optimal = best_response(priced, prices.stage)
    cost = flow.cost(prices.stage, game.dt_h)
    return LawOnItsOwn(
        law, flow, priced, prices, cost, cost - optimal,
        price_distance(prices, mixture.prices, game.grid_price),
    )  # fmt: skip


def _iterate(
    game: Game, mode: Mode, on_iteration: Callable[[int, dict[str, float]], None] | None
) -> tuple[FixedPointRun[PlayState], LawOnItsOwn, bool, np.ndarray, float]:
    """The fixed point's phases and the law's checks (see :func:`solve_equilibrium`).

    Returns the run, the feedback law evaluated on its own, whether the law
    met both tolerances on its own grid, its exploitability in the continuous
    game per cluster and the seconds that measurement took. Each measurement
    is recorded in the history row it was made at (``exploitability_continuous``).
    """
    tol = game.config.solver
    algorithm = FictitiousPlay(game, mode)
    cubic = tol.continuation == "cubic"
    algorithm.margin = LINEAR_PHASE_MARGIN if cubic else 1.0
    run = run_fixed_point(algorithm, tol.max_iterations, on_iteration)
    if cubic:
        algorithm.smooth = True
        algorithm.margin = 1.0
    budget = run.iterations + tol.max_iterations
    if cubic:
        run = run_fixed_point(algorithm, budget, on_iteration, resume=run)
    seconds = 0.0
    while True:
        law = feedback_law(game, mode, run.state)
        met = (
            float(np.max(law.gap)) <= tol.exploitability_tolerance
            and law.price_gap <= tol.price_tolerance
        )
        if met or not run.converged or run.iterations >= budget:
            start = time.perf_counter()
            continuous = continuous_exploitability(
                law.game, law.prices, law.policy, CONTINUOUS_REFINE
            )
            seconds += time.perf_counter() - start
            run.history[-1] = {
                **run.history[-1],
                "exploitability_continuous": float(continuous.max()),
            }
            within = float(continuous.max()) <= tol.exploitability_tolerance
            if within or not met or run.iterations >= budget or algorithm.margin <= MIN_MARGIN:
                return run, law, met, continuous, seconds
            # The law met the tolerances on its own grid but not in the continuous game,
            # whose figure carries the fixed point's own residual: tighten that one.
            algorithm.margin /= 2.0
        # Otherwise the mixture met the tolerances but its law alone did not. Iterate on
        # to the next iterate that meets them and check its law: where the equilibrium
        # needs mixing, the pure best response jumps between alternatives and the
        # residuals cycle above a floor rather than fall, so the law is checked at
        # every iterate within tolerance.
        run = run_fixed_point(algorithm, budget, on_iteration, resume=run)


#: The linear phase of a cubic solve stops at this multiple of the tolerances: the
#: switch to cubic best responses moves the prices by more than that anyway.
LINEAR_PHASE_MARGIN = 4.0
#: The tightest margin on the own-grid residuals the fixed point goes to while the law's
#: exploitability in the continuous game is above the tolerance.
MIN_MARGIN = 0.125


def solve_equilibrium(
    game: Game,
    mode: Mode | str = Mode.COC,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
) -> EquilibriumResult:
    """Solve the graphon mean-field game of ``game`` in trading ``mode``.

    Parameters
    ----------
    game
        The game built by :func:`models.game.build_game`.
    mode
        ``standalone``, ``rpc`` or ``coc`` (seed 000 §4.3.1).
    on_iteration
        Called after every fixed-point iteration with its residuals (progress bars).

    Returns
    -------
    EquilibriumResult
        ``converged`` is true when the fixed point met both tolerances, the
        feedback law's own exploitability and price gap are within them, *and*
        the law's exploitability in the continuous game — the law as a HEMS
        applies it, against a best response on a grid ``CONTINUOUS_REFINE``
        times finer (:func:`models.exploitability.continuous_exploitability`)
        — is within the exploitability tolerance. When the mixture met the
        tolerances but its law did not, the iteration goes on, and the law of
        every later iterate within the tolerances is checked, until one meets
        them or ``max_iterations`` more iterations have passed. When the law
        meets them on its own grid but not in the continuous game — whose
        figure carries the fixed point's own residual — the fixed point's
        tolerances are halved (down to ``MIN_MARGIN`` times the set ones) and
        it iterates on; every continuous measurement is in the history
        (``exploitability_continuous``).

    Notes
    -----
    With the cubic continuation (``solver.continuation``, the default) the
    fixed point runs in two phases: best responses with the linear
    continuation — the grid chain's exact program, several times cheaper —
    until the residuals are within ``LINEAR_PHASE_MARGIN`` times the
    tolerances, then with the cubic one from there until they are met. The
    history's ``cubic`` column says which phase a row belongs to; the law is
    always the cubic best response.
    """
    start = time.perf_counter()
    mode = Mode(mode)
    tol = game.config.solver
    run, law, met, continuous, continuous_seconds = _iterate(game, mode, on_iteration)
    mass_error, min_density = density_diagnostics(law.flow)
    worst = float(np.max(continuous))
    return EquilibriumResult(
        mode=mode,
        game=law.game,
        policy=law.policy,
        flow=law.flow,
        prices=law.prices,
        cost=law.cost,
        exploitability_by_cluster=law.gap,
        history=run.history,
        converged=bool(run.converged and met and worst <= tol.exploitability_tolerance),
        price_residual=float(max(run.history[-1]["price_residual"], law.price_gap)),
        exploitability=float(np.max(law.gap)),
        exploitability_continuous=worst,
        exploitability_continuous_by_cluster=continuous,
        continuous_seconds=continuous_seconds,
        mass_error=mass_error,
        min_density=min_density,
        monotonicity=monotonicity_eigenvalue(game.weights, game.clusters.shares),
        seconds=time.perf_counter() - start,
    )
