"""The law whose ε-Nash gap is measured, and the deviator's information sets (SPEC §7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.pricing import Mode
from models import kernels
from models.equilibrium import EquilibriumResult
from models.feedback import FeedbackLaw
from models.game import Game, stage_prices
from models.response import Policy, best_response, population_flow

#: Information sets: own state and time (exact DP) ...
INFO_LOCAL = "local"
#: ... and own state plus the last cleared aggregate of its cluster (approximate DP).
INFO_FULL = "full"


@dataclass(frozen=True)
class LawUnderTest:
    """A feedback law, the game it is played in, and its mean-field numbers."""

    game: Game
    mode: Mode
    policy: Policy
    stage_price: np.ndarray
    """Mean-field stage prices the law induces, ``(M, K)`` [$/kWh]."""
    cost: np.ndarray
    """``J^∞``: the law's expected daily cost per household at those prices, ``(M,)`` [$]."""
    label: str

    @classmethod
    def from_equilibrium(cls, result: EquilibriumResult) -> LawUnderTest:
        """The GMFG law of a solved equilibrium."""
        return cls(
            result.game, result.mode, result.policy, result.prices.stage, result.cost, "gmfg"
        )

    @classmethod
    def flat_price_response(cls, game: Game, mode: Mode | str) -> LawUnderTest:
        """A deliberately non-equilibrium law: the best response to the grid price alone."""
        mode = Mode(mode)
        flat = np.array(np.broadcast_to(game.grid_price, (game.n_clusters, game.steps)))
        policy, _ = best_response(game, flat)
        flow = population_flow(game, policy)
        prices = stage_prices(game, mode, flow.net_kw)
        return cls(game, mode, policy, prices.stage, flow.cost(prices.stage, game.dt_h), "flat")

    def feedback_law(self) -> FeedbackLaw:
        """The lookup tables every HEMS applies."""
        return FeedbackLaw.from_policy(self.game, self.policy)

    def exploitability(self) -> np.ndarray:
        """Mean-field exploitability of the law at its own prices, ``(M,)`` [$].

        Expected daily cost of a household playing the law minus that of an
        exact best response over every device (:func:`models.response.best_response`):
        the limit of ``ε^{local}_N`` for a law that is not an equilibrium.
        """
        return self.cost - best_response(self.game, self.stage_price)[1]

    def ess_exploitability(self) -> np.ndarray:
        """Mean-field gain of re-optimising the ESS alone at the law's prices, ``(M,)`` [$].

        The mean-field counterpart of ``ε^{local, ESS}``: with prices fixed the
        household problem decouples by device, so this is the ESS part of the
        law's exploitability (expected ESS cost under the law minus the ESS
        value function of the best response).
        """
        g = self.game
        flow = population_flow(g, self.policy)
        law_cost = g.dt_h * np.sum(self.stage_price * flow.ess_kw, axis=1) + flow.ess_cost
        m, k = self.stage_price.shape
        s = len(g.ess.soe)
        value, away, control = np.empty((m, k + 1, s)), np.empty((m, k + 1, s)), np.empty((m, k, s))
        kernels.battery_backward(
            np.ascontiguousarray(self.stage_price),
            g.dt_h,
            g.ess.battery,
            g.ess.tables,
            value,
            away,
            control,
        )
        return law_cost - value[:, 0, :] @ g.ess.initial
