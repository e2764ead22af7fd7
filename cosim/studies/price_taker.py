"""A deviation that shares none of the law's discretisation: the fine-grid price taker.

The deviator plays the best response to the law's **mean-field** prices — as
if its own exchange and the others' fluctuations did not move them — computed
on a SoE grid ``refine`` times finer than the law's, by the grid chain's exact
program (the linear continuation), and applied at its own continuous state of
energy each control step. Its shiftable appliance and controllable load keep
the law's. It is a feasible deviation of the local-information class (own
state and time only), so its paired gain in the co-simulation is a lower bound
on ε_N for that class, whatever the law's grid believes.

In stand-alone mode no price depends on anyone, so its expected gain is the
law's exploitability in the continuous game
(:func:`models.exploitability.continuous_exploitability`) at every N: a known
answer the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.sim import hems
from cosim.sim.engine import CoSimulation
from cosim.sim.hooks import HouseholdLaw, LawRow
from cosim.studies.epsilon import deviators
from cosim.studies.gap_statistics import Precision, cluster_means, max_mean_ci
from cosim.studies.law_under_test import LawUnderTest
from cosim.studies.montecarlo import engine_seed
from models.exploitability import CONTINUOUS_REFINE, refined_game
from models.response import best_response

__all__ = [
    "FineTables",
    "PriceTakerDeviation",
    "PriceTakerGap",
    "measure_price_taker_gap",
    "price_taker_tables",
]


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


def price_taker_tables(law: LawUnderTest, refine: int = CONTINUOUS_REFINE) -> FineTables:
    """The best response to ``law``'s mean-field prices on grids ``refine`` times finer."""
    fine = refined_game(law.game, refine)
    policy, _ = best_response(fine, np.ascontiguousarray(law.stage_price))
    return FineTables(
        ess=policy.ess,
        ev=policy.ev,
        ess_grid=(float(fine.ess.soe[0]), fine.ess.spacing),
        ev_grid=(float(fine.ev.soe[0]), fine.ev.spacing),
    )


class PriceTakerDeviation(HouseholdLaw):
    """The household applies the fine tables at its own state of energy, each step.

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
        row.ess[k] = hems.law_control(self.fine.ess[p, k], *self.fine.ess_grid, ess_soe)
        row.ev[k] = hems.law_control(self.fine.ev[p, k], *self.fine.ev_grid, ev_soe)


def _one_replication(
    law: LawUnderTest, households: np.ndarray, tables: FineTables, seed: int
) -> list[dict[str, float | int | bool]]:
    """The law's run and one price-taker run per cluster on the same seed (paired)."""
    feedback = law.feedback_law()
    base = CoSimulation(law.game, feedback, law.mode, households, seed=seed)
    base.run()
    cost = base.rec.bills[0] + base.rec.private[0]
    rows = []
    for p, i in enumerate(deviators(households)):
        dev = CoSimulation(
            law.game,
            feedback,
            law.mode,
            households,
            seed=seed,
            household_laws={int(i): PriceTakerDeviation(tables)},
        )
        dev.run()
        j_dev = float(dev.rec.bills[0, i] + dev.rec.private[0, i])
        rows.append(
            {
                "cluster": p,
                "j_law": float(cost[i]),
                "j_dev": j_dev,
                "gap": float(cost[i]) - j_dev,
                "has_ev": bool(base.population.has_ev[i]),
            }
        )
    return rows


@dataclass(frozen=True)
class PriceTakerGap:
    """The fine-grid price taker's paired gain over the law."""

    rows: pd.DataFrame
    """One row per replication and cluster: ``j_law``, ``j_dev``, ``gap``, ``has_ev``."""
    per_cluster: pd.DataFrame
    """Mean gain per cluster with simultaneous 95 % intervals (:func:`cluster_means`)."""
    largest: tuple[float, float, float, int]
    """The largest cluster mean, its simultaneous interval and its cluster (:func:`max_mean_ci`)."""
    stopped: str
    """Why the replications stopped: ``"fixed"``, ``"precise"`` or ``"max_replications"``."""

    @property
    def replications(self) -> int:
        """Replications run."""
        return int(self.rows["replication"].nunique())


def measure_price_taker_gap(
    law: LawUnderTest,
    households: np.ndarray,
    replications: int,
    seed: int,
    refine: int = CONTINUOUS_REFINE,
    precision: Precision | None = None,
) -> PriceTakerGap:
    """The fine-grid price taker's paired gain over the law, per cluster and for the max.

    Parameters
    ----------
    law
        The law every other household plays.
    households
        ``N_p`` per cluster.
    replications
        Paired replications (one day each) per batch; replication ``r`` runs
        on the ``r``-th ``SeedSequence`` child of ``seed``, so a run with more
        replications extends one with fewer.
    seed
        The study's seed.
    refine
        How many times finer the deviator's grids are than the law's.
    precision
        Add batches of ``replications`` until it is met (see
        :class:`~cosim.studies.gap_statistics.Precision`); ``None``: one batch.
    """
    tables = price_taker_tables(law, refine)
    parent = np.random.SeedSequence(seed)
    rows: list[dict[str, float | int | bool]] = []
    done = 0
    while True:
        for child in parent.spawn(replications):
            for row in _one_replication(law, households, tables, engine_seed(child)):
                rows.append({"replication": done, **row})
            done += 1
        frame = pd.DataFrame(rows)
        largest = max_mean_ci(frame)
        if precision is None:
            stopped = "fixed"
        elif precision.met(*largest[:3]):
            stopped = "precise"
        elif done + replications > precision.max_replications:
            stopped = "max_replications"
        else:
            continue
        return PriceTakerGap(frame, cluster_means(frame), largest, stopped)
