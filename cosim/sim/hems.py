"""Compiled HEMS kernels: every household of the population applies the feedback law.

Household state is columnar (one array per quantity, households sorted by
cluster); :func:`control_step` advances all of them through one control step
in parallel. Randomness is counter-based: the normal or uniform number a
household uses for a purpose at a step is a pure function of
``(seed, household, step, purpose)`` (SplitMix64 hashing), so every household
has its own independent stream, results do not depend on the number of
threads, and the per-agent reference path (:mod:`cosim.sim.agents`) draws exactly
the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange, uint64

from models.battery import (
    Battery,
    clip_control,
    clip_rates,
    grid_power,
    move,
    soe_shock,
    stored_change,
    within_bounds,
)
from models.shiftable_kernels import ShiftableWindow

#: Slots of the per-household random streams.
PV_NOISE, LOAD_NOISE, ESS_NOISE, SHIFTABLE_DRAW, EV_NOISE = 0, 1, 2, 3, 4

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective 64-bit hash."""
    z = z + _GOLDEN
    z = (z ^ (z >> uint64(30))) * _MIX1
    z = (z ^ (z >> uint64(27))) * _MIX2
    return z ^ (z >> uint64(31))


@njit(cache=True)
def household_key(seed: int, household: int, step: int) -> np.uint64:
    """Key of one household's random numbers at one step (household < 2⁴⁰, step < 2²⁴)."""
    return keyed(mix64(uint64(seed)), household, step)


@njit(cache=True)
def keyed(seed_key: np.uint64, household: int, step: int) -> np.uint64:
    """:func:`household_key` given ``seed_key = mix64(seed)`` (hoisted out of hot loops)."""
    return mix64(seed_key ^ ((uint64(step) << uint64(40)) | uint64(household)))


@njit(cache=True)
def _bits(key: np.uint64, slot: int) -> np.uint64:
    return mix64(key ^ (uint64(slot + 1) * _GOLDEN))


@njit(cache=True)
def _to_uniform(h: np.uint64) -> float:
    return ((h >> uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def key_uniform(key: np.uint64, slot: int) -> float:
    """Uniform number in (0, 1) for ``slot`` under ``key``."""
    return _to_uniform(_bits(key, slot))


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layers of Marsaglia & Tsang's ziggurat for the normal (128 layers, 32-bit)."""
    m1 = 2147483648.0
    dn = tn = 3.442619855899
    vn = 9.91256303526217e-3
    kn, wn, fn = np.zeros(128), np.zeros(128), np.zeros(128)
    q = vn / np.exp(-0.5 * dn * dn)
    kn[0], kn[1] = np.floor(dn / q * m1), 0.0
    wn[0], wn[127] = q / m1, dn / m1
    fn[0], fn[127] = 1.0, np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = np.floor(dn / tn * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_KN, _WN, _FN = _ziggurat_tables()
_TAIL = 3.442619855899


@njit(cache=True)
def key_normal(key: np.uint64, slot: int) -> float:
    """Standard normal number for ``slot`` under ``key`` — the ziggurat method.

    Marsaglia & Tsang (2000): 98.8 % of draws take one hash, one comparison
    and one product; the rest are accepted or rejected against the density,
    drawing fresh bits by re-hashing, so the number stays a pure function of
    ``(key, slot)``. The layer index and the value use different bits.
    """
    h = _bits(key, slot)
    for _ in range(1000):
        hz = np.int64(h >> uint64(32))
        if hz >= 2147483648:
            hz -= 4294967296
        iz = np.int64(h & uint64(127))
        if abs(hz) < _KN[iz]:
            return hz * _WN[iz]
        x = hz * _WN[iz]
        h = mix64(h ^ _MIX1)
        if iz == 0:  # the tail beyond the base layer
            while True:
                xt = -np.log(_to_uniform(h)) / _TAIL
                h = mix64(h ^ _MIX2)
                yt = -np.log(_to_uniform(h))
                h = mix64(h ^ _MIX1)
                if yt + yt >= xt * xt:
                    return _TAIL + xt if hz > 0 else -_TAIL - xt
        if _FN[iz] + _to_uniform(h) * (_FN[iz - 1] - _FN[iz]) < np.exp(-0.5 * x * x):
            return x
        h = mix64(h ^ _MIX2)
    return 0.0  # unreachable: each attempt is accepted with probability > 0.98


@njit(cache=True)
def law_control_at(
    table: np.ndarray, c: int, k: int, first: float, inv_spacing: float, soe: float
) -> float:
    """``models.feedback.law_control`` of the row ``table[c, k]``, in place (the hot path).

    Takes ``1/spacing``: the kernel multiplies instead of dividing.
    """
    n = table.shape[2]
    pos = (soe - first) * inv_spacing
    if pos <= 0.0:
        return table[c, k, 0]
    if pos >= n - 1:
        return table[c, k, n - 1]
    j = int(pos)
    w = pos - j
    return (1.0 - w) * table[c, k, j] + w * table[c, k, j + 1]


class Exogenous(NamedTuple):
    """Noise of PV and base load: ``mean·max(0, 1 + ε·ζ)`` with AR(1) ``ζ`` (eq. (1))."""

    pv_noise: float
    """Relative intensity ``ε_θ`` of the PV noise [-]."""
    pv_corr: float
    """AR(1) coefficient ``ρ_θ`` of the PV noise per step [-]."""
    load_noise: float
    """Relative intensity ``ε_z`` of the base-load noise [-]."""
    load_corr: float
    """AR(1) coefficient ``ρ_z`` of the base-load noise per step [-]."""


class HouseholdParams(NamedTuple):
    """What every HEMS knows of its household's devices and of this step's means."""

    exo: Exogenous
    """Noise of PV and base load."""
    ess: Battery
    """The home battery."""
    ev: Battery
    """The EV's battery."""
    shift: ShiftableWindow
    """The shiftable appliance's window [steps] and power [kW]."""
    ctrl_kw: float
    """Nominal controllable draw ``f_c·P_c`` [kW]."""
    pv_kw: np.ndarray
    """Mean PV of each cluster at this step [kW], ``(M,)``."""
    load_kw: np.ndarray
    """Mean base load of each cluster at this step [kW], ``(M,)``."""


class KernelLaw(NamedTuple):
    """The law tables with their SoE grids, as the compiled kernel reads them (one row per law)."""

    ess: np.ndarray
    """ESS control at the SoE grid points, ``(M, K, S)``."""
    ess_first: float
    """First point of the ESS SoE grid [kWh]."""
    ess_spacing: float
    """Spacing of the ESS SoE grid [kWh]."""
    ev: np.ndarray
    """EV control (connected) at the SoE grid points, ``(M, K, S)``."""
    ev_first: float
    """First point of the EV SoE grid [kWh]."""
    ev_spacing: float
    """Spacing of the EV SoE grid [kWh]."""
    shiftable_run: np.ndarray
    """``P(run | k, quanta left)``, ``(M, K, R+1)``."""
    controllable: np.ndarray
    """Controllable-load setting ``u_c``, ``(M, K)``."""


class HouseholdState(NamedTuple):
    """The population's state columns the kernel updates in place, ``(N,)`` each."""

    zeta_pv: np.ndarray
    """AR(1) noise of the PV."""
    zeta_load: np.ndarray
    """AR(1) noise of the base load."""
    ess_soe: np.ndarray
    """Home battery state of energy [kWh]."""
    ev_soe: np.ndarray
    """EV state of energy [kWh]."""
    ev_connected: np.ndarray
    """1 while the EV is plugged in, 0 while away."""
    ev_u: np.ndarray
    """The EV's control for this step (the event engine integrates it)."""
    shift_left: np.ndarray
    """Quanta the shiftable appliance still has to run."""
    ess_throughput: np.ndarray
    """Accumulated ``u²·Δt`` of the ESS (its degradation cost is ``κ`` times it)."""


@njit(parallel=True, cache=True)
def control_step(
    step: int,
    k: int,
    seed: int,
    dt_h: float,
    cluster: np.ndarray,
    law: KernelLaw,
    params: HouseholdParams,
    state: HouseholdState,
    energy: np.ndarray,
) -> None:
    """Advance every household through control step ``k`` (global step ``step``).

    Parameters
    ----------
    step, k
        Global step index (for the random streams) and step within the day.
    seed
        The run's seed (households' streams are derived from it).
    dt_h
        Control step [h].
    cluster
        Row of each household in the law's tables and the means, ``(N,)``.
    law
        The feedback law's tables.
    params
        Devices, noise and this step's cluster means.
    state
        Household state, updated in place (``ev_u`` is the EV control set for
        this step; the EV's energy is integrated by the event engine).
    energy
        Output ``(N, 4)``: energy drawn over the step [kWh] by base load − PV,
        ESS, shiftable and controllable load.
    """
    n = cluster.shape[0]
    # numba's parallel loop takes no nested tuple, and drops as dead code the writes to
    # an array reached through a tuple inside it or unpacked from one (`a, b = state`):
    # the loop sees arrays, scalars and flat read-only tuples, each column taken out
    # of its tuple by name.
    zeta_pv = state.zeta_pv
    zeta_load = state.zeta_load
    ess_soe = state.ess_soe
    ev_soe = state.ev_soe
    ev_connected = state.ev_connected
    ev_u = state.ev_u
    shift_left = state.shift_left
    ess_throughput = state.ess_throughput
    ess_law, ev_law, shift_law, ctrl_law = law.ess, law.ev, law.shiftable_run, law.controllable
    pv_noise, pv_corr, load_noise, load_corr = params.exo
    shift_start, shift_end, shift_kw = params.shift
    ctrl_kw, pv_kw, load_kw = params.ctrl_kw, params.pv_kw, params.load_kw
    ess, ev = Battery(*params.ess), Battery(*params.ev)
    sqrt_dt = np.sqrt(dt_h)
    ess_first, ev_first = law.ess_first, law.ev_first
    ess_inv_spacing, ev_inv_spacing = 1.0 / law.ess_spacing, 1.0 / law.ev_spacing
    ess_inv_up, ess_inv_down = clip_rates(ess, dt_h)
    ev_inv_up, ev_inv_down = clip_rates(ev, dt_h)
    seed_key = mix64(uint64(seed))
    innov_pv = np.sqrt(1.0 - pv_corr * pv_corr)
    innov_load = np.sqrt(1.0 - load_corr * load_corr)
    for i in prange(n):
        c = cluster[i]
        key = keyed(seed_key, i, step)
        # exogenous: AR(1) noise of eq. (1) and of the base load
        if step == 0:
            zp = key_normal(key, PV_NOISE)
            zl = key_normal(key, LOAD_NOISE)
        else:
            zp = pv_corr * zeta_pv[i] + innov_pv * key_normal(key, PV_NOISE)
            zl = load_corr * zeta_load[i] + innov_load * key_normal(key, LOAD_NOISE)
        zeta_pv[i] = zp
        zeta_load[i] = zl
        pv = pv_kw[c] * max(0.0, 1.0 + pv_noise * zp)
        load = load_kw[c] * max(0.0, 1.0 + load_noise * zl)
        energy[i, 0] = (load - pv) * dt_h
        # home battery: the law's control, kept feasible, then SoE noise
        b = ess_soe[i]
        u = law_control_at(ess_law, c, k, ess_first, ess_inv_spacing, b)
        u = clip_control(ess, u, b, ess_inv_up, ess_inv_down)
        shock = soe_shock(ess, sqrt_dt, key_normal(key, ESS_NOISE))
        ess_soe[i] = within_bounds(ess, b + stored_change(ess, u, dt_h) + shock)
        energy[i, 1] = grid_power(ess, u) * dt_h
        ess_throughput[i] += u * u * dt_h
        # shiftable appliance
        run = 0.0
        r = shift_left[i]
        if r > 0 and k >= shift_start and k < shift_end:
            if key_uniform(key, SHIFTABLE_DRAW) < shift_law[c, k, r]:
                shift_left[i] = r - 1
                run = 1.0
        energy[i, 2] = run * shift_kw * dt_h
        # controllable load
        energy[i, 3] = ctrl_kw * (1.0 + ctrl_law[c, k]) * dt_h
        # EV: set this step's control (integrated by the event engine)
        if ev_connected[i] == 1:
            be = ev_soe[i]
            ue = law_control_at(ev_law, c, k, ev_first, ev_inv_spacing, be)
            ev_u[i] = clip_control(ev, ue, be, ev_inv_up, ev_inv_down)
        else:
            ev_u[i] = 0.0


@njit(cache=True)
def integrate_ev(
    households: np.ndarray,
    until_h: float,
    since_h: np.ndarray,
    ev_soe: np.ndarray,
    ev_u: np.ndarray,
    ev: Battery,
    ev_energy: np.ndarray,
    ev_throughput: np.ndarray,
) -> None:
    """Integrate the listed connected EVs from their last update to ``until_h``.

    Energy over a partial step is exact: the control is constant over the step,
    so stored energy and energy at the meter are the step's rates times the
    time actually connected.
    """
    for j in range(households.shape[0]):
        i = households[j]
        hours = until_h - since_h[i]
        if hours <= 0.0:
            continue
        u = ev_u[i]
        after, power = move(ev, ev_soe[i], u, hours)
        ev_soe[i] = after
        ev_energy[i] += power * hours
        ev_throughput[i] += u * u * hours
        since_h[i] = until_h


@njit(cache=True)
def ev_step_noise(
    households: np.ndarray, step: int, seed: int, dt_h: float, ev_soe: np.ndarray, ev: Battery
) -> None:
    """SoE noise ``σ√Δt·N(0,1)`` for EVs connected through the whole step, clipped to bounds."""
    sqrt_dt = np.sqrt(dt_h)
    for j in range(households.shape[0]):
        i = households[j]
        z = key_normal(household_key(seed, i, step), EV_NOISE)
        ev_soe[i] = within_bounds(ev, ev_soe[i] + soe_shock(ev, sqrt_dt, z))
