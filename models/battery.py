"""The battery model, written once: eqs. (5)–(12) of Aziz et al. (seed 000).

The home battery (ESS) and the EV are the same model with other parameters.
Control ``u ∈ [−1, 1]`` is the fraction of rated power: charging (``u > 0``)
draws ``u·P_c`` at the meter and stores ``η·u·P_c`` per hour; discharging
(``u < 0``) delivers ``|u|·P_d`` at the meter and takes ``|u|·P_d/η`` from the
battery — the paper's charge-from-PV and charge-from-grid merged (the same
energy at the meter). The state of energy stays in ``[b_min, b_max]``; SoE
noise adds ``σ√Δt·Z`` per step and wear costs ``κ·u²·Δt``.

Every caller uses these functions on a :class:`Battery`: the HJB and FPK
kernels of the mean-field game (:mod:`models.kernels`), the HEMS kernel of the
co-simulation and its per-agent reference path (:mod:`cosim.sim.hems`,
:mod:`cosim.sim.agents`, which runs the functions as plain Python through
``.py_func``), and the ε-Nash deviator (:mod:`cosim.studies.joint_deviation`,
:mod:`cosim.studies.epsilon`). They are numba-compiled, take the battery as a
typed tuple, and keep the order of their floating-point operations fixed:
solver, engine and deviator compute the same numbers to the last bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from models.config import StorageConfig


class Battery(NamedTuple):
    """One battery's parameters, as every battery function reads them."""

    soe_min: float
    """Lowest state of energy ``b_min`` [kWh]: the SoE grid's first point."""
    soe_max: float
    """Highest state of energy ``b_max`` [kWh]: the SoE grid's last point."""
    charge_kw: float
    """Rated charging power at the meter ``P_c`` [kW] (the paper's ``P_g2s``)."""
    discharge_kw: float
    """Rated discharging power at the meter ``P_d`` [kW] (the paper's ``P_s2g``)."""
    efficiency: float
    """One-way efficiency ``η`` [-]: a kWh drawn stores ``η``, a kWh delivered takes ``1/η``."""
    degradation: float
    """Wear ``κ`` [$/h]: a step of ``Δt`` at control ``u`` costs ``κ·u²·Δt``."""
    noise_kwh: float
    """SoE noise ``σ`` [kWh/√h]: a step of ``Δt`` adds ``σ·√Δt·Z``, ``Z ~ N(0, 1)``."""

    @classmethod
    def from_device(cls, device: StorageConfig, soe: np.ndarray) -> Battery:
        """The battery of ``device`` on the SoE grid ``soe`` (its bounds are the grid's ends)."""
        return cls(
            soe_min=float(soe[0]),
            soe_max=float(soe[-1]),
            charge_kw=float(device.charge_kw),
            discharge_kw=float(device.discharge_kw),
            efficiency=float(device.efficiency),
            degradation=float(device.degradation),
            noise_kwh=float(device.noise_kwh),
        )


@njit(cache=True)
def stored_change(battery: Battery, u: float, hours: float) -> float:
    """Energy stored over ``hours`` at control ``u`` [kWh], eqs. (5)–(12).

    ``η·u·P_c·t`` when charging, ``u·P_d·t/η`` when discharging.
    """
    if u > 0.0:
        return battery.efficiency * u * battery.charge_kw * hours
    return u * battery.discharge_kw / battery.efficiency * hours


@njit(cache=True)
def grid_power(battery: Battery, u: float) -> float:
    """Power at the meter at control ``u`` [kW]; positive = drawing from the grid."""
    if u > 0.0:
        return u * battery.charge_kw
    return u * battery.discharge_kw


@njit(cache=True)
def clip_rates(battery: Battery, dt_h: float) -> tuple[float, float]:
    """``(1/(η·P_c·Δt), η/(P_d·Δt))``: control per kWh of room above and below over a step.

    What :func:`clip_control` needs, computed once per step length.
    """
    return (
        1.0 / (battery.efficiency * battery.charge_kw * dt_h),
        battery.efficiency / (battery.discharge_kw * dt_h),
    )


@njit(cache=True)
def clip_control(battery: Battery, u: float, soe: float, inv_up: float, inv_down: float) -> float:
    """``u`` clipped so that a full step at it keeps the SoE within bounds.

    ``inv_up`` and ``inv_down`` are :func:`clip_rates` of the step.
    """
    u_hi = min(max((battery.soe_max - soe) * inv_up, 0.0), 1.0)
    u_lo = -min(max((soe - battery.soe_min) * inv_down, 0.0), 1.0)
    return min(max(u, u_lo), u_hi)


@njit(cache=True)
def feasible(battery: Battery, u: float, soe: float, dt_h: float) -> float:
    """:func:`clip_control` of a step of ``dt_h`` hours."""
    inv_up, inv_down = clip_rates(battery, dt_h)
    return clip_control(battery, u, soe, inv_up, inv_down)


@njit(cache=True)
def within_bounds(battery: Battery, soe: float) -> float:
    """``soe`` clipped to ``[b_min, b_max]``."""
    return min(max(soe, battery.soe_min), battery.soe_max)


@njit(cache=True)
def soe_shock(battery: Battery, sqrt_dt: float, z: float) -> float:
    """SoE noise of one step, ``σ·√Δt·z`` [kWh], for a standard normal draw ``z``."""
    return battery.noise_kwh * sqrt_dt * z


@njit(cache=True)
def move(battery: Battery, soe: float, u: float, hours: float) -> tuple[float, float]:
    """``(state after, power at the meter)`` of ``hours`` at control ``u`` [kWh, kW].

    The state after is ``soe`` plus :func:`stored_change`, clipped to bounds.
    """
    return (
        within_bounds(battery, soe + stored_change(battery, u, hours)),
        grid_power(battery, u),
    )


@njit(cache=True)
def clipped_move(battery: Battery, u: float, soe: float, dt_h: float) -> tuple[float, float, float]:
    """``(control, state after, power at the meter)`` of set-point ``u`` over a full step.

    The set-point is first clipped by :func:`feasible`, as a HEMS applies it.
    """
    u = feasible(battery, u, soe, dt_h)
    after, power = move(battery, soe, u, dt_h)
    return u, after, power


@njit(cache=True)
def clipped_moves(
    battery: Battery, soe: np.ndarray, u: np.ndarray, dt_h: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`clipped_move` of every candidate ``u[i, j]`` at state ``soe[i]``.

    Returns the clipped controls, the states after [kWh] and the powers at the
    meter [kW], each shaped like ``u``.
    """
    control, after, power = np.empty_like(u), np.empty_like(u), np.empty_like(u)
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            control[i, j], after[i, j], power[i, j] = clipped_move(battery, u[i, j], soe[i], dt_h)
    return control, after, power


@njit(cache=True)
def wear(battery: Battery, u: float, hours: float) -> float:
    """Degradation cost of ``hours`` at control ``u``, ``κ·u²·t`` [$]."""
    return battery.degradation * u * u * hours


@njit(cache=True)
def move_costs(
    battery: Battery, price_dt: float, dt_h: float, weight: float
) -> tuple[float, float, float, float, float, float]:
    """Reach and stage-cost coefficients of a move ``d`` of the stored energy, eq. (22).

    Returns ``(up_max, down_max, lin_up, quad_up, lin_down, quad_down)``: the
    largest charge and discharge in a step [kWh], and ``weight·(π·e(d) +
    κ·u(d)²·Δt) = lin·d + quad·d²`` on each side of ``d = 0``, where ``u(d)``
    and the energy at the meter ``e(d)`` follow from ``d`` and the efficiency,
    ``price_dt = π·Δt`` and ``weight`` is the part of the step the battery is
    plugged in.
    """
    efficiency, charge_kw, discharge_kw = (
        battery.efficiency,
        battery.charge_kw,
        battery.discharge_kw,
    )
    degradation = battery.degradation
    return (
        efficiency * charge_kw * dt_h,
        discharge_kw * dt_h / efficiency,
        weight * price_dt / (efficiency * dt_h),  # $ per kWh stored
        weight * degradation * dt_h / (efficiency * charge_kw * dt_h) ** 2,
        weight * price_dt * efficiency / dt_h,
        weight * degradation * dt_h * (efficiency / (discharge_kw * dt_h)) ** 2,
    )


@njit(cache=True)
def plugged_share(hd: float, at: np.ndarray, w: np.ndarray) -> float:
    """Expected part of a step a plugged-in EV stays: ``1 − h_d + h_d·Σ_n w_n F_n``."""
    share = 1.0 - hd
    for q in range(at.shape[0]):
        share += hd * w[q] * at[q]
    return share
