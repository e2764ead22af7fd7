"""Both papers in one market: the mean-field layer (the outer fixed point).

Several clusters-of-clusters (CoCs; seed 000's GMFG, one game each) sit at
their own buses, seed 003's storage aggregators at others, and one economic
dispatch per market interval prices them all. Each CoC's law is solved
against the **expected** LMP at its bus (over its bus's load draw, as in the
coupled run, :mod:`models.coupling`), and that LMP depends on every other
CoC's import and every aggregator's storage: the outer fixed point iterates
on those flows.

**How the two kinds of players are put together.** On the expected day:

- a CoC's response to the others' flows is its GMFG equilibrium
  (:func:`models.equilibrium.solve_equilibrium`) with a
  :class:`~models.coupling.WholesaleLink` whose other load includes them; its
  own import moves its own LMP inside that equilibrium, as in the coupled run;
- an aggregator's belief at a fixed point of its learning (eq. (8) of seed
  003) equals the LMP at its bus; its response is the play policy of its
  optimal (DP) policy against that belief — Boltzmann at the scenario's
  ``play_temperature``, which makes the response continuous — and its storage
  schedule is that policy's expected grid energy on the stationary daily
  cycle of its prosumers' SoE distribution (exact, by propagating the
  distribution). Aggregators price-take, as in seed 003: the LMP they see is
  its mean over fixed draws of the CoC buses' loads (what their beliefs learn
  in the run, where those loads are drawn), their own storage included; the
  mean turns the LMP's steps (a unit at its limit) into ramps.

The outer iteration is Jacobi with a shrinking step ``θ_n = θ_0/(1 + n/n_half)``:
every response is computed from the same flows, then
``flows ← (1 − θ_n) flows + θ_n responses``. A constant step lets the players
herd: the LMP jumps where a unit reaches its limit, and on Hawaii40 the
evening peak moved between 18–20 h and 20–22 h at every iteration with
θ = 0.5 or 0.8 (measured). Its residual is the largest change a response
asks for, ``max |response − flows|`` in MW over CoCs, aggregators and
intervals — zero exactly at a fixed point, whatever the step, so a shrinking
step cannot fake convergence. Its tolerance is of the order of a CoC's own
accuracy: an inner equilibrium within its tolerances fixes the import of
20 000 households to about 0.5 MW. The LMP move the responses would cause
(``price_residual``, $/MWh) is in the history too; where the fixed point sits
at a unit's limit it does not settle (the dispatch's price there can be any
value of a vertical step), which is why the flows are the criterion. Where a
response jumps — storage against an expected LMP with a step at the value of
lost load — no pure response comes within the tolerance, and the flows settle
between the responses on either side of the jump: the averaged criterion
(:func:`criterion_met`) accepts flows within tolerance of the mean response
over the last ``outer.averaging_window`` iterations, provided they moved by
less than the tolerance meanwhile — a fixed point of the averaged response
(aggregators splitting their prosumers between two schedules). The finite-N run
starts the aggregators from these beliefs and lets them learn on, day by
day, while the households keep their laws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from market.aggregators import RENEWABLE_FUELS
from market.dispatch import DispatchOptions, EconomicDispatch
from market.learners import DynamicProgrammingLearner, play_policy
from market.network import Network, redraw_costs_by_fuel
from market.pricing import Mode
from market.storage import StorageModel
from models.config import GameConfig
from models.coupling import WholesaleLink, system_load, tabulated_link
from models.equilibrium import solve_equilibrium
from models.fixed_point import run_fixed_point
from models.game import Game, build_game, game_rng, import_range
from models.one_market_config import OneMarketScenario, OuterConfig
from models.passive import passive_equilibrium, passive_policy
from models.response import population_flow
from models.result import EquilibriumResult

__all__ = [
    "AggregatorPools",
    "CoCMember",
    "CoCTask",
    "OneMarket",
    "OneMarketEquilibrium",
    "build_one_market",
    "coc_response",
    "criterion_met",
    "interval_means",
    "solve_one_market",
    "storage_response",
]

#: Stream of the run's seed that draws the generators' costs (as the coupled run's).
COST_STREAM = 4
#: Stream of the run's seed that draws the CoC buses' loads of the expected LMP.
DRAW_STREAM = 6

#: Maps a function over tasks, in order (``map``, or a process pool's ``map``).
TaskMap = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


def _serial_map(fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterable[Any]:
    return map(fn, tasks)


@dataclass(frozen=True)
class CoCMember:
    """One cluster-of-clusters: its game, bus and the households it stands for."""

    game: Game
    bus: int
    households: int
    retail_adder: float
    import_grid_mw: np.ndarray
    """Imports at which its bus's LMP is tabulated [MW], ``(G,)``."""
    flexible: bool = True
    """False: its households play the passive law (:mod:`models.passive`), not the GMFG's."""

    def passive_import_mw(self, steps_per_interval: int) -> np.ndarray:
        """Its import per market interval under the passive law [MW], ``(I,)``: the
        same at any prices."""
        game = self.game
        flow = population_flow(game, passive_policy(game))
        per_household = (game.clusters.shares @ flow.net_kw).reshape(-1, steps_per_interval)
        return per_household.mean(axis=1) * self.households / 1000.0


@dataclass(frozen=True)
class AggregatorPools:
    """Seed 003's aggregators: pooled storage at their buses and how they play."""

    bus: np.ndarray
    """Bus index of each aggregator, ``(A,)``."""
    prosumers: np.ndarray
    """Prosumers with storage of each, ``(A,)``."""
    capacity_mwh: np.ndarray
    """Pooled storage capacity of each [MWh], ``(A,)``."""
    model: StorageModel
    temperature: float
    """Boltzmann temperature of the play policy [$ per MWh of capacity]; 0 = greedy."""
    epsilon: float
    initial_soe: float


@dataclass(frozen=True)
class OneMarket:
    """Everything the outer fixed point and the finite-N run share."""

    network: Network
    """The network with its (redrawn) costs, renewable units included."""
    interval_h: float
    steps_per_interval: int
    rest_mw: np.ndarray
    """Every bus's other load less the grid-scale renewables per interval [MW], ``(I, B)``."""
    renewables_mw: np.ndarray
    """Grid-scale renewables' output per interval and bus [MW], ``(I, B)``."""
    bus_load_std_mw: float
    cocs: tuple[CoCMember, ...]
    aggregators: AggregatorPools | None
    draws_mw: np.ndarray
    """Fixed draws of the CoC buses' load, ``(R, C)`` [MW]: the expected LMP is their mean."""
    dispatch: EconomicDispatch = field(repr=False, compare=False)

    @property
    def intervals(self) -> int:
        """Market intervals per day."""
        return self.rest_mw.shape[0]

    def expected_lmp(self, demand_mw: np.ndarray) -> np.ndarray:
        """LMP per interval and bus ``(I, B)`` [$/MWh] averaged over the CoC buses' load
        draws (common to every call, so that it moves only with ``demand_mw``)."""
        buses = [member.bus for member in self.cocs]
        out = np.zeros_like(demand_mw)
        for i, row in enumerate(demand_mw):
            for draw in self.draws_mw:
                shifted = row.copy()
                shifted[buses] += draw
                out[i] += self.dispatch.solve(shifted).lmp
        return out / len(self.draws_mw)

    def demand_mw(self, imports: np.ndarray, storage: np.ndarray) -> np.ndarray:
        """Every bus's demand per interval, ``(I, B)``: the rest, the CoCs' imports
        ``(C, I)`` and the aggregators' storage ``(A, I)`` at their buses."""
        out = self.rest_mw.copy()
        for member, x in zip(self.cocs, imports, strict=True):
            out[:, member.bus] += x
        if self.aggregators is not None:
            np.add.at(out.T, self.aggregators.bus, storage)
        return out

    def coc_task(self, c: int, imports: np.ndarray, storage: np.ndarray, mode: Mode) -> CoCTask:
        """What CoC ``c``'s response to the flows needs (picklable: it may run elsewhere)."""
        mine = np.zeros_like(imports)
        mine[c] = imports[c]
        return CoCTask(
            network=self.network,
            member=self.cocs[c],
            others_mw=self.demand_mw(imports - mine, storage),
            renewables_mw=self.renewables_mw.sum(axis=1),
            bus_load_std_mw=self.bus_load_std_mw,
            steps_per_interval=self.steps_per_interval,
            import_mw=imports[c],
            mode=mode,
            dispatch_options=self.dispatch.options,
        )


@dataclass(frozen=True)
class CoCTask:
    """One CoC's response to fixed flows of the others (:func:`coc_response`)."""

    network: Network
    member: CoCMember
    others_mw: np.ndarray
    """Every bus's demand per interval without this CoC's import [MW], ``(I, B)``."""
    renewables_mw: np.ndarray
    bus_load_std_mw: float
    steps_per_interval: int
    import_mw: np.ndarray
    """Its current import per interval [MW], ``(I,)``: where its play starts."""
    mode: Mode
    dispatch_options: DispatchOptions

    def link(self) -> WholesaleLink:
        """The CoC's link: its bus's expected LMP tabulated with the others' flows fixed."""
        member = self.member
        return tabulated_link(
            network=self.network,
            bus=member.bus,
            other_load_mw=self.others_mw,
            renewables_mw=self.renewables_mw,
            households=member.households,
            retail_adder=member.retail_adder,
            bus_load_std_mw=self.bus_load_std_mw,
            import_grid_mw=member.import_grid_mw,
            steps_per_interval=self.steps_per_interval,
            dispatch_options=self.dispatch_options,
        )


def coc_response(task: CoCTask) -> tuple[np.ndarray, EquilibriumResult]:
    """A CoC's GMFG equilibrium against the expected LMP at its bus, and its interval import.

    The play starts from the grid price of its current import. An inflexible
    CoC's law is the passive one (:func:`models.passive.passive_equilibrium`),
    priced the same way: its import is the same whatever the others do.
    """
    link = task.link()
    start = np.repeat(task.import_mw, task.steps_per_interval) * 1000.0 / link.households
    game = replace(task.member.game, wholesale=link, grid_price=link.grid_price(start))
    solve = solve_equilibrium if task.member.flexible else passive_equilibrium
    law = solve(game, task.mode)
    return link.interval_import_mw(law.game.clusters.shares @ law.flow.net_kw), law


def build_one_market(
    scenario: OneMarketScenario,
    network: Network,
    coc_bus: tuple[int, ...],
    aggregator_bus: tuple[int, ...],
    games: tuple[tuple[GameConfig, Path | None], ...],
) -> OneMarket:
    """The market of a validated scenario (:mod:`cosim.scenario.one_market` resolves the
    buses and loads the games, each with its directory).

    The rest of the system's load follows the first CoC's game (its day, load
    and PV shapes); each interval's load is the mean of its control steps'.
    A case file's costs are drawn by fuel from stream ``COST_STREAM`` of the seed.
    """
    if scenario.network.file is not None and scenario.network.redraw_costs:
        network = redraw_costs_by_fuel(network, game_rng(scenario.seed, COST_STREAM))
    built = [build_game(config, base) for config, base in games]
    first = built[0]
    n = round(scenario.time.market_interval_h / first.dt_h)
    load, renewables = system_load(scenario.rest, network, first.base_per_kwh, first.pv_per_kwp)
    cocs: list[CoCMember] = []
    for game, cfg, bus in zip(built, scenario.coc, coc_bus, strict=True):
        lo, hi = import_range(game.config, game.clusters, game.pv_per_kwp, game.base_per_kwh)
        grid = cfg.households * np.linspace(lo, hi, scenario.outer.import_points) / 1000.0
        cocs.append(CoCMember(game, bus, cfg.households, cfg.retail_adder, grid, cfg.flexible))
    keep = tuple(g for g in network.generators if g.fuel not in RENEWABLE_FUELS)
    return OneMarket(
        network=network,
        interval_h=scenario.time.market_interval_h,
        steps_per_interval=n,
        rest_mw=interval_means(load - renewables, n),
        renewables_mw=interval_means(renewables, n),
        bus_load_std_mw=scenario.rest.bus_load_std_mw,
        cocs=tuple(cocs),
        aggregators=_pools(scenario, network, aggregator_bus),
        draws_mw=_draws(scenario, len(cocs)),
        dispatch=EconomicDispatch(replace(network, generators=keep), scenario.dispatch.options()),
    )


def _draws(scenario: OneMarketScenario, cocs: int) -> np.ndarray:
    """``outer.noise_draws`` draws of the CoC buses' load from stream ``DRAW_STREAM``."""
    std = scenario.rest.bus_load_std_mw
    if std == 0.0:
        return np.zeros((1, cocs))
    rng = game_rng(scenario.seed, DRAW_STREAM)
    return std * rng.standard_normal((scenario.outer.noise_draws, cocs))


def interval_means(per_step: np.ndarray, n: int) -> np.ndarray:
    """Means over each market interval's ``n`` control steps, ``(K, B)`` → ``(K / n, B)``."""
    return per_step.reshape(-1, n, per_step.shape[1]).mean(axis=1)


def _pools(
    scenario: OneMarketScenario, network: Network, buses: tuple[int, ...]
) -> AggregatorPools | None:
    agg = scenario.aggregators
    if agg is None or not buses:
        return None
    bus = np.asarray(buses, dtype=np.intp)
    nominal = np.clip(network.nominal_demand_mw, 0.0, None)[bus]
    st, learn = agg.storage, agg.learning
    prosumers = np.rint(agg.prosumers_per_mw * nominal).astype(np.int64)
    return AggregatorPools(
        bus=bus,
        prosumers=prosumers,
        capacity_mwh=prosumers * st.capacity_kwh / 1000.0,
        model=StorageModel(st.soe_levels, st.max_action_levels, st.efficiency, learn.discount),
        temperature=learn.play_temperature,
        epsilon=learn.play_epsilon,
        initial_soe=st.initial_soe,
    )


def storage_response(
    pools: AggregatorPools, belief: np.ndarray, interval_h: float, max_days: int = 1000
) -> np.ndarray:
    """Each aggregator's expected storage power per interval [MW], ``(A, I)``, on the
    stationary daily cycle of its play policy against ``belief`` ``(A, I)`` [$/MWh].

    The play policy (:func:`market.learners.play_policy`) of the DP optimum;
    the SoE distribution of the aggregator's prosumers is propagated exactly,
    day after day from ``initial_soe``, until the start-of-day distribution
    repeats to 1e-12 (a greedy policy's cycle may span days: then the mean of
    the last ``max_days // 10`` days is taken).
    """
    model = pools.model
    a, slots = belief.shape
    dp = DynamicProgrammingLearner(model, a, slots)
    dp.train(belief)
    pi = play_policy(model, dp.q_values(), pools.temperature, pools.epsilon)  # (A, I, S, U)
    energy_of = pi @ model.grid_energy  # expected grid energy per state, (A, I, S)
    # moves[s, u, s']: action u from SoE s lands on s'
    moves = np.zeros((model.n_soe, model.n_actions, model.n_soe))
    moves[np.arange(model.n_soe)[:, None], np.arange(model.n_actions), model.next_soe] = 1.0
    step = np.einsum("aisu,sut->aist", pi, moves)  # (A, I, S, S')
    mu = np.zeros((a, model.n_soe))
    mu[:, model.soe_index(pools.initial_soe)] = 1.0
    days: list[np.ndarray] = []
    for _ in range(max_days):
        start, energy = mu, np.empty((a, slots))
        for i in range(slots):
            energy[:, i] = np.einsum("as,as->a", mu, energy_of[:, i])
            mu = np.einsum("as,ast->at", mu, step[:, i])
        days.append(energy)
        if np.max(np.abs(mu - start)) <= 1e-12:
            break
    else:
        energy = np.mean(days[-max(max_days // 10, 1) :], axis=0)
    return pools.capacity_mwh[:, None] * energy / interval_h


@dataclass
class OuterState:
    """Flows of the expected day at one outer iteration."""

    imports: np.ndarray
    """Each CoC's import per interval [MW], ``(C, I)``."""
    storage: np.ndarray
    """Each aggregator's storage power per interval [MW], ``(A, I)``."""
    laws: list[EquilibriumResult]
    """Each CoC's equilibrium against the last flows (empty before the first iteration)."""
    lmp: np.ndarray
    """Expected LMP per interval and bus of the flows [$/MWh], ``(I, B)``."""
    iteration: int = 0
    recent: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    """The last ``outer.averaging_window`` iterations' (flows, responses), imports and
    storage flattened together, oldest first: what the averaged criterion reads."""


class OuterFixedPoint:
    """Jacobi iteration on the flows of the expected day (see the module docstring)."""

    def __init__(
        self,
        market: OneMarket,
        mode: Mode,
        outer: OuterConfig,
        on_law: Callable[[int, int], None] | None = None,
        map_tasks: TaskMap | None = None,
    ) -> None:
        self.market, self.mode = market, mode
        self.map: TaskMap = map_tasks or _serial_map
        self.damping, self.half_life = outer.damping, outer.damping_half_life
        self.tolerance, self.window = outer.tolerance_mw, outer.averaging_window
        self.on_law = on_law

    def init_state(self) -> OuterState:
        """No storage moves; a flexible CoC imports nothing, an inflexible one its passive
        import (its response, whatever the prices)."""
        m = self.market
        n_agg = 0 if m.aggregators is None else m.aggregators.bus.size
        imports, storage = np.zeros((len(m.cocs), m.intervals)), np.zeros((n_agg, m.intervals))
        for c, member in enumerate(m.cocs):
            if not member.flexible:
                imports[c] = member.passive_import_mw(m.steps_per_interval)
        lmp = self.lmp(imports, storage)
        return OuterState(imports, storage, [], lmp)

    def lmp(self, imports: np.ndarray, storage: np.ndarray) -> np.ndarray:
        """Expected LMP per interval and bus of the flows (over the CoC buses' draws)."""
        return self.market.expected_lmp(self.market.demand_mw(imports, storage))

    def respond(self, state: OuterState) -> tuple[np.ndarray, np.ndarray, list[EquilibriumResult]]:
        """Every player's response to the same flows (the CoCs' through ``self.map``)."""
        m = self.market
        tasks = [m.coc_task(c, state.imports, state.storage, self.mode) for c in range(len(m.cocs))]
        laws, imports = [], np.empty_like(state.imports)
        for c, (imported, law) in enumerate(self.map(coc_response, tasks)):
            imports[c] = imported
            laws.append(law)
            if self.on_law is not None:
                self.on_law(c, len(m.cocs))
        storage = state.storage
        if m.aggregators is not None:
            belief = state.lmp[:, m.aggregators.bus].T
            storage = storage_response(m.aggregators, belief, m.interval_h)
        return imports, storage, laws

    def step_size(self, n: int) -> float:
        """``θ_n = θ_0 / (1 + n / n_half)``: the players respond to prices that jump (a unit
        at its limit) in herds, and a shrinking step damps the herd (Robbins–Monro)."""
        return self.damping / (1.0 + n / self.half_life)

    def step_next_state(self, state: OuterState) -> tuple[OuterState, dict[str, float]]:
        """Responses to the current flows, then a damped step towards them."""
        imports, storage, laws = self.respond(state)
        responded = self.lmp(imports, storage)
        theta = self.step_size(state.iteration)
        new_imports = (1.0 - theta) * state.imports + theta * imports
        new_storage = (1.0 - theta) * state.storage + theta * storage
        lmp = self.lmp(new_imports, new_storage)
        flows = np.concatenate([state.imports.ravel(), state.storage.ravel()])
        responses = np.concatenate([imports.ravel(), storage.ravel()])
        recent = (*state.recent, (flows, responses))[-self.window :]
        residuals = {
            "price_residual": float(np.max(np.abs(responded - state.lmp))),
            "import_residual_mw": float(np.max(np.abs(imports - state.imports))),
            "storage_residual_mw": float(np.max(np.abs(storage - state.storage), initial=0.0)),
            **self.averaged_residuals(recent),
            "laws_converged": float(all(law.converged for law in laws)),
            "step": theta,
        }
        return OuterState(
            new_imports, new_storage, laws, lmp, state.iteration + 1, recent
        ), residuals

    def averaged_residuals(
        self, recent: tuple[tuple[np.ndarray, np.ndarray], ...]
    ) -> dict[str, float]:
        """The averaged criterion's residuals over the last ``averaging_window`` iterations
        (NaN until there are that many).

        ``averaged_residual_mw``: the largest gap between the flows and the mean of the
        window's responses; ``window_move_mw``: how far the flows moved within the window.
        """
        if len(recent) < self.window:
            return {"averaged_residual_mw": float("nan"), "window_move_mw": float("nan")}
        flows = np.array([f for f, _ in recent])
        mean_response = np.mean([r for _, r in recent], axis=0)
        return {
            "averaged_residual_mw": float(np.max(np.abs(mean_response - flows[-1]))),
            "window_move_mw": float(np.max(np.ptp(flows, axis=0))),
        }

    def is_converged(self, residuals: dict[str, float]) -> bool:
        """:func:`criterion_met` says one was."""
        return criterion_met(residuals, self.tolerance) != "none"


def criterion_met(residuals: dict[str, float], tolerance: float) -> str:
    """Which convergence criterion an outer iteration's residuals meet.

    Every law converged, and either no response is more than ``tolerance`` from
    the flows (``"responses"``), or the window's mean response is within it and
    the flows moved by less than it over the window (``"averaged responses
    (mixed)"``: a fixed point of the averaged response, where a response
    jumps). ``"none"`` otherwise.
    """
    if residuals["laws_converged"] != 1.0:
        return "none"
    r = residuals
    if r["import_residual_mw"] <= tolerance and r["storage_residual_mw"] <= tolerance:
        return "responses"
    if r["averaged_residual_mw"] <= tolerance and r["window_move_mw"] <= tolerance:
        return "averaged responses (mixed)"
    return "none"


@dataclass
class OneMarketEquilibrium:
    """The outer fixed point: every CoC's law, the flows and prices of the expected day."""

    market: OneMarket
    laws: list[EquilibriumResult]
    """Each CoC's equilibrium against the final flows of the others."""
    imports_mw: np.ndarray
    """``(C, I)``."""
    storage_mw: np.ndarray
    """``(A, I)``."""
    lmp: np.ndarray
    """``(I, B)`` [$/MWh], the expected LMP of the final flows (over the CoC buses' draws)."""
    history: list[dict[str, float]]
    converged: bool

    @property
    def beliefs(self) -> np.ndarray:
        """The aggregators' beliefs at the fixed point: the LMP at their buses, ``(A, I)``."""
        if self.market.aggregators is None:
            return np.zeros((0, self.market.intervals))
        return self.lmp[:, self.market.aggregators.bus].T


def solve_one_market(
    market: OneMarket,
    scenario: OneMarketScenario,
    mode: Mode = Mode.COC,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    on_law: Callable[[int, int], None] | None = None,
    map_tasks: TaskMap | None = None,
) -> OneMarketEquilibrium:
    """The outer fixed point of ``market`` (``scenario.outer`` sets its iteration).

    Non-convergence is reported (``converged`` false, the whole history kept),
    never hidden; the laws returned are the last responses, each with its own
    ``converged`` flag. ``map_tasks`` maps :func:`coc_response` over the CoCs'
    tasks in order (default: one after the other; e.g. a process pool's ``map``
    to solve them side by side — the results are the same).
    """
    algo = OuterFixedPoint(market, mode, scenario.outer, on_law, map_tasks)
    run = run_fixed_point(algo, scenario.outer.max_iterations, on_iteration)
    state = run.state
    return OneMarketEquilibrium(
        market, state.laws, state.imports, state.storage, state.lmp, run.history, run.converged
    )
