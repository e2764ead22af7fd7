"""The finite-N run of a one-market scenario: every layer in one discrete-event simulation.

One SimPy environment holds a :class:`~cosim.sim.engine.CoSimulation` per
cluster-of-clusters (CoC) — its households applying the law of the outer
fixed point (:mod:`models.one_market`), its cluster aggregators and its
clearing — and one shared market, the :class:`OneMarketRun` itself (a
:class:`~cosim.sim.hooks.PriceSource`). At the end of every market interval:

1. each CoC reports its households' mean net exchange over the interval;
2. seed 003's aggregators play (Algorithm 1): each trains its learner against
   its belief, its prosumers sample their actions from the play policy, and
   the pooled storage bids;
3. one economic dispatch meets the rest of the system's load (with a draw of
   each CoC bus's load, σ = ``rest.bus_load_std_mw``), every CoC's import at
   its bus and every aggregator's storage at its bus;
4. every CoC's steps of the interval are cleared and settled at
   ``p_G = LMP_bus/1000 + adder``; every aggregator updates the belief of the
   interval's slot with the LMP at its bus (eq. (8)) and its prosumers' SoE
   moves (eq. (11)).

The households keep their laws; the aggregators start from the fixed point's
beliefs and learn on, day by day. Each market interval's energy balance is
checked across every layer (:func:`balance_checks`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import simpy

from cosim.sim.engine import CoSimulation
from cosim.sim.simulation import SimulationResult, collect
from market.aggregators import advance_population, sample_actions
from market.belief import update_belief
from market.learners import make_learner, play_policy
from market.pricing import Mode
from models.feedback import FeedbackLaw
from models.one_market import AggregatorPools, OneMarketEquilibrium
from models.one_market_config import OneMarketScenario

__all__ = ["AggregatorFleet", "MarketRecord", "OneMarketRun", "OneMarketRunResult"]


@dataclass
class MarketRecord:
    """The shared market, one row per market interval of the run (``D·I`` rows)."""

    lmp: np.ndarray
    """LMP per interval and bus [$/MWh], ``(D·I, B)``."""
    demand_mw: np.ndarray
    """Demand dispatched per interval and bus [MW], ``(D·I, B)``: the rest of the system
    (renewables netted, bus-load draws included), the CoCs' imports, the storage."""
    generation_mw: np.ndarray
    shed_mw: np.ndarray
    surplus_mw: np.ndarray
    imports_mw: np.ndarray
    """Each CoC's import [MW], ``(D·I, C)``: its households' mean net exchange × their number."""
    storage_mw: np.ndarray
    """Each aggregator's storage power [MW, + charging], ``(D·I, A)``."""
    belief: np.ndarray
    """Each aggregator's belief of the interval's slot before the interval [$/MWh], ``(D·I, A)``."""
    soe: np.ndarray
    """Each aggregator's prosumers' mean SoE after the interval [fraction], ``(D·I, A)``."""

    @classmethod
    def empty(cls, rows: int, buses: int, cocs: int, aggregators: int) -> MarketRecord:
        """Zeros of every field."""
        return cls(
            lmp=np.zeros((rows, buses)),
            demand_mw=np.zeros((rows, buses)),
            generation_mw=np.zeros(rows),
            shed_mw=np.zeros(rows),
            surplus_mw=np.zeros(rows),
            imports_mw=np.zeros((rows, cocs)),
            storage_mw=np.zeros((rows, aggregators)),
            belief=np.zeros((rows, aggregators)),
            soe=np.zeros((rows, aggregators)),
        )


class AggregatorFleet:
    """Seed 003's aggregators in the run: beliefs, a learner, prosumers counted per SoE."""

    def __init__(
        self,
        pools: AggregatorPools,
        belief: np.ndarray,
        scenario: OneMarketScenario,
        interval_h: float,
        rng: np.random.Generator,
    ) -> None:
        assert scenario.aggregators is not None
        self.pools, self.interval_h, self.rng = pools, interval_h, rng
        self.learning = scenario.aggregators.learning
        self.capacity_kwh = scenario.aggregators.storage.capacity_kwh
        model = pools.model
        self.belief = np.array(belief, dtype=float)
        a, slots = self.belief.shape
        self.learner = make_learner(self.learning, model, a, slots)
        self.counts = np.zeros((a, model.n_soe), dtype=np.int64)
        self.counts[:, model.soe_index(pools.initial_soe)] = pools.prosumers

    def play(self, slot: int) -> np.ndarray:
        """Training phase against the beliefs, then every prosumer's action: storage [MW]."""
        model, learn = self.pools.model, self.learning
        self.learner.train(self.belief, self.rng)
        policy = play_policy(
            model, self.learner.q_values()[:, slot], learn.play_temperature, learn.play_epsilon
        )
        chosen = sample_actions(self.rng, self.counts, policy)
        self.counts = advance_population(model, chosen)
        energy = np.einsum("nsa,a->n", chosen, model.grid_energy)  # prosumer-capacities
        return energy * self.capacity_kwh / 1000.0 / self.interval_h

    def observe(self, slot: int, lmp: np.ndarray) -> None:
        """Eq. (8) for the slot with the LMP at each aggregator's bus."""
        self.belief = update_belief(self.belief, slot, lmp, self.learning.belief_rate)

    def mean_soe(self) -> np.ndarray:
        """Each aggregator's prosumers' mean SoE [fraction]."""
        return self.counts @ self.pools.model.soe / np.maximum(self.counts.sum(axis=1), 1)


@dataclass
class OneMarketRunResult:
    """A finished run: the shared market's record and each CoC's simulation tables."""

    record: MarketRecord
    cocs: list[SimulationResult]
    checks: dict[str, float]
    seconds: float


class OneMarketRun:
    """The finite-N run (module docstring): build it, then :meth:`run`.

    Parameters
    ----------
    equilibrium
        The outer fixed point: each CoC's law and game, the aggregators' beliefs.
    scenario
        The one-market scenario (days, learning, bus-load draws).
    households
        Households simulated per CoC (default: the ``households`` each stands for),
        split over its clusters by their shares.
    mode
        Trading mode that settles the CoCs' bills.
    """

    def __init__(
        self,
        equilibrium: OneMarketEquilibrium,
        scenario: OneMarketScenario,
        households: list[int] | None = None,
        mode: Mode = Mode.COC,
    ) -> None:
        market = equilibrium.market
        self.market, self.scenario = market, scenario
        self.days = scenario.time.days
        self.steps_per_interval = market.steps_per_interval
        self.env = simpy.Environment()
        streams = np.random.SeedSequence(scenario.seed).spawn(len(market.cocs) + 2)
        self.sims: list[CoSimulation] = []
        self.scale: list[float] = []
        for c, (member, law) in enumerate(zip(market.cocs, equilibrium.laws, strict=True)):
            total = member.households if households is None else households[c]
            per_cluster = np.maximum(np.rint(total * law.game.clusters.shares), 1).astype(int)
            seed = int(streams[c].generate_state(1)[0])
            sim = CoSimulation(
                law.game,
                FeedbackLaw.from_equilibrium(law),
                mode,
                per_cluster,
                days=self.days,
                seed=seed,
                env=self.env,
                price_source=self,
            )
            self.sims.append(sim)
            # the import of the households the CoC stands for, from the simulated ones' mean
            self.scale.append(member.households / 1000.0)
        rows = self.days * market.intervals
        pools = market.aggregators
        a = 0 if pools is None else pools.bus.size
        self.record = MarketRecord.empty(rows, market.network.n_buses, len(market.cocs), a)
        self.bus_load = np.random.default_rng(streams[-2]).normal(
            0.0, market.bus_load_std_mw, (rows, len(market.cocs))
        )
        self.fleet = (
            None
            if pools is None
            else AggregatorFleet(
                pools,
                equilibrium.beliefs,
                scenario,
                market.interval_h,
                np.random.default_rng(streams[-1]),
            )
        )
        self._asked: dict[int, dict[int, tuple[simpy.Event, float]]] = {}

    # -- the PriceSource protocol ---------------------------------------------
    def price(self, sim: CoSimulation, step: int, mean_net_kw: float) -> simpy.Event:
        """The CoC's ``p_G`` of the interval starting at ``step``, once all have reported."""
        interval = step // self.steps_per_interval
        event = self.env.event()
        asked = self._asked.setdefault(interval, {})
        asked[self.sims.index(sim)] = (event, mean_net_kw)
        if len(asked) == len(self.sims):
            self._clear(interval, asked)
            del self._asked[interval]
        return event

    def _clear(self, g: int, asked: dict[int, tuple[simpy.Event, float]]) -> None:
        """Market interval ``g`` of the run: the aggregators play, one dispatch, prices out."""
        m, rec = self.market, self.record
        slot = g % m.intervals
        imports = np.array([self.scale[c] * asked[c][1] for c in range(len(self.sims))])
        demand = m.rest_mw[slot].copy()
        for c, member in enumerate(m.cocs):
            demand[member.bus] += imports[c] + self.bus_load[g, c]
        if self.fleet is not None:
            rec.belief[g] = self.fleet.belief[:, slot]
            storage = self.fleet.play(slot)
            np.add.at(demand, self.fleet.pools.bus, storage)
            rec.storage_mw[g] = storage
        result = m.dispatch.solve(demand, time_step=g)
        lmp = np.asarray(result.lmp)
        rec.lmp[g], rec.demand_mw[g], rec.imports_mw[g] = lmp, result.demand_mw, imports
        rec.generation_mw[g] = result.generation_mw.sum()
        rec.shed_mw[g], rec.surplus_mw[g] = result.shed_mw.sum(), result.surplus_mw.sum()
        if self.fleet is not None:
            self.fleet.observe(slot, lmp[self.fleet.pools.bus])
            rec.soe[g] = self.fleet.mean_soe()
        for c, member in enumerate(m.cocs):
            asked[c][0].succeed(lmp[member.bus] / 1000.0 + member.retail_adder)

    def run(self) -> OneMarketRunResult:
        """Run every day; the tables of each CoC and the checks across the layers."""
        start = time.perf_counter()
        self.env.run(until=self.days * 24.0 + 1e-9)
        seconds = time.perf_counter() - start
        cocs = [collect(sim, seconds) for sim in self.sims]
        return OneMarketRunResult(self.record, cocs, balance_checks(self), seconds)


def balance_checks(run: OneMarketRun) -> dict[str, float]:
    """Energy balanced across the layers, every market interval (worst absolute residuals).

    - ``dispatch_balance_mw``: generation + shed − dumped = the demand dispatched;
    - ``demand_composition_mw``: that demand = the rest of the system's load + the
      bus-load draws + every CoC's import + every aggregator's storage;
    - ``import_metered_mw``: each CoC's import = its households' metered net
      exchange over the interval (their books, settled after the dispatch),
      scaled to the households it stands for.
    """
    m, rec = run.market, run.record
    supply = rec.generation_mw + rec.shed_mw - rec.surplus_mw
    dispatch = float(np.max(np.abs(supply - rec.demand_mw.sum(axis=1))))
    rows = rec.lmp.shape[0]
    expected = np.tile(m.rest_mw, (run.days, 1))
    for c, member in enumerate(m.cocs):
        expected[:, member.bus] += rec.imports_mw[:, c] + run.bus_load[:, c]
    if run.fleet is not None:
        np.add.at(expected.T, run.fleet.pools.bus, rec.storage_mw.T)
    composition = float(np.max(np.abs(expected - rec.demand_mw)))
    metered = 0.0
    n = run.steps_per_interval
    for c, sim in enumerate(run.sims):
        books = sim.rec.books
        net_kwh = (books["grid_import_kwh"] - books["grid_export_kwh"]).sum(axis=1)
        per_household_kw = net_kwh.reshape(rows, n).sum(axis=1) / (
            n * sim.dt_h * sim.population.size
        )
        metered = max(
            metered, float(np.max(np.abs(run.scale[c] * per_household_kw - rec.imports_mw[:, c])))
        )
    return {
        "dispatch_balance_mw": dispatch,
        "demand_composition_mw": composition,
        "import_metered_mw": metered,
    }
