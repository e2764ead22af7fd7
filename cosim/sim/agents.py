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
from models import battery

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


# The battery model's functions run as plain Python: the kernel's own source, interpreted.
_clip_rates = battery.clip_rates.py_func
_clip_control = battery.clip_control.py_func
_stored_change = battery.stored_change.py_func
_grid_power = battery.grid_power.py_func
_soe_shock = battery.soe_shock.py_func
_within_bounds = battery.within_bounds.py_func


def _feasible(ess_or_ev: battery.Battery, u: float, soe: float, dt_h: float) -> float:
    inv_up, inv_down = _clip_rates(ess_or_ev, dt_h)
    return _clip_control(ess_or_ev, u, soe, inv_up, inv_down)


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
        """Apply the household's law for control step ``k`` — the readable reference path.

        The law is its row of the model's law tables: its cluster's feedback
        law, or its own (:class:`~cosim.sim.hooks.HouseholdLaw`).
        """
        m = self.model
        pop, law, prm = m.population, m.law, m.kernel_params
        i, c, seed, dt = self.index, self.cluster, m.seed, m.dt_h
        tables = m.law_tables
        row = tables.row[i]
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
        # home battery: the law's control, kept feasible, then SoE noise
        ess = prm.ess
        b = float(pop.ess_soe[i])
        u = _law_control(tables.ess[row, k], law.ess_grid.first, 1.0 / law.ess_grid.spacing, b)
        u = _feasible(ess, u, b, dt)
        shock = _soe_shock(ess, math.sqrt(dt), key_normal(key, ESS_NOISE))
        pop.ess_soe[i] = _within_bounds(ess, b + _stored_change(ess, u, dt) + shock)
        energy[1] = _grid_power(ess, u) * dt
        pop.ess_throughput[i] += u * u * dt
        # shiftable appliance
        run = 0.0
        r = int(pop.shift_left[i])
        start, end, power = prm.shift
        if (
            r > 0
            and start <= k < end
            and key_uniform(key, SHIFTABLE_DRAW) < tables.shiftable_run[row, k, r]
        ):
            pop.shift_left[i] = r - 1
            run = 1.0
        energy[2] = run * power * dt
        # controllable load
        energy[3] = prm.ctrl_kw * (1.0 + tables.controllable[row, k]) * dt
        # EV: this step's control (the event engine integrates it)
        if pop.ev_connected[i] == 1:
            be = float(pop.ev_soe[i])
            ue = _law_control(tables.ev[row, k], law.ev_grid.first, 1.0 / law.ev_grid.spacing, be)
            pop.ev_u[i] = _feasible(prm.ev, ue, be, dt)
        else:
            pop.ev_u[i] = 0.0


class ClusterAggregator(mesa.Agent):
    """The aggregator of one cluster: clears its local price and settles its households."""

    def __init__(self, model: CoSimulation, cluster: int) -> None:
        super().__init__(model)
        self.cluster = cluster
        lo, hi = model.population.offsets[cluster], model.population.offsets[cluster + 1]
        self.members = slice(int(lo), int(hi))
