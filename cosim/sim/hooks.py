"""Public extension points of the co-simulation: households' own laws and observers.

A study or a benchmark changes what :class:`~cosim.sim.engine.CoSimulation`
does through these, never by overriding its private steps:

* :class:`HouseholdLaw` — how one household chooses its controls when it does
  not apply its cluster's feedback law. The household reads its own row of the
  law tables (:class:`LawTables`); the compiled kernel still does the
  per-household work for everyone, and the law only writes its row — once, or
  before each control step at the household's own state.
* :class:`Observer` — callbacks when an interval closes (its energy known,
  before it is priced) and when a day ends (before and after the engine books
  the day's private costs).
* :class:`PriceSource` — where the grid price of each market interval comes
  from when several co-simulations share one market (one dispatch for all).
* ``ev_schedule`` of :class:`~cosim.sim.engine.CoSimulation` — where each day's
  EV plug-out and plug-in times come from.
* :meth:`CoSimulation.control_step <cosim.sim.engine.CoSimulation.control_step>`
  — one control step of every household, callable on its own (benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from models.feedback import FeedbackLaw

if TYPE_CHECKING:
    import simpy

    from cosim.sim.engine import CoSimulation


class PriceSource(Protocol):
    """The market a co-simulation's grid price comes from, shared with others.

    At the end of each market interval (``steps_per_interval`` control steps)
    the co-simulation asks for its price with the interval's mean net exchange
    per household; the event it yields on carries ``p_G`` [$/kWh] once the
    market has cleared the interval. Its steps are then cleared in turn.
    """

    steps_per_interval: int

    def price(self, sim: CoSimulation, step: int, mean_net_kw: float) -> simpy.Event:
        """An event whose value is ``p_G`` of the market interval starting at ``step``."""
        ...


class LawRow(NamedTuple):
    """One household's law over a day: what it applies at each control step.

    The arrays of a household with its own law are views onto its row of the
    :class:`LawTables`: writing into them changes what the HEMS applies.
    """

    ess: np.ndarray
    """ESS control at the SoE grid points, ``(K, S)`` (interpolated in the SoE)."""
    ev: np.ndarray
    """EV control (connected) at the SoE grid points, ``(K, S)``."""
    shiftable_run: np.ndarray
    """``P(run | k, quanta left)``, ``(K, R+1)``."""
    controllable: np.ndarray
    """Controllable-load setting ``u_c``, ``(K,)``."""


class LawTables(NamedTuple):
    """The law tables the HEMS kernel reads: one row per law, and each household's row.

    Rows ``0 … M−1`` are the clusters' feedback laws; with households' own laws
    (:class:`HouseholdLaw`), row ``M + j`` is the ``j``-th of them. Without
    any, the tables are the :class:`~models.feedback.FeedbackLaw`'s own arrays
    and ``row`` is the population's cluster column.
    """

    row: np.ndarray
    """Row of the tables each household applies, ``(N,)`` int64."""
    ess: np.ndarray
    """``(R, K, S)``."""
    ev: np.ndarray
    """``(R, K, S)``."""
    shiftable_run: np.ndarray
    """``(R, K, Q+1)``."""
    controllable: np.ndarray
    """``(R, K)``."""
    profile: np.ndarray
    """Cluster whose mean PV and base load the households of each row see, ``(R,)``."""

    def law_row(self, row: int) -> LawRow:
        """Views onto row ``row`` of the tables."""
        return LawRow(self.ess[row], self.ev[row], self.shiftable_run[row], self.controllable[row])


class HouseholdLaw:
    """How one household chooses its controls instead of applying its cluster's law.

    The engine gives the household a row of its own in the law tables: it asks
    :meth:`tables` for the row's contents once, when the simulation is built,
    and calls :meth:`set_controls` at the start of every control step, before
    the kernel applies the tables to every household. The household's
    exogenous profile, random numbers, devices, aggregate and bills stay those
    of its cluster; only the controls it reads change.

    The defaults give the cluster's law unchanged (the plain run, bit for bit);
    subclass and override :meth:`tables`, :meth:`set_controls` or both. The
    engine books the controllable load's discomfort at the cluster law's
    setting; a law that changes that setting books the difference itself
    (e.g. as an :class:`Observer` in :meth:`Observer.day_ended`).
    """

    def tables(self, sim: CoSimulation, household: int) -> LawRow:
        """The household's law for the whole run, asked once when ``sim`` is built.

        Parameters
        ----------
        sim
            The simulation being built: its ``game``, ``law``, ``population``
            and ``kernel_params`` are set, its processes not yet started.
        household
            Index of the household in the population.

        Returns
        -------
        LawRow
            Arrays shaped like one cluster's row of ``sim.law`` (copied into
            the tables). Default: the household's cluster's row.
        """
        law, p = sim.law, int(sim.population.cluster[household])
        return LawRow(law.ess[p], law.ev[p], law.shiftable_run[p], law.controllable[p])

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """Write the household's controls of step ``k`` into ``row`` before they are applied.

        Parameters
        ----------
        sim
            The running simulation; the household's state is that at the start
            of the step and ``sim.interval_energy`` holds the last closed
            interval's energies.
        household
            Index of the household.
        step, k
            Global control step and step within the day.
        row
            Views onto the household's row of the law tables, written in place
            (e.g. ``row.ess[k] = table``). Default: nothing is written.
        """


class Observer:
    """Watches a co-simulation; every method does nothing unless overridden.

    Observers are called in the order they were given, from within the
    engine's control clock, and must not change the simulation's state unless
    that is their purpose (as a :class:`HouseholdLaw` booking its own costs).
    """

    def interval_closed(self, sim: CoSimulation, step: int) -> None:
        """Interval ``step`` has closed: its energies are known, its prices not yet.

        ``sim.energy`` ``(N, 4)`` holds what each household drew over the
        interval by base load − PV, ESS, shiftable and controllable load,
        ``sim.ev_energy`` its EV's energy and ``sim.interval_energy`` the total
        [kWh]; the states are those at the interval's end. The aggregators
        clear the interval afterwards (``sim.rec.m[step]``, the prices and the
        bills are not set yet).
        """

    def day_ending(self, sim: CoSimulation, day: int) -> None:
        """Day ``day`` is over, its private costs not booked yet.

        The states are the day's final ones, ``population.ess_throughput`` and
        ``ev_throughput`` hold the day's ``Σ u²·Δt`` and ``sim.rec.private[day]``
        holds only the EV departure penalties charged during the day.
        """

    def day_ended(self, sim: CoSimulation, day: int) -> None:
        """Day ``day``'s private costs are booked in ``sim.rec.private[day]``.

        Degradation, discomfort, shiftable shortfall and end-of-day penalties
        are added, and the throughputs reset. The bills of the day's last
        interval are settled afterwards, when that interval clears.
        """


def build_law_tables(
    sim: CoSimulation, own: Mapping[int, HouseholdLaw]
) -> tuple[LawTables, list[tuple[int, HouseholdLaw, LawRow]]]:
    """The law tables of ``sim``, with a row for each household that has its own law.

    Returns
    -------
    tables
        What the kernel reads.
    rows
        ``(household, law, views onto its row)`` per own law, in the order of ``own``.

    Raises
    ------
    ValueError
        When a household index is outside the population or an own law's table
        is not shaped like a cluster's row.
    """
    law: FeedbackLaw = sim.law
    cluster = sim.population.cluster
    n, m = len(cluster), sim.game.n_clusters
    if not own:
        tables = LawTables(
            cluster, law.ess, law.ev, law.shiftable_run, law.controllable, np.arange(m)
        )
        return tables, []
    households = [int(i) for i in own]
    for i in households:
        if not 0 <= i < n:
            raise ValueError(f"household_laws: household {i} is not in the population (N = {n})")
    given = [own[i].tables(sim, i) for i in households]
    for i, row in zip(households, given, strict=True):
        for name, table in row._asdict().items():
            expected = getattr(law, name).shape[1:]
            if np.shape(table) != expected:
                raise ValueError(
                    f"household_laws[{i}]: its {name} table has shape {np.shape(table)}, "
                    f"expected {expected} (one cluster's row of the feedback law)"
                )

    def extend(name: str) -> np.ndarray:
        rows = np.stack([np.asarray(getattr(row, name)) for row in given])
        return np.ascontiguousarray(np.concatenate([getattr(law, name), rows]))

    row_of = cluster.copy()
    row_of[households] = m + np.arange(len(households))
    tables = LawTables(
        row_of,
        extend("ess"),
        extend("ev"),
        extend("shiftable_run"),
        extend("controllable"),
        np.concatenate([np.arange(m), cluster[households]]),
    )
    views = [(i, own[i], tables.law_row(m + j)) for j, i in enumerate(households)]
    return tables, views
