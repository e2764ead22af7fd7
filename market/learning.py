"""Seed 003's two-phase hybrid MFC/MFG learning (Algorithm 1) as a state transition.

At every market step t (slot τ of the day):

1. **Training phase** — each aggregator fixes its LMP belief ``b`` and its
   learner (:mod:`market.learners`) learns a storage policy against it.
2. **Play phase** — each prosumer samples an action from its aggregator's
   policy (:func:`~market.aggregators.sample_actions`); the bids of every bus
   are aggregated, eq. (14), and dispatched (:class:`~market.dispatch.EconomicDispatch`);
   the LMPs update the beliefs of slot τ, eq. (8)
   (:func:`~market.belief.update_belief`), and the storage moves, eq. (11).

:class:`TwoPhaseLearning` is the algorithm as hyper-parameters plus a state
transition (``init_state`` / ``step_next_state`` / ``is_converged``), so the
one shared loop (``models.fixed_point.run_fixed_point``) drives it; this
package does not import that loop. The run lasts a fixed number of days, as in
the paper: ``is_converged`` is never true, and whether prices settled is
measured afterwards (:func:`market.metrics.settling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from market.aggregators import ExogenousDraws, MarketCase, advance_population, sample_actions
from market.belief import update_belief
from market.dispatch import DispatchOptions, EconomicDispatch
from market.learners import Learner, play_policy
from market.storage import StorageModel

__all__ = ["LearningState", "MarketRecord", "PlaySettings", "TwoPhaseLearning"]


@dataclass(frozen=True)
class PlaySettings:
    """Hyper-parameters of the play phase and the beliefs."""

    belief_rate: float = 0.1
    """β of eq. (8)."""
    temperature: float = 0.0
    """Boltzmann temperature of the play policy ($ per MWh of capacity); 0 = greedy."""
    epsilon: float = 0.0
    """Share of uniform valid actions in the play policy."""
    initial_soe: float = 0.5
    """Every prosumer's SoE at the start (fraction of capacity)."""
    initial_belief: str = "flat"
    """``"flat"``: every slot at the mean LMP of a storage-free dispatch of the mean day;
    ``"no_storage"``: each slot at that dispatch's LMP."""


@dataclass
class MarketRecord:
    """Everything recorded in a run, one row per step (``steps`` rows)."""

    lmp: NDArray[np.float64]
    """LMP per step and bus ($/MWh)."""
    hub_price: NDArray[np.float64]
    """Price at the hub (slack) bus per step ($/MWh)."""
    bids_mw: NDArray[np.float64]
    """Bid per step and bus (MW): consumers + prosumers' net load + storage, eq. (14)."""
    renewable_mw: NDArray[np.float64]
    """Grid-scale renewable output offered per step and bus (MW)."""
    storage_mw: NDArray[np.float64]
    """Storage's grid-side power per step and aggregator (MW, + charging)."""
    action: NDArray[np.float64]
    """Mean action per step and aggregator: grid energy as a fraction of capacity."""
    soe: NDArray[np.float64]
    """Mean SoE per aggregator (fraction) before each step and after the last (steps + 1 rows)."""
    belief: NDArray[np.float64]
    """Beliefs per aggregator and slot before each step and after the last ($/MWh)."""
    solar_cf: NDArray[np.float64]
    """Capacity factor of the grid-scale solar units per step."""
    wind_cf: NDArray[np.float64]
    """Capacity factor of the wind units per step."""
    shed_mw: NDArray[np.float64]
    """Load shed per step (MW, all buses)."""
    surplus_mw: NDArray[np.float64]
    """Surplus dumped (curtailed) per step (MW, all buses)."""
    generation_cost: NDArray[np.float64]
    """Optimal dispatch cost per step ($/h)."""

    @classmethod
    def empty(cls, steps: int, buses: int, aggregators: int, slots: int) -> MarketRecord:
        """Arrays of NaN of the right shapes."""

        def nan(*shape: int) -> NDArray[np.float64]:
            return np.full(shape, np.nan)

        return cls(
            lmp=nan(steps, buses),
            hub_price=nan(steps),
            bids_mw=nan(steps, buses),
            renewable_mw=nan(steps, buses),
            storage_mw=nan(steps, aggregators),
            action=nan(steps, aggregators),
            soe=nan(steps + 1, aggregators),
            belief=nan(steps + 1, aggregators, slots),
            solar_cf=nan(steps),
            wind_cf=nan(steps),
            shed_mw=nan(steps),
            surplus_mw=nan(steps),
            generation_cost=nan(steps),
        )


@dataclass
class LearningState:
    """The iterate of :class:`TwoPhaseLearning`."""

    step: int
    """Steps played so far."""
    belief: NDArray[np.float64]
    """LMP belief per aggregator and slot ($/MWh)."""
    counts: NDArray[np.int64]
    """Prosumers per aggregator and SoE level."""
    record: MarketRecord = field(repr=False)
    """What has been recorded so far."""


class TwoPhaseLearning:
    """Algorithm 1 of seed 003 for one replication.

    Parameters
    ----------
    case
        Buses, populations and mean profiles; ``case.storage_kwh = 0`` gives
        the run without storage (no learning, no actions).
    draws
        Every step's random factors (``steps`` rows).
    model
        The storage MDP (SoE grid, actions, η, γ).
    learner
        The aggregators' learner, one table per aggregator; ignored without storage.
    settings
        β, the play policy, the initial SoE and belief.
    rng
        The replication's generator, handed down (training and play draws).
    dispatch_options
        Value of lost load and curtailment price.
    """

    def __init__(
        self,
        case: MarketCase,
        draws: ExogenousDraws,
        model: StorageModel,
        learner: Learner | None,
        settings: PlaySettings,
        rng: np.random.Generator,
        dispatch_options: DispatchOptions | None = None,
    ) -> None:
        self.case, self.draws, self.model = case, draws, model
        self.learner = learner if case.has_storage else None
        if case.has_storage and learner is None:
            raise ValueError("TwoPhaseLearning: a case with storage needs a learner")
        self.settings, self.rng = settings, rng
        self.steps = draws.solar_factor.shape[0]
        self.dispatch = EconomicDispatch(case.dispatch_network(), dispatch_options)
        self.learner_sweeps: list[int] = []

    # -- the FixedPointAlgorithm protocol -----------------------------------
    def init_state(self) -> LearningState:
        """Beliefs from a storage-free dispatch of the mean day; every SoE at its start value."""
        case, model = self.case, self.model
        n_agg = case.aggregator_bus.size
        belief = self.typical_prices()
        counts = np.zeros((n_agg, model.n_soe), dtype=np.int64)
        counts[:, model.soe_index(self.settings.initial_soe)] = case.prosumers[case.aggregator_bus]
        record = MarketRecord.empty(self.steps, case.network.n_buses, n_agg, case.slots)
        record.belief[0] = belief
        record.soe[0] = self._mean_soe(counts)
        return LearningState(0, belief, counts, record)

    def step_next_state(self, state: LearningState) -> tuple[LearningState, dict[str, float]]:
        """One market step: training phase, then play phase (Algorithm 1)."""
        case, model, t = self.case, self.model, state.step
        if t >= self.steps:
            raise IndexError(f"step {t}: the run has only {self.steps} steps of draws")
        slot = t % case.slots
        rec = state.record
        storage_mw = np.zeros(case.aggregator_bus.size)
        action = np.zeros(case.aggregator_bus.size)
        counts = state.counts
        if self.learner is not None:
            # training phase against the fixed belief
            self.learner.train(state.belief, self.rng)
            self.learner_sweeps.append(int(getattr(self.learner, "iterations", 0)))
            s = self.settings
            pi = play_policy(model, self.learner.q_values()[:, slot], s.temperature, s.epsilon)
            # play phase: every prosumer samples an action
            chosen = sample_actions(self.rng, counts, pi)
            energy = np.einsum("nsa,a->n", chosen, model.grid_energy)  # prosumer-capacities
            storage_mw = energy * case.storage_kwh / 1000.0 / case.dt_h
            action = energy / np.maximum(counts.sum(axis=1), 1)
            counts = advance_population(model, chosen)
        bids = case.base_bids_mw(slot, self.draws.demand_factor[t], self.draws.solar_factor[t])
        bids[case.aggregator_bus] += storage_mw
        renewable = case.renewable_mw(slot, self.draws.solar_factor[t], self.draws.wind_factor[t])
        result = self.dispatch.solve(bids - renewable, time_step=t)
        lmp = np.asarray(result.lmp)
        belief = update_belief(
            state.belief, slot, lmp[case.aggregator_bus], self.settings.belief_rate
        )

        rec.lmp[t], rec.hub_price[t], rec.bids_mw[t] = lmp, result.hub_price, bids
        rec.renewable_mw[t], rec.storage_mw[t], rec.action[t] = renewable, storage_mw, action
        rec.solar_cf[t] = min(1.0, float(case.solar_shape[slot]) * self.draws.solar_factor[t])
        rec.wind_cf[t] = min(1.0, float(self.draws.wind_factor[t]))
        rec.shed_mw[t], rec.surplus_mw[t] = result.shed_mw.sum(), result.surplus_mw.sum()
        rec.generation_cost[t] = result.cost
        rec.belief[t + 1], rec.soe[t + 1] = belief, self._mean_soe(counts)
        change = float(np.max(np.abs(belief - state.belief))) if belief.size else 0.0
        residuals = {
            "hub_price": float(result.hub_price),
            "belief_change": change,
            "shed_mw": float(rec.shed_mw[t]),
        }
        return LearningState(t + 1, belief, counts, rec), residuals

    def is_converged(self, residuals: dict[str, float]) -> bool:
        """Never: Algorithm 1 runs its fixed number of days."""
        return False

    # -- helpers --------------------------------------------------------------
    def typical_prices(self) -> NDArray[np.float64]:
        """Each aggregator's LMP per slot in a storage-free dispatch of the mean day.

        The mean day has every factor at its mean over the run's draws (the
        "history" the beliefs start from). With ``initial_belief = "flat"``
        each aggregator's mean over the slots is used in every slot. Shape
        ``(aggregators, slots)``.
        """
        case, d = self.case, self.draws
        demand = d.demand_factor.mean(axis=0)
        solar, wind = float(d.solar_factor.mean()), float(d.wind_factor.mean())
        prices = np.empty((case.aggregator_bus.size, case.slots))
        for k in range(case.slots):
            bids = case.base_bids_mw(k, demand, solar) - case.renewable_mw(k, solar, wind)
            lmp = self.dispatch.solve(bids, time_step=-1 - k).lmp
            prices[:, k] = lmp[case.aggregator_bus]
        if self.settings.initial_belief == "flat":
            prices[:] = prices.mean(axis=1, keepdims=True)
        return prices

    def _mean_soe(self, counts: NDArray[np.int64]) -> NDArray[np.float64]:
        total = np.maximum(counts.sum(axis=1), 1)
        return counts @ self.model.soe / total
