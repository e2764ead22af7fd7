"""A deviation that shares none of the law's discretisation: the fine-grid price taker.

The deviator plays the best response to the law's **mean-field** prices — as
if its own exchange and the others' fluctuations did not move them — computed
on a SoE grid ``refine`` times finer than the law's, by the grid chain's exact
program (the linear continuation), and applied at its own continuous state of
energy each control step (:class:`cosim.studies.deviation.PriceTakerDeviation`,
measured by the ε estimator's paired runs, :class:`cosim.studies.epsilon.MeasureGap`).
Its shiftable appliance and controllable load keep the law's. It is a
feasible deviation of the local-information class (own state and time only),
so its paired gain in the co-simulation is a lower bound on ε_N for that
class, whatever the law's grid believes.

In stand-alone mode no price depends on anyone, so its expected gain is the
law's exploitability in the continuous game
(:func:`models.exploitability.continuous_exploitability`) at every N: a known
answer the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.studies.deviation import FineTables
from cosim.studies.epsilon import MeasureGap
from cosim.studies.gap_statistics import Precision, cluster_means, max_mean_ci
from cosim.studies.law_under_test import LawUnderTest
from models.exploitability import CONTINUOUS_REFINE, refined_game
from models.response import best_response

__all__ = [
    "PriceTakerGap",
    "measure_price_taker_gap",
    "price_taker_tables",
]


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


@dataclass(frozen=True)
class PriceTakerGap:
    """The fine-grid price taker's paired gain over the law."""

    rows: pd.DataFrame
    """One row per replication and cluster (:class:`~cosim.studies.epsilon.MeasureGap`'s)."""
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
    measure = MeasureGap(law, households, tables)
    rows: list[pd.DataFrame] = []
    done = 0
    while True:
        for child in parent.spawn(replications):
            rows.append(measure(done, child).assign(replication=done))
            done += 1
        frame = pd.concat(rows, ignore_index=True)
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
