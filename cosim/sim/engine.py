"""The discrete-event co-simulation: SimPy owns time, Mesa holds the agents.

Processes (one per clock or event stream, never one per household):

* the **population's control clock** — every ``Δt`` it closes the interval just
  ended (integrates the EVs to the boundary) and every HEMS applies the
  feedback law to its own state and time (compiled kernel, or each Mesa agent
  stepping itself on the reference path);
* the **EV event stream** — plug-out and plug-in at each household's own drawn
  times, off the control grid, with the energy of the partial interval
  integrated exactly;
* one **clearing process per cluster aggregator** — it computes and reports
  the realised finite-N aggregate ``m_p``, waits for the CoC clearing, then
  settles its households' bills;
* the **CoC clearing** — ``p_RPC,p``, ``A_p``, ``M_g``, ``p_CoC`` and the stage
  prices from the aggregators' reports, by the solver's own clearing rule;
* the **grid price** — every interval, ``p_G`` before the aggregators clear:
  the scenario's, or, when the game has a wholesale link, the LMP of an
  economic dispatch of the interval's realised demand (the rest of the
  system's load, a per-step draw of the households' bus load, and the
  households' realised net import) plus the retail adder;
* the **market interval** hook — every ``market_interval_h`` it hands the
  system's net demand of the interval to a callback.

Each household counts in its own cluster's aggregate. Prices are computed from
the realised aggregates of an interval and settle that interval's exchanges.

Studies extend the engine through public hooks (:mod:`cosim.sim.hooks`): a
household's own law in place of its cluster's, observers of closed intervals
and ended days, the source of the EV schedules, and :meth:`CoSimulation.control_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import mesa
import numpy as np
import simpy

from cosim.sim import hems
from cosim.sim.agents import ClusterAggregator, Household
from cosim.sim.books import WHOLESALE_FIELDS, Recorder, cluster_books
from cosim.sim.hooks import HouseholdLaw, Observer, PriceSource, build_law_tables
from cosim.sim.population import EVSchedule, Population, draw_ev_schedule, init_population
from market.clearing import clear_prices
from market.pricing import Mode, mode_weights
from models import devices
from models.feedback import FeedbackLaw
from models.game import Game
from models.shiftable_kernels import ShiftableWindow


class CoSimulation(mesa.Model):
    """N households applying the GMFG law, their aggregators, and the CoC market.

    Parameters
    ----------
    game
        The mean-field game the law was solved for (devices, profiles, prices).
    law
        The feedback law every HEMS applies.
    mode
        Trading mode whose prices settle the bills.
    households
        Households per cluster, ``(M,)``.
    days
        Days to simulate (the daily law is applied each day).
    seed
        Seed of every random draw of the run.
    reference
        Step every household as a Mesa agent in plain Python (the reference
        path) instead of the compiled kernel.
    record_households
        Households whose trajectories are recorded step by step.
    market_interval_h
        Length of a market interval [h].
    market_hook
        Called every market interval with ``(time_h, net_demand_kwh)``.
    household_laws
        Households that do not apply their cluster's law, each with its own
        :class:`~cosim.sim.hooks.HouseholdLaw`; every other household applies
        ``law`` at its cluster's row.
    observers
        :class:`~cosim.sim.hooks.Observer` s called, in this order, when an
        interval closes and when a day ends.
    ev_schedule
        Draws a day's EV schedule, called as ``ev_schedule(game, population,
        seed, day)`` for every day when the simulation is built (default:
        :func:`~cosim.sim.population.draw_ev_schedule`).
    env
        The SimPy environment to run in (default: one of its own); co-simulations
        that share a market share one.
    price_source
        Where each market interval's grid price comes from
        (:class:`~cosim.sim.hooks.PriceSource`); default: the scenario's price,
        or with a wholesale link a dispatch of the interval's realised demand.

    Attributes
    ----------
    law_tables : cosim.sim.hooks.LawTables
        The law tables the HEMS apply and each household's row in them.
    observers : list of Observer
        The observers, in the order they are called.
    """

    def __init__(
        self,
        game: Game,
        law: FeedbackLaw,
        mode: Mode | str,
        households: np.ndarray,
        days: int = 1,
        seed: int = 0,
        reference: bool = False,
        record_households: np.ndarray | None = None,
        market_interval_h: float = 1.0,
        market_hook: Callable[[float, float], None] | None = None,
        household_laws: Mapping[int, HouseholdLaw] | None = None,
        observers: Iterable[Observer] = (),
        ev_schedule: Callable[[Game, Population, int, int], EVSchedule] = draw_ev_schedule,
        env: simpy.Environment | None = None,
        price_source: PriceSource | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.game = game
        self.law = law
        self.mode = Mode(mode)
        self.seed = seed
        self.days = days
        self.dt_h = game.dt_h
        self.reference = reference
        self.env = env if env is not None else simpy.Environment()
        self.price_source = price_source
        self.steps_per_price = (
            price_source.steps_per_interval
            if price_source is not None
            else (1 if game.wholesale is None else game.wholesale.steps_per_interval)
        )
        self.population: Population = init_population(game, households, seed)
        n, m, steps = self.population.size, game.n_clusters, game.steps * days
        self.energy = np.zeros((n, 4))
        self.ev_energy = np.zeros(n)
        self.interval_energy = np.zeros(n)
        self.priced_energy = self.interval_energy
        """Each household's energy of the interval being cleared [kWh] (a copy of
        ``interval_energy`` kept until its market interval is priced)."""
        self.kernel_params = household_params(game)
        self.law_tables, self._own_laws = build_law_tables(self, household_laws or {})
        self.observers: list[Observer] = list(observers)
        self.weights = mode_weights(self.mode, game.config.prices.weights, game.step_hours)
        self.households = [Household(self, i) for i in range(n)]
        self.aggregators = [ClusterAggregator(self, p) for p in range(m)]
        record = np.asarray(record_households if record_households is not None else [], dtype=int)
        self.record_households = record
        self.rec = Recorder.empty(steps, m, days, n)
        self.market_interval_h = market_interval_h
        self.market_hook = market_hook
        if game.wholesale is not None and price_source is None:
            self.rec.wholesale = {name: np.zeros(steps) for name in WHOLESALE_FIELDS}
            self._bus_load = np.random.default_rng(
                np.random.SeedSequence(seed, spawn_key=(5,))
            ).normal(0.0, game.wholesale.bus_load_std_mw, steps)
        self._interval_closed = self.env.event()
        self._priced = self.env.event()
        self._reports = [self.env.event() for _ in range(m)]
        self._coc_cleared = self.env.event()
        self.env.process(self._control_clock())
        self.env.process(self._grid_price())
        for day in range(days):
            self.env.process(self._ev_events(ev_schedule(game, self.population, seed, day)))
        for agg in self.aggregators:
            self.env.process(self._clear_cluster(agg))
        self.env.process(self._clear_coc())
        self.env.process(self._market_interval())

    # ------------------------------------------------------------------ processes

    def _control_clock(self):
        game, pop = self.game, self.population
        k_per_day = game.steps
        for step in range(self.days * k_per_day):
            k = step % k_per_day
            if k == 0 and step > 0:
                self._start_day(step // k_per_day)
            self.kernel_params.pv_kw[:] = game.clusters.pv_kwp * game.pv_per_kwp[k]
            self.kernel_params.load_kw[:] = game.clusters.load_kwh * game.base_per_kwh[k]
            pop.ev_since[pop.ev_connected == 1] = self.env.now
            self.control_step(step, k)
            yield self.env.timeout(self.dt_h)
            self._close_interval(step)
        self._end_day(self.days - 1)

    def _ev_events(self, schedule: EVSchedule):
        times = np.concatenate([schedule.departure_h, schedule.arrival_h])
        kinds = np.concatenate(
            [np.zeros(len(schedule.households)), np.ones(len(schedule.households))]
        )
        who = np.concatenate([np.arange(len(schedule.households))] * 2)
        order = np.lexsort((who, kinds, times))
        pop = self.population
        ev = self.kernel_params.ev
        hh = self.game.config.household.ev
        for j in order:
            t = times[j]
            yield self.env.timeout(t - self.env.now)
            i = int(schedule.households[who[j]])
            day = int(t // 24.0)
            if kinds[j] == 0:  # plug-out: integrate the partial step, then the trip
                hems.integrate_ev(
                    np.array([i]),
                    t,
                    pop.ev_since,
                    pop.ev_soe,
                    pop.ev_u,
                    ev,
                    self.ev_energy,
                    pop.ev_throughput,
                )
                soe = float(pop.ev_soe[i])
                self.rec.private[day, i] += float(
                    devices.departure_penalty(soe, hh.departure_target_kwh, hh.departure_penalty)
                )
                pop.ev_soe[i] = max(soe - schedule.trip_kwh[who[j]], ev.soe_min)
                pop.ev_connected[i] = 0
                pop.ev_u[i] = 0.0
                self.rec.events.append((t, i, "departure", soe))
            else:  # plug-in: idle until the next control step
                pop.ev_connected[i] = 1
                pop.ev_u[i] = 0.0
                pop.ev_since[i] = t
                self.rec.events.append((t, i, "arrival", float(pop.ev_soe[i])))

    def _grid_price(self):
        """``p_G`` of each interval, then its clearing, one control step after another.

        With a market interval of several control steps the interval's steps
        wait, their energies kept, until the interval closes and is priced;
        then each is cleared in turn with the interval's price.
        """
        pending: list[tuple[int, np.ndarray]] = []
        while True:
            step = yield self._interval_closed
            pending.append((step, self.interval_energy.copy()))
            if len(pending) < self.steps_per_price:
                continue
            prices = yield from self._price_interval(pending)
            for j, ((each, energy), price) in enumerate(zip(pending, prices, strict=True)):
                if j:  # let the aggregators and the CoC clearing wait for the next step first
                    yield self.env.timeout(0)
                self.rec.grid_price[each] = price
                self.priced_energy = energy
                done = self._coc_cleared
                priced, self._priced = self._priced, self.env.event()
                priced.succeed(each)
                yield done
            pending = []

    def _price_interval(self, pending: list[tuple[int, np.ndarray]]):
        """``p_G`` of each pending step [$/kWh]: the scenario's, the shared market's, or the
        LMP of a dispatch of the interval's realised demand plus the retail adder."""
        game, link = self.game, self.game.wholesale
        steps = [each for each, _ in pending]
        if link is None and self.price_source is None:
            return [float(game.grid_price[each % game.steps]) for each in steps]
        per_step = [energy.sum() / (self.population.size * self.dt_h) for _, energy in pending]
        if self.price_source is not None:
            price = yield self.price_source.price(self, steps[0], float(np.mean(per_step)))
            return [float(price)] * len(steps)
        assert link is not None
        imported = float(link.interval_import_mw(np.asarray(per_step))[0])
        first = steps[0]
        interval = (first % game.steps) // self.steps_per_price
        result = link.solve(interval, imported, self._bus_load[first])
        lmp = float(result.lmp[link.bus])
        renewables = link.renewables_mw[interval]
        w = self.rec.wholesale
        assert w is not None
        for each in steps:
            w["lmp"][each], w["import_mw"][each] = lmp, imported
            w["other_load_mw"][each] = result.demand_mw.sum() - imported + renewables
            w["generation_mw"][each] = result.generation_mw.sum() + renewables
            w["shed_mw"][each] = result.shed_mw.sum()
            w["surplus_mw"][each] = result.surplus_mw.sum()
        return [lmp / 1000.0 + link.retail_adder] * len(steps)

    def _clear_cluster(self, agg: ClusterAggregator):
        game = self.game
        while True:
            step = yield self._priced
            energy = self.priced_energy[agg.members]
            m_p = energy.sum() / (len(energy) * self.dt_h)
            self.rec.m[step, agg.cluster] = m_p
            self._reports[agg.cluster].succeed(m_p)
            _, stage = yield self._coc_cleared
            pi = stage[agg.cluster]
            day = step // game.steps
            self.rec.bills[day, agg.members] += energy * pi

    def _clear_coc(self):
        """Every cluster's prices from the aggregators' reports, by the one clearing rule."""
        game = self.game
        rule = game.clearing
        while True:
            step = yield self._priced
            yield simpy.AllOf(self.env, self._reports)
            k = step % game.steps
            p_g = self.rec.grid_price[step]
            cleared = clear_prices(rule, self.rec.m[step], p_g, self.weights[k])
            rec = self.rec
            rec.rpc[step], rec.coc[step], rec.stage[step] = cleared.rpc, cleared.coc, cleared.stage
            rec.seen[step], rec.scalar[step] = cleared.seen, cleared.scalar
            self._settle_books(step, cleared.stage, cleared.coc, p_g)
            self._reports = [self.env.event() for _ in range(game.n_clusters)]
            cleared_event, self._coc_cleared = self._coc_cleared, self.env.event()
            cleared_event.succeed((step, cleared.stage))

    def _market_interval(self):
        steps_per = max(1, round(self.market_interval_h / self.dt_h))
        books = self.rec.books
        while True:
            step, _ = yield self._coc_cleared
            if (step + 1) % steps_per and step + 1 < self.days * self.game.steps:
                continue
            first = (step // steps_per) * steps_per
            net = float(
                books["grid_import_kwh"][first : step + 1].sum()
                - books["grid_export_kwh"][first : step + 1].sum()
            )
            self.rec.market.append((self.env.now, net))
            if self.market_hook is not None:
                self.market_hook(self.env.now, net)

    # ------------------------------------------------------------------ public steps

    def control_step(self, step: int, k: int) -> None:
        """Every household chooses and applies its controls for control step ``k``.

        The households with their own law write their rows of the law tables
        (:meth:`HouseholdLaw.set_controls <cosim.sim.hooks.HouseholdLaw.set_controls>`),
        then the compiled kernel applies the tables to the whole population —
        or, on the reference path, each Mesa household steps itself. The
        clock calls it at the start of each interval, after setting the
        interval's mean PV and base load (``kernel_params.pv_kw``, ``load_kw``);
        it does not advance time nor close the interval, so a benchmark may
        call it on its own.

        Parameters
        ----------
        step
            Global control step (keys the households' random numbers).
        k
            Step within the day (selects the law's column).
        """
        for household, own, row in self._own_laws:
            own.set_controls(self, household, step, k, row)
        if self.reference:
            for agent in self.households:
                agent.hems_step(step, k)
            return
        t, prm = self.law_tables, self.kernel_params
        pv_kw, load_kw = prm.pv_kw, prm.load_kw
        if self._own_laws:  # each own row sees its household's cluster's profile
            pv_kw, load_kw = pv_kw[t.profile], load_kw[t.profile]
        self._run_kernel(
            step, k, t.row, t.ess, t.ev, t.shiftable_run, t.controllable, pv_kw, load_kw
        )

    # ------------------------------------------------------------------ helpers

    def _run_kernel(
        self,
        step: int,
        k: int,
        cluster: np.ndarray,
        ess_law: np.ndarray,
        ev_law: np.ndarray,
        shift_law: np.ndarray,
        ctrl_law: np.ndarray,
        pv_kw: np.ndarray,
        load_kw: np.ndarray,
    ) -> None:
        """The compiled control step with the given law tables.

        The tables hold one row per law; ``cluster`` is the row each household applies.
        """
        pop, law, prm = self.population, self.law, self.kernel_params
        hems.control_step(
            step,
            k,
            self.seed,
            self.dt_h,
            cluster,
            hems.KernelLaw(
                ess=ess_law,
                ess_first=law.ess_grid.first,
                ess_spacing=law.ess_grid.spacing,
                ev=ev_law,
                ev_first=law.ev_grid.first,
                ev_spacing=law.ev_grid.spacing,
                shiftable_run=shift_law,
                controllable=ctrl_law,
            ),
            prm._replace(pv_kw=pv_kw, load_kw=load_kw),
            hems.HouseholdState(
                zeta_pv=pop.zeta_pv,
                zeta_load=pop.zeta_load,
                ess_soe=pop.ess_soe,
                ev_soe=pop.ev_soe,
                ev_connected=pop.ev_connected,
                ev_u=pop.ev_u,
                shift_left=pop.shift_left,
                ess_throughput=pop.ess_throughput,
            ),
            self.energy,
        )

    def _close_interval(self, step: int) -> None:
        pop = self.population
        connected = np.flatnonzero(pop.ev_connected == 1)
        start = self.env.now - self.dt_h
        full = connected[pop.ev_since[connected] <= start + 1e-12]
        hems.integrate_ev(
            connected,
            self.env.now,
            pop.ev_since,
            pop.ev_soe,
            pop.ev_u,
            self.kernel_params.ev,
            self.ev_energy,
            pop.ev_throughput,
        )
        hems.ev_step_noise(full, step, self.seed, self.dt_h, pop.ev_soe, self.kernel_params.ev)
        ess, ev = self.kernel_params.ess, self.kernel_params.ev
        self.rec.bound_excess = max(
            self.rec.bound_excess,
            ess.soe_min - pop.ess_soe.min(),
            pop.ess_soe.max() - ess.soe_max,
            ev.soe_min - pop.ev_soe.min(),
            pop.ev_soe.max() - ev.soe_max,
        )
        self.interval_energy[:] = self.energy.sum(axis=1) + self.ev_energy
        self._record_trajectories(step)
        for observer in self.observers:
            observer.interval_closed(self, step)
        self.ev_energy[:] = 0.0
        closed, self._interval_closed = self._interval_closed, self.env.event()
        closed.succeed(step)

    def _settle_books(self, step: int, stage: np.ndarray, p_coc: np.ndarray, p_g: float) -> None:
        pop = self.population
        e = self.priced_energy
        bought = np.bincount(pop.cluster, np.maximum(e, 0.0), minlength=len(stage))
        sold = np.bincount(pop.cluster, np.maximum(-e, 0.0), minlength=len(stage))
        books = cluster_books(self.mode, bought, sold)
        books["billed"] = stage * (bought - sold)
        books["grid_payment"] = p_g * (books["grid_import_kwh"] - books["grid_export_kwh"])
        books["inter_payment"] = p_coc * (books["inter_in_kwh"] - books["inter_out_kwh"])
        for name, value in books.items():
            self.rec.books[name][step] = value

    def _record_trajectories(self, step: int) -> None:
        """State of the recorded households at the end of interval ``step``."""
        pop = self.population
        for i in self.record_households:
            self.rec.trajectories.append(
                (
                    int(i),
                    step,
                    float(pop.ess_soe[i]),
                    float(pop.ev_soe[i]),
                    float(pop.ev_u[i]),
                    int(pop.ev_connected[i]),
                    float(self.interval_energy[i]),
                    float(self.ev_energy[i]),
                )
            )

    def _start_day(self, day: int) -> None:
        self._end_day(day - 1)
        pop = self.population
        pop.shift_left[:] = self.game.shiftable_quanta
        pop.ess_start[:] = pop.ess_soe
        pop.ev_start[:] = pop.ev_soe

    def _end_day(self, day: int) -> None:
        """Private costs of the day: degradation, discomfort, shortfall and end-of-day penalties.

        Discomfort is charged at the cluster law's controllable setting, also to
        a household with its own law (which books any difference itself).
        """
        for observer in self.observers:
            observer.day_ending(self, day)
        game, pop = self.game, self.population
        hh = game.config.household
        u_c = self.law.controllable[pop.cluster]
        discomfort = hh.controllable.discomfort * game.dt_h * np.sum(u_c**2, axis=1)
        quantum = hh.shiftable.power_kw * game.dt_h
        shortfall = hh.shiftable.shortfall_penalty * quantum * pop.shift_left
        terminal = np.zeros(pop.size)
        for device, soe, owned in ((hh.ess, pop.ess_soe, 1), (hh.ev, pop.ev_soe, pop.has_ev)):
            terminal += owned * devices.terminal_penalty(
                soe,
                device.initial_mean_kwh,
                device.terminal_linear,
                device.terminal_quadratic,
                device.terminal_smoothing_kwh,
            )
        degradation = (
            hh.ess.degradation * pop.ess_throughput + hh.ev.degradation * pop.ev_throughput
        )
        self.rec.private[day] += discomfort + shortfall + terminal + degradation
        pop.ess_throughput[:] = 0.0
        pop.ev_throughput[:] = 0.0
        for observer in self.observers:
            observer.day_ended(self, day)

    def run(self) -> None:
        """Run the whole horizon."""
        self.env.run(until=self.days * 24.0 + 1e-9)


def household_params(game: Game) -> hems.HouseholdParams:
    """What every HEMS of ``game`` knows of its devices; the cluster means start at zero."""
    hh = game.config.household
    return hems.HouseholdParams(
        exo=hems.Exogenous(
            pv_noise=float(hh.pv.noise),
            pv_corr=float(hh.pv.noise_corr),
            load_noise=float(hh.load.noise),
            load_corr=float(hh.load.noise_corr),
        ),
        ess=game.ess.battery,
        ev=game.ev.battery,
        shift=ShiftableWindow(*game.shiftable_window, float(hh.shiftable.power_kw)),
        ctrl_kw=float(hh.controllable.duty * hh.controllable.power_kw),
        pv_kw=np.zeros(game.n_clusters),
        load_kw=np.zeros(game.n_clusters),
    )
