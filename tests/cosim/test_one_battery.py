"""One battery model: the HEMS kernel, its per-agent reference and the ε-Nash deviator use it.

Known answers of eqs. (5)–(12) through each caller, and the callers agree with
the model (:mod:`models.battery`) to the last bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.sim import agents, hems
from cosim.studies import joint_kernels
from models import battery
from models.battery import Battery
from models.shiftable_kernels import ShiftableWindow

#: 1–9 kWh, 4 kW in, 5 kW out, 80 % one way, 0.1 $/h wear, no SoE noise.
ESS = Battery(1.0, 9.0, 4.0, 5.0, 0.8, 0.1, 0.0)
#: 12–60 kWh, 7 kW both ways, 93 % one way.
EV = Battery(12.0, 60.0, 7.0, 7.0, 0.93, 0.05, 0.0)
DT = 0.5


def hems_step(soe: np.ndarray, u: np.ndarray, ev_soe: np.ndarray, ev_u: np.ndarray):
    """One compiled control step, household ``i`` in its own cluster playing ``u[i]``, no noise."""
    n = len(soe)
    flat = np.zeros(n)

    def table(control: np.ndarray) -> np.ndarray:  # read at its first point, below every SoE
        return np.ascontiguousarray(np.repeat(control[:, None, None], 2, axis=2))

    law = hems.KernelLaw(
        ess=table(u), ess_first=100.0, ess_spacing=1.0, ev=table(ev_u), ev_first=100.0,
        ev_spacing=1.0, shiftable_run=np.zeros((n, 1, 1)), controllable=np.zeros((n, 1)),
    )  # fmt: skip
    params = hems.HouseholdParams(
        exo=hems.Exogenous(0.0, 0.0, 0.0, 0.0), ess=ESS, ev=EV,
        shift=ShiftableWindow(0, 0, 1.0), ctrl_kw=0.0, pv_kw=flat, load_kw=flat,
    )  # fmt: skip
    state = hems.HouseholdState(
        zeta_pv=np.zeros(n), zeta_load=np.zeros(n), ess_soe=soe.copy(), ev_soe=ev_soe.copy(),
        ev_connected=np.ones(n, np.int8), ev_u=np.zeros(n), shift_left=np.zeros(n, np.int64),
        ess_throughput=np.zeros(n),
    )  # fmt: skip
    energy = np.zeros((n, 4))
    hems.control_step(0, 0, 3, DT, np.arange(n), law, params, state, energy)
    return state, energy


def test_the_hems_kernel_moves_the_battery_by_known_amounts():
    # charging half power for half an hour stores 0.8·0.5·4·0.5 = 0.8 kWh from 1 kWh;
    # near the top only 0.5 kWh fit: u = 0.5/(0.8·4·0.5) = 0.3125; discharging 0.4 of
    # 5 kW delivers 1 kWh and takes 1.25; 0.5 kWh above the floor: u = −0.5·0.8/(5·0.5)
    soe, u = np.array([5.0, 8.5, 5.0, 1.5]), np.array([0.5, 1.0, -0.4, -1.0])
    state, energy = hems_step(soe, u, np.full(4, 30.0), np.zeros(4))
    np.testing.assert_allclose(state.ess_soe, [5.8, 9.0, 3.75, 1.0])
    np.testing.assert_allclose(energy[:, 1], [1.0, 0.625, -1.0, -0.4])
    np.testing.assert_allclose(state.ess_throughput, np.array([0.5, 0.3125, 0.4, 0.16]) ** 2 * DT)
    assert state.ess_soe.max() <= ESS.soe_max and state.ess_soe.min() >= ESS.soe_min


def test_hems_deviator_and_model_agree_to_the_last_bit():
    rng = np.random.default_rng(7)
    n = 200
    soe = rng.uniform(ESS.soe_min, ESS.soe_max, n)
    u = rng.uniform(-1.3, 1.3, n)
    ev_soe = rng.uniform(EV.soe_min, EV.soe_max, n)
    ev_u = rng.uniform(-1.3, 1.3, n)
    soe[:4] = [ESS.soe_min, ESS.soe_max, 8.999, 1.001]  # at and next to the bounds
    state, energy = hems_step(soe, u, ev_soe, ev_u)
    for i in range(n):
        # the deviator's move of the same set-point (:mod:`cosim.studies.joint_kernels`)
        ue, after, kwh, wear = joint_kernels._move(u[i], soe[i], ESS, DT)
        assert ue == battery.feasible(ESS, u[i], soe[i], DT)
        assert state.ess_soe[i] == after == battery.move(ESS, soe[i], ue, DT)[0]
        assert energy[i, 1] == kwh == battery.grid_power(ESS, ue) * DT
        assert wear == battery.wear(ESS, ue, DT)
        # the EV's control is clipped the same way
        assert state.ev_u[i] == joint_kernels._move(ev_u[i], ev_soe[i], EV, DT)[0]


def test_the_per_agent_path_runs_the_model_itself():
    rng = np.random.default_rng(8)
    for _ in range(200):
        b, u = rng.uniform(0.5, 9.5), rng.uniform(-1.5, 1.5)
        assert agents._feasible(ESS, u, b, DT) == battery.feasible(ESS, u, b, DT)
        assert agents._stored_change(ESS, u, DT) == battery.stored_change(ESS, u, DT)
        assert agents._grid_power(ESS, u) == battery.grid_power(ESS, u)
        assert agents._within_bounds(ESS, b + u) == battery.within_bounds(ESS, b + u)


def test_an_ev_leaving_mid_step_is_integrated_by_the_model_move():
    soe, u, since = np.array([30.0, 59.0]), np.array([0.5, 1.0]), np.zeros(2)
    energy, throughput = np.zeros(2), np.zeros(2)
    hems.integrate_ev(np.arange(2), 0.3, since, soe, u, EV, energy, throughput)
    # 0.3 h at half of 7 kW stores 0.93·3.5·0.3 kWh; the full one is stopped at the top
    assert soe[0] == pytest.approx(30.0 + 0.93 * 3.5 * 0.3)
    assert soe[1] == EV.soe_max
    np.testing.assert_allclose(energy, [3.5 * 0.3, 7.0 * 0.3])
    np.testing.assert_allclose(throughput, [0.25 * 0.3, 0.3])
    assert np.all(since == 0.3)
