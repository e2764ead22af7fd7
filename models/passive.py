"""Households without flexibility: the same devices, and no HEMS steering them.

The counterfactual of "the households' flexibility" (one-market comparisons,
:mod:`cosim.studies.one_market`): every household keeps its PV, loads, home
battery and EV, but nothing responds to a price —

- the home battery stays idle (``u = 0``: no charge, no discharge);
- the EV charges at its rated power whenever it is connected, until full;
- the shiftable appliance starts as soon as its window opens and runs to the end
  of its energy;
- the controllable load follows its nominal profile (``u_c = 0``, no discomfort).

Its import is then the same whatever the prices. The law is evaluated as
:func:`models.equilibrium.solve_equilibrium` evaluates a GMFG law: its flows
(FPK, eq. (28)), the local and inter-cluster prices those flows clear
(eqs. (16)–(20)) with, under a wholesale link, the LMP of its own import, its
expected cost at those prices (eq. (21)), and its exploitability — here what a
household would save by steering its devices alone.
"""

from __future__ import annotations

import time

import numpy as np

from market.pricing import Mode
from models.equilibrium import density_diagnostics
from models.exploitability import continuous_exploitability
from models.game import Game, stage_prices
from models.graphon import monotonicity_eigenvalue
from models.response import Policy, best_response, population_flow
from models.result import EquilibriumResult

__all__ = ["passive_equilibrium", "passive_policy"]


def passive_policy(game: Game) -> Policy:
    """Every device left to itself (module docstring), as a Markov policy of ``game``."""
    m, k = game.n_clusters, game.steps
    start, end = game.shiftable_window
    run = np.zeros((m, k, game.shiftable_quanta + 1))
    run[:, start:end, 1:] = 1.0  # run whenever energy is left inside the window
    # full power, or what fills the room left in one step: the control a HEMS applies
    # (models.battery.clip_control), which the FPK chain needs in its table
    ev = game.ev.battery
    room = (game.ev.soe[-1] - game.ev.soe) / (ev.efficiency * ev.charge_kw * game.dt_h)
    charge = np.clip(room, 0.0, 1.0)
    return Policy(
        ess=np.zeros((m, k, len(game.ess.soe))),
        ev=np.broadcast_to(charge, (m, k, charge.size)).copy(),
        shiftable_run=run,
        controllable=np.zeros((m, k)),
    )


def passive_equilibrium(game: Game, mode: Mode | str = Mode.COC) -> EquilibriumResult:
    """The passive law of ``game`` at the prices its own flows clear.

    There is nothing to iterate: the flows do not depend on the prices, so
    the prices computed from them are the law's own and the result is
    ``converged`` with an empty history. Its exploitability (grid and
    continuous) is not small and is not meant to be: it is what one household
    would save by steering its devices alone against those prices.
    """
    begin = time.perf_counter()
    mode = Mode(mode)
    policy = passive_policy(game)
    flow = population_flow(game, policy)
    priced = game.priced_by(flow.net_kw)
    prices = stage_prices(priced, mode, flow.net_kw)
    cost = flow.cost(prices.stage, game.dt_h)
    gap = cost - best_response(priced, prices.stage)[1]
    measured = time.perf_counter()
    continuous = continuous_exploitability(priced, prices, policy)
    mass_error, min_density = density_diagnostics(flow)
    return EquilibriumResult(
        mode=mode,
        game=priced,
        policy=policy,
        flow=flow,
        prices=prices,
        cost=cost,
        exploitability_by_cluster=gap,
        history=[],
        converged=True,
        price_residual=0.0,
        exploitability=float(np.max(gap)),
        exploitability_continuous=float(np.max(continuous)),
        exploitability_continuous_by_cluster=continuous,
        continuous_seconds=time.perf_counter() - measured,
        mass_error=mass_error,
        min_density=min_density,
        monotonicity=monotonicity_eigenvalue(game.weights, game.clusters.shares),
        seconds=time.perf_counter() - begin,
    )
