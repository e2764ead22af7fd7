"""The deviating household inside the co-simulation, through the engine's public hooks.

One household plays its own policy while every other applies the law: its
policy is a :class:`~cosim.sim.hooks.HouseholdLaw` (an extra row of the law
tables the HEMS kernel reads), and observers record what the ε-Nash estimator
needs. The aggregators, books and prices still count it in its own cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.sim.engine import CoSimulation
from cosim.sim.hooks import HouseholdLaw, LawRow, Observer
from cosim.studies.joint_deviation import JointDeviation
from market.pricing import Mode
from models.feedback import FeedbackLaw, law_control
from models.game import Game


@dataclass(frozen=True)
class FineTables:
    """The price taker's battery controls on the fine grids, every cluster."""

    ess: np.ndarray
    """``(M, K, S_ess)``."""
    ev: np.ndarray
    """``(M, K, S_ev)``."""
    ess_grid: tuple[float, float]
    """First point and spacing of the fine ESS grid [kWh]."""
    ev_grid: tuple[float, float]
    """First point and spacing of the fine EV grid [kWh]."""


class PriceTakerDeviation(HouseholdLaw):
    """The household applies the fine tables at its own state of energy, each step
    (the fine-grid price taker of :mod:`cosim.studies.price_taker`).

    Writing one value over the whole row makes the HEMS's interpolation in the
    law's grid return it exactly; the HEMS then clips it to what the bounds
    allow, as for any set-point.
    """

    def __init__(self, tables: FineTables) -> None:
        self.fine = tables

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """The fine tables' controls of step ``k`` at the household's SoE."""
        pop, p = sim.population, int(sim.population.cluster[household])
        ess_soe, ev_soe = float(pop.ess_soe[household]), float(pop.ev_soe[household])
        row.ess[k] = law_control(self.fine.ess[p, k], *self.fine.ess_grid, ess_soe)
        row.ev[k] = law_control(self.fine.ev[p, k], *self.fine.ev_grid, ev_soe)


class TableDeviation(HouseholdLaw):
    """The deviator's own ESS table ``(K, S)``; its other devices keep its cluster's law."""

    def __init__(self, ess: np.ndarray) -> None:
        self.ess = ess

    def tables(self, sim: CoSimulation, household: int) -> LawRow:
        """The cluster's row with the ESS table replaced."""
        return super().tables(sim, household)._replace(ess=self.ess)


class FullInformationDeviation(TableDeviation):
    """Full information: the deviator's ESS table of each step is picked by the bin of
    its cluster's last cleared aggregate (the others' mean, its own term removed)."""

    def __init__(self, tables: np.ndarray, edges: np.ndarray) -> None:
        super().__init__(np.array(tables[:, 0, :]))
        self.by_bin, self.edges = tables, edges

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """Row ``k`` of the ESS table: the one of the bin the last interval fell in."""
        b = 0
        if k > 0:
            pop, p = sim.population, int(sim.population.cluster[household])
            lo, hi = pop.offsets[p], pop.offsets[p + 1]
            others = sim.interval_energy[lo:hi].sum() - sim.interval_energy[household]
            b = int(np.searchsorted(self.edges[k - 1], others / ((hi - lo) * sim.dt_h), "right"))
        row.ess[k] = self.by_bin[k, b]


class JointDeviationLaw(HouseholdLaw, Observer):
    """Local information, every device: the deviator re-solves its one-step problem at its
    own state each step (:meth:`~cosim.studies.joint_deviation.JointPolicy.act`).

    Also an observer: the engine charges the deviator the discomfort of its
    cluster law's controllable setting; at the end of each day this law books
    the difference to the settings it chose.
    """

    def __init__(self, joint: JointDeviation) -> None:
        self.joint = joint
        self._ctrl_u: list[float] = []

    def tables(self, sim: CoSimulation, household: int) -> LawRow:
        """The cluster's row, the policy of the deviator's type (owns an EV or not)."""
        self._household = household
        self._policy = self.joint.policy(bool(sim.population.has_ev[household]))
        return super().tables(sim, household)

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """Every control of step ``k``, chosen at the deviator's state."""
        pop, law, i = sim.population, sim.law, household
        p = int(pop.cluster[i])
        u_e, u_v, run, u_c = self._policy.act(
            k,
            float(pop.ess_soe[i]),
            float(pop.ev_soe[i]),
            bool(pop.ev_connected[i]),
            int(pop.shift_left[i]),
            law_control(law.ess[p, k], *law.ess_grid[:2], float(pop.ess_soe[i])),
            law_control(law.ev[p, k], *law.ev_grid[:2], float(pop.ev_soe[i])),
        )
        row.ess[k], row.ev[k], row.shiftable_run[k], row.controllable[k] = u_e, u_v, run, u_c
        self._ctrl_u.append(u_c)

    def day_ended(self, sim: CoSimulation, day: int) -> None:
        """The deviator pays the discomfort of its own settings, not the law's."""
        if not self._ctrl_u:
            return
        i = self._household
        p = int(sim.population.cluster[i])
        own = np.sum(np.square(self._ctrl_u))
        law = np.sum(np.square(sim.law.controllable[p, : len(self._ctrl_u)]))
        cc = sim.game.config.household.controllable
        sim.rec.private[day, i] += cc.discomfort * sim.dt_h * (own - law)
        self._ctrl_u = []


class WatchedEnergies(Observer):
    """Per interval, the watched households' total, ESS and base load − PV energies [kWh]."""

    def __init__(self, households: np.ndarray | None) -> None:
        self.households = np.asarray(households if households is not None else [], dtype=np.int64)
        self.total: list[np.ndarray] = []
        self.ess: list[np.ndarray] = []
        self.exo: list[np.ndarray] = []

    def interval_closed(self, sim: CoSimulation, step: int) -> None:
        """Record the interval's energies of the watched households."""
        self.total.append(sim.interval_energy[self.households].copy())
        self.ess.append(sim.energy[self.households, 1].copy())
        self.exo.append(sim.energy[self.households, 0].copy())


class DeviationSimulation(CoSimulation):
    """The co-simulation with household ``deviator`` playing its own policy.

    Every other household applies ``law``. The deviator has its own
    :class:`~cosim.sim.hooks.HouseholdLaw` — an extra row of the law tables
    the HEMS kernel reads; the aggregators, books and prices still count it in
    its own cluster. Its policy is either ``joint`` (all devices, re-solved at
    its state each step), an ESS table ``deviation`` ``(K, S)``, ``full``
    (ESS tables per bin of the last cleared aggregate), or ``fine`` (battery
    tables on finer grids, :class:`PriceTakerDeviation`). ``watch`` households
    have their per-step total, ESS and base-load − PV energies recorded.
    """

    def __init__(
        self,
        game: Game,
        law: FeedbackLaw,
        mode: Mode | str,
        households: np.ndarray,
        *,
        deviator: int | None = None,
        deviation: np.ndarray | None = None,
        joint: JointDeviation | None = None,
        watch: np.ndarray | None = None,
        full: tuple[np.ndarray, np.ndarray] | None = None,
        fine: FineTables | None = None,
        **kwargs: Any,
    ) -> None:
        self.deviator = deviator
        self.watching = WatchedEnergies(watch)
        observers: list[Observer] = [self.watching]
        own: HouseholdLaw | None = None
        if joint is not None:
            own = JointDeviationLaw(joint)
            observers.append(own)
        elif full is not None:
            own = FullInformationDeviation(*full)
        elif fine is not None:
            own = PriceTakerDeviation(fine)
        elif deviation is not None:
            own = TableDeviation(deviation)
        laws = {deviator: own} if deviator is not None and own is not None else {}
        super().__init__(
            game, law, mode, households, household_laws=laws, observers=observers, **kwargs
        )

    @property
    def watch(self) -> np.ndarray:
        """The watched households."""
        return self.watching.households

    @property
    def watch_total(self) -> list[np.ndarray]:
        """Per interval, the watched households' total energy [kWh]."""
        return self.watching.total

    @property
    def watch_ess(self) -> list[np.ndarray]:
        """Per interval, the watched households' ESS energy [kWh]."""
        return self.watching.ess

    @property
    def watch_exo(self) -> list[np.ndarray]:
        """Per interval, the watched households' base load − PV energy [kWh]."""
        return self.watching.exo
