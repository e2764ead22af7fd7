"""Mesa agents of the co-simulation: households (views onto their rows) and aggregators.

:meth:`Household.hems_step` is the per-agent reference path: plain Python, one
household at a time, doing what :func:`cosim.sim.hems.control_step` does for the
whole population. Both draw the same counter-based random numbers, so the
two paths must produce identical trajectories (tested).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from cosim.sim.hems import (
    ESS_NOISE,
    LOAD_NOISE,
    PV_NOISE,
    SHIFTABLE_DRAW,
    household_key,
    key_normal,
    key_uniform,
)

if TYPE_CHECKING:
    from cosim.sim.engine import CoSimulation


def _law_control(row, first: float, inv_spacing: float, soe: float) -> float:
    n = len(row)
    pos = (soe - first) * inv_spacing
    if pos <= 0.0:
        return float(row[0])
    if pos >= n - 1:
        return float(row[n - 1])
    j = int(pos)
    w = pos - j
    return (1.0 - w) * float(row[j]) + w * float(row[j + 1])


def _feasible(u: float, soe: float, device, dt_h: float) -> float:
    soe_min, soe_max, charge, discharge, eff = (float(x) for x in device[:5])
    inv_up, inv_down = 1.0 / (eff * charge * dt_h), eff / (discharge * dt_h)
    u_hi = min(max((soe_max - soe) * inv_up, 0.0), 1.0)
    u_lo = -min(max((soe - soe_min) * inv_down, 0.0), 1.0)
    return min(max(u, u_lo), u_hi)


def _stored(u: float, device, hours: float) -> float:
    charge, discharge, eff = device[2], device[3], device[4]
    if u > 0.0:
        return eff * u * charge * hours
    return u * discharge / eff * hours


def _grid(u: float, device) -> float:
    return u * device[2] if u > 0.0 else u * device[3]


class Household(mesa.Agent):
    """One household: a view onto row ``index`` of the population's columns."""

    def __init__(self, model: CoSimulation, index: int) -> None:
        super().__init__(model)
        self.index = index

    @property
    def cluster(self) -> int:
        """The household's cluster."""
        return int(self.model.population.cluster[self.index])

    @property
    def ess_soe(self) -> float:
        """Home battery state of energy [kWh]."""
        return float(self.model.population.ess_soe[self.index])

    @property
    def ev_soe(self) -> float:
        """EV state of energy [kWh]."""
        return float(self.model.population.ev_soe[self.index])

    def hems_step(self, step: int, k: int) -> None:
        """Apply the feedback law for control step ``k`` — the readable reference path."""
        m = self.model
        pop, law, prm = m.population, m.law, m.kernel_params
        i, c, seed, dt = self.index, self.cluster, m.seed, m.dt_h
        eps_pv, rho_pv, eps_load, rho_load = prm.exo
        # exogenous PV and base load, AR(1) noise
        key = np.uint64(household_key(seed, i, step))
        if step == 0:
            zp = key_normal(key, PV_NOISE)
            zl = key_normal(key, LOAD_NOISE)
        else:
            zp = rho_pv * pop.zeta_pv[i] + math.sqrt(1.0 - rho_pv * rho_pv) * key_normal(
                key, PV_NOISE
            )
            zl = rho_load * pop.zeta_load[i] + math.sqrt(1.0 - rho_load * rho_load) * key_normal(
                key, LOAD_NOISE
            )
        pop.zeta_pv[i], pop.zeta_load[i] = zp, zl
        pv = prm.pv_kw[c] * max(0.0, 1.0 + eps_pv * zp)
        load = prm.load_kw[c] * max(0.0, 1.0 + eps_load * zl)
        energy = m.energy[i]
        energy[0] = (load - pv) * dt
        # home battery
        b = float(pop.ess_soe[i])
        u = _law_control(law.ess[c, k], law.ess_grid.first, 1.0 / law.ess_grid.spacing, b)
        u = _feasible(u, b, prm.ess, dt)
        b = b + _stored(u, prm.ess, dt)
        b = b + prm.ess[5] * math.sqrt(dt) * key_normal(key, ESS_NOISE)
        pop.ess_soe[i] = min(max(b, prm.ess[0]), prm.ess[1])
        energy[1] = _grid(u, prm.ess) * dt
        pop.ess_throughput[i] += u * u * dt
        # shiftable appliance
        run = 0.0
        r = int(pop.shift_left[i])
        start, end, power = prm.shift
        if (
            r > 0
            and start <= k < end
            and key_uniform(key, SHIFTABLE_DRAW) < law.shiftable_run[c, k, r]
        ):
            pop.shift_left[i] = r - 1
            run = 1.0
        energy[2] = run * power * dt
        # controllable load
        energy[3] = prm.ctrl_kw * (1.0 + law.controllable[c, k]) * dt
        # EV: this step's control (the event engine integrates it)
        if pop.ev_connected[i] == 1:
            be = float(pop.ev_soe[i])
            ue = _law_control(law.ev[c, k], law.ev_grid.first, 1.0 / law.ev_grid.spacing, be)
            pop.ev_u[i] = _feasible(ue, be, prm.ev, dt)
        else:
            pop.ev_u[i] = 0.0


class ClusterAggregator(mesa.Agent):
    """The aggregator of one cluster: clears its local price and settles its households."""

    def __init__(self, model: CoSimulation, cluster: int) -> None:
        super().__init__(model)
        self.cluster = cluster
        lo, hi = model.population.offsets[cluster], model.population.offsets[cluster + 1]
        self.members = slice(int(lo), int(hi))
