"""Discretisation of the battery problems: SoE grid and transition maps.

Everything here depends on the device and the grids only — never on prices —
so it is built once per solve and reused by every fixed-point iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import ndtr

from models import devices
from models.battery import Battery
from models.config import EVConfig, StorageConfig
from models.kernels import BatteryTables, EVTrips, Jumps, RowMap


@dataclass(frozen=True)
class BatteryGrid:
    """Transition maps of one battery type on its SoE grid (see :mod:`models.kernels`)."""

    device: StorageConfig
    """The battery's parameters."""
    soe: np.ndarray
    """Grid points ``b_i`` [kWh], shape ``(S,)``."""
    noise_idx: np.ndarray
    noise_w: np.ndarray
    depart: np.ndarray
    """Probability of leaving during step ``k`` if plugged in at its start, ``(K,)``."""
    leave_at: np.ndarray
    """Fractions of step ``k`` spent plugged in before leaving: quadrature nodes ``(K, G)`` ..."""
    leave_w: np.ndarray
    """... and their weights ``(K, G)``."""
    depart_cost: np.ndarray
    trip_idx: np.ndarray
    trip_w: np.ndarray
    arrive: np.ndarray
    noise_jumps: Jumps
    """SoE noise nodes ``σ√Δt·z_q`` [kWh] and their probabilities."""
    trip_jumps: Jumps
    """Trip energy nodes (negative jumps) [kWh] and their probabilities."""
    terminal: np.ndarray
    initial: np.ndarray
    """Initial density (all connected), shape ``(S,)``, summing to 1."""

    @property
    def spacing(self) -> float:
        """Grid spacing [kWh]."""
        return float(self.soe[1] - self.soe[0])

    @cached_property
    def battery(self) -> Battery:
        """The battery model's parameters on this grid (:mod:`models.battery`)."""
        return Battery.from_device(self.device, self.soe)

    @cached_property
    def tables(self) -> BatteryTables:
        """The transition tables the battery kernels read."""
        return BatteryTables(
            spacing=self.spacing,
            noise=RowMap(self.noise_idx, self.noise_w),
            trips=EVTrips(
                depart=self.depart,
                leave_at=self.leave_at,
                leave_w=self.leave_w,
                depart_cost=self.depart_cost,
                trip=RowMap(self.trip_idx, self.trip_w),
                arrive=self.arrive,
            ),
            terminal=self.terminal,
            noise_jumps=self.noise_jumps,
            trip_jumps=self.trip_jumps,
        )

    def kernel_args(self) -> tuple[Battery, BatteryTables]:
        """``(battery, tables)``: the arguments every battery kernel takes after ``dt_h``."""
        return self.battery, self.tables


def interpolation(points: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour index ``j`` and weight ``w`` of ``y`` on a uniform grid (``y`` clipped).

    ``y ≈ (1 − w)·points[j] + w·points[j + 1]`` with ``0 ≤ j ≤ S − 2``.
    """
    lo, hi = points[0], points[-1]
    pos = (np.clip(y, lo, hi) - lo) / (points[1] - points[0])
    j = np.minimum(np.floor(pos).astype(np.int64), len(points) - 2)
    return j, np.clip(pos - j, 0.0, 1.0)


def _jump_map(
    points: np.ndarray, shifts: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row-stochastic map of ``b_i → clip(b_i + shift_q)`` with probabilities ``probs_q``."""
    y = points[:, None] + shifts[None, :]
    j, w = interpolation(points, y)
    idx = np.concatenate([j, j + 1], axis=1)
    wts = np.concatenate([(1.0 - w) * probs, w * probs], axis=1)
    return idx.astype(np.int64), wts


def gauss_hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E f(Z)``, ``Z ~ N(0, 1)``, with ``nodes`` points."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x, w / w.sum()


def discretised_normal(points: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Mass of ``N(mean, std²)`` (clipped to the grid's range) on each grid point's cell."""
    if std <= 0:
        j, w = interpolation(points, np.array([mean]))
        out = np.zeros(len(points))
        out[j[0]] += 1.0 - w[0]
        out[j[0] + 1] += w[0]
        return out
    mid = 0.5 * (points[1:] + points[:-1])
    cdf = ndtr((mid - mean) / std)
    mass = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return mass / mass.sum()


#: Gauss–Legendre nodes over the part of a step an EV stays before it leaves.
DEPARTURE_NODES = 4


def departure_quadrature(
    window: Sequence[float], step_hours: np.ndarray, dt_h: float, nodes: int = DEPARTURE_NODES
) -> tuple[np.ndarray, np.ndarray]:
    """Where in a step a departing EV leaves: fractions of the step and weights, ``(K, G)``.

    Departure times are uniform on ``window``, so given a departure during
    step ``k`` the time spent plugged in is uniform on the window's overlap
    with the step; Gauss–Legendre nodes on that overlap, as fractions of ``Δt``.
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    x, w = 0.5 * (x + 1.0), 0.5 * w
    start = np.asarray(step_hours, dtype=float)
    a = np.clip(window[0], start, start + dt_h)
    b = np.clip(window[1], start, start + dt_h)
    at = ((a - start)[:, None] + (b - a)[:, None] * x[None, :]) / dt_h
    return at, np.broadcast_to(w, at.shape).copy()


def build_battery_grid(
    device: StorageConfig,
    soe_points: int,
    noise_nodes: int,
    dt_h: float,
    step_hours: np.ndarray,
    trip_nodes: int = 1,
) -> BatteryGrid:
    """Discretise one battery (ESS, or EV when ``device`` is an :class:`EVConfig`)."""
    soe_min = device.min_fraction * device.capacity_kwh
    soe = np.linspace(soe_min, device.capacity_kwh, soe_points)
    z, pz = gauss_hermite(noise_nodes)
    noise_jumps = Jumps(device.noise_kwh * np.sqrt(dt_h) * z, pz)
    noise_idx, noise_w = _jump_map(soe, *noise_jumps)

    terminal = devices.terminal_penalty(
        soe,
        device.initial_mean_kwh,
        device.terminal_linear,
        device.terminal_quadratic,
        device.terminal_smoothing_kwh,
    )
    steps = len(step_hours)
    if isinstance(device, EVConfig):
        depart = devices.uniform_window_hazard(device.departure_window_h, step_hours, dt_h)
        leave_at, leave_w = departure_quadrature(device.departure_window_h, step_hours, dt_h)
        arrive = devices.uniform_window_hazard(device.arrival_window_h, step_hours, dt_h)
        depart_cost = devices.departure_penalty(
            soe, device.departure_target_kwh, device.departure_penalty
        )
        zt, pt = gauss_hermite(trip_nodes)
        trip = np.maximum(device.trip_kwh_mean + device.trip_kwh_std * zt, 0.0)
        trip_jumps = Jumps(-trip, pt)
    else:
        depart = np.zeros(steps)
        leave_at, leave_w = np.ones((steps, 1)), np.ones((steps, 1))
        arrive = np.zeros(steps)
        depart_cost = np.zeros(soe_points)
        trip_jumps = Jumps(np.zeros(1), np.ones(1))
    trip_idx, trip_w = _jump_map(soe, *trip_jumps)
    initial = discretised_normal(soe, device.initial_mean_kwh, device.initial_std_kwh)
    return BatteryGrid(
        device=device,
        soe=soe,
        noise_idx=noise_idx,
        noise_w=noise_w,
        depart=depart,
        leave_at=leave_at,
        leave_w=leave_w,
        depart_cost=depart_cost,
        trip_idx=trip_idx,
        trip_w=trip_w,
        arrive=arrive,
        terminal=terminal,
        initial=initial,
        noise_jumps=noise_jumps,
        trip_jumps=trip_jumps,
    )
