"""The feedback law every HEMS applies: the GMFG equilibrium as a lookup table.

``u*(k, p, state)``: for each cluster ``p`` and control step ``k``, the battery
controls at the SoE grid points (interpolated linearly in between), the
probability of running the shiftable appliance given the quanta left, and the
controllable-load setting. A HEMS needs only its own cluster, the time and its
own state — the decentralised information of the mean-field law.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from models.game import Game
from models.response import Policy
from models.result import EquilibriumResult


class SoeGrid(NamedTuple):
    """A uniform SoE grid: the points ``first + i·spacing``, ``i = 0..points−1``."""

    first: float
    """First grid point [kWh]."""
    spacing: float
    """Distance between grid points [kWh]."""
    points: int
    """Number of grid points."""


@dataclass(frozen=True)
class FeedbackLaw:
    """Lookup tables of the equilibrium policy, shaped for the compiled kernels."""

    dt_h: float
    ess: np.ndarray
    """ESS control at the SoE grid points, ``(M, K, S)``."""
    ess_grid: SoeGrid
    """The ESS SoE grid."""
    ev: np.ndarray
    """EV control (connected) at the SoE grid points, ``(M, K, S)``."""
    ev_grid: SoeGrid
    """The EV SoE grid."""
    shiftable_run: np.ndarray
    """``P(run | k, quanta left)``, ``(M, K, R+1)``."""
    controllable: np.ndarray
    """``u_c``, ``(M, K)``."""

    @property
    def steps(self) -> int:
        """Control steps per day K."""
        return self.controllable.shape[1]

    @classmethod
    def from_policy(cls, game: Game, policy: Policy) -> FeedbackLaw:
        """The tables of ``policy`` on ``game``'s grids."""
        return cls(
            dt_h=game.dt_h,
            ess=np.ascontiguousarray(policy.ess),
            ess_grid=SoeGrid(float(game.ess.soe[0]), game.ess.spacing, len(game.ess.soe)),
            ev=np.ascontiguousarray(policy.ev),
            ev_grid=SoeGrid(float(game.ev.soe[0]), game.ev.spacing, len(game.ev.soe)),
            shiftable_run=np.ascontiguousarray(policy.shiftable_run),
            controllable=np.ascontiguousarray(policy.controllable),
        )

    @classmethod
    def from_equilibrium(cls, result: EquilibriumResult) -> FeedbackLaw:
        """The law of a solved equilibrium."""
        return cls.from_policy(result.game, result.policy)


@njit(cache=True)
def law_control(row: np.ndarray, first: float, spacing: float, soe: float) -> float:
    """The law's control at a continuous SoE: linear interpolation between grid points."""
    n = row.shape[0]
    pos = (soe - first) / spacing
    if pos <= 0.0:
        return row[0]
    if pos >= n - 1:
        return row[n - 1]
    j = int(pos)
    w = pos - j
    return (1.0 - w) * row[j] + w * row[j + 1]
