"""Compiled kernels of the shiftable appliance: its DP, its FPK, and the Wardrop split.

The shiftable appliance (eq. (25) of Aziz et al.) runs ``R`` quanta of
``P_s·Δt`` inside a window. Identical households best-respond all-or-nothing,
so the population's response in the fixed point is the within-cluster
Wardrop split (:func:`shiftable_split`), realised household by household by
systematic sampling (:func:`shiftable_split_flow`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from market.pricing import price_at


class ShiftableWindow(NamedTuple):
    """The shiftable appliance as a household's controller sees it."""

    start: int
    """First control step of the window."""
    end: int
    """Step after the window's last: the appliance may run at ``start <= k < end``."""
    power_kw: float
    """Rated power ``P_s`` [kW]; a step running draws ``P_s·Δt``."""


class LocalPrice(NamedTuple):
    """The local (RPC) price function of eq. (13): :func:`market.pricing.price_at`'s inputs."""

    grid_price: np.ndarray
    """Grid price ``p_G(k)`` [$/kWh], ``(K,)``."""
    network_charge: np.ndarray
    """Network charge of each cluster [$/kWh], ``(M,)``."""
    slope: np.ndarray
    """Price slope of each cluster [$/kWh per kW], ``(M,)``."""
    floor: float
    """Lowest local price [$/kWh]."""
    smoothing: float
    """Width over which the floor and the grid-price cap are smoothed [$/kWh]."""


class SplitSettings(NamedTuple):
    """Numerics of the Wardrop split (:func:`shiftable_split`)."""

    samples: int
    """Points sampling each step's cost curve in ``x ∈ [0, 1]``."""
    tie: float
    """Tie-breaking cost at ``x = 1`` [$ per quantum]."""


@njit(cache=True)
def shiftable_backward(
    price: np.ndarray,
    energy_cost_kwh: float,
    window_start: int,
    window_end: int,
    shortfall_cost: float,
    value: np.ndarray,
    run: np.ndarray,
) -> None:
    """Dynamic programming for the shiftable appliance, eq. (25).

    State ``r`` = energy quanta ``P_s·Δt`` still to run; running a step costs
    ``π·P_s·Δt`` and moves ``r → r − 1``; quanta left at the window's end cost
    ``shortfall_cost`` each.

    Parameters
    ----------
    price
        Stage price, shape ``(M, K)`` [$/kWh].
    energy_cost_kwh
        Energy of one quantum ``P_s·Δt`` [kWh].
    window_start, window_end
        Window ``[start, end)`` in steps.
    shortfall_cost
        Penalty per quantum left at the window's end [$].
    value
        Output ``(M, K+1, R+1)``: cost-to-go.
    run
        Output ``(M, K, R+1)``: 1 where running is optimal.
    """
    n_clusters, n_steps = price.shape
    n_levels = value.shape[2]
    for p in prange(n_clusters):
        for r in range(n_levels):
            value[p, n_steps, r] = shortfall_cost * r
        for k in range(n_steps - 1, -1, -1):
            for r in range(n_levels):
                if k >= window_end:
                    value[p, k, r] = shortfall_cost * r
                    run[p, k, r] = 0
                elif k < window_start or r == 0:
                    value[p, k, r] = value[p, k + 1, r]
                    run[p, k, r] = 0
                else:
                    wait = value[p, k + 1, r]
                    go = price[p, k] * energy_cost_kwh + value[p, k + 1, r - 1]
                    if go <= wait:
                        value[p, k, r] = go
                        run[p, k, r] = 1
                    else:
                        value[p, k, r] = wait
                        run[p, k, r] = 0


@njit(cache=True)
def shiftable_forward(
    run_probability: np.ndarray,
    occupancy: np.ndarray,
    running: np.ndarray,
) -> None:
    """Push the shiftable appliance's state law under a (randomised) policy.

    Parameters
    ----------
    run_probability
        ``P(run | k, r)``, shape ``(M, K, R+1)``.
    occupancy
        Output ``(M, K+1, R+1)``: state law, starting at ``r = R``.
    running
        Output ``(M, K, R+1)``: mass that runs at ``(k, r)``.
    """
    n_clusters, n_steps, n_levels = run_probability.shape
    for p in prange(n_clusters):
        occupancy[p, 0, :] = 0.0
        occupancy[p, 0, n_levels - 1] = 1.0
        for k in range(n_steps):
            occupancy[p, k + 1, :] = 0.0
            for r in range(n_levels):
                m = occupancy[p, k, r]
                go = m * run_probability[p, k, r] if r > 0 else 0.0
                running[p, k, r] = go
                occupancy[p, k + 1, r] += m - go
                if r > 0:
                    occupancy[p, k + 1, r - 1] += go


@njit(cache=True)
def _inverse_sampled(curve: np.ndarray, level: float, tie_slope: float) -> float:
    """Largest ``x ∈ [0, 1]`` with ``curve(x) + tie_slope·x ≤ level`` (``curve`` sampled evenly)."""
    n = curve.shape[0] - 1
    if curve[0] >= level:
        return 0.0
    if curve[n] + tie_slope <= level:
        return 1.0
    lo, hi = 0, n
    while hi - lo > 1:  # curve[lo] + tie·lo/n < level ≤ curve[hi] + tie·hi/n
        mid = (lo + hi) // 2
        if curve[mid] + tie_slope * mid / n < level:
            lo = mid
        else:
            hi = mid
    c0 = curve[lo] + tie_slope * lo / n
    c1 = curve[hi] + tie_slope * hi / n
    return (lo + (level - c0) / (c1 - c0)) / n


@njit(parallel=True, cache=True)
def shiftable_split(
    rest_kw: np.ndarray,
    w_local: np.ndarray,
    frozen_price: np.ndarray,
    local_price: LocalPrice,
    appliance: ShiftableWindow,
    dt_h: float,
    quanta: int,
    skip_cost: float,
    settings: SplitSettings,
    share_run: np.ndarray,
) -> None:
    """Within-cluster equilibrium split of the shiftable appliances over the window.

    Identical households of a cluster choose which ``R`` steps of the window
    to run their shiftable appliance in; running at step ``k`` costs
    ``Δt·P_s·π_pk(x_k)`` where ``x_k`` is the fraction of the cluster running
    then, and ``π_pk`` the stage price of eq. (13) whose local part
    ``P_loc(m_rest + P_s x_k)`` responds to them (the rest of the cluster's
    exchange and the inter-cluster price held fixed). Best responses are
    all-or-nothing, so the population's response is the Wardrop split: every
    step used costs the same, ``λ``, and unused ones cost more. It solves
    ``Σ_k x_k(λ) + x_skip(λ) = R`` by bisection on ``λ`` (skipping a quantum
    costs ``skip_cost``). A small tie cost (``settings.tie`` dollars per
    quantum at ``x = 1``, rising linearly in ``x``) splits steps that are tied
    or nearly so evenly, which keeps the split a continuous function of the
    prices where they are flat (at the price floor); whatever it costs the
    households is part of the exploitability the solver reports.

    Parameters
    ----------
    rest_kw
        Mean net exchange of the cluster without the shiftable load [kW], ``(M, K)``.
    w_local, frozen_price
        ``w1(k)``, ``(K,)``, and ``w2 p_CoC + w3 p_G`` [$/kWh], ``(M, K)``.
    local_price
        The local price function.
    appliance
        Window ``[start, end)`` in steps and rated power ``P_s``.
    dt_h
        Control step [h].
    quanta
        ``R``: quanta ``P_s·Δt`` each household has to run.
    skip_cost
        Cost of a quantum left undone [$].
    settings
        Samples of each step's cost curve and the tie-breaking cost.
    share_run
        Output ``(M, K)``: fraction ``x_k`` of households running at each step
        (``Σ_k x_k ≤ R``).
    """
    grid_price, network_charge, slope, floor, smoothing = local_price
    window_start, window_end, power_kw = appliance
    samples, tie = settings
    n_clusters = rest_kw.shape[0]
    quantum = power_kw * dt_h
    n_window = window_end - window_start
    for p in prange(n_clusters):
        share_run[p, :] = 0.0
        if n_window <= 0:
            continue
        curves = np.empty((n_window, samples + 1))
        lo_level = skip_cost
        hi_level = skip_cost + tie
        for s in range(n_window):
            k = window_start + s
            for g in range(samples + 1):
                x = g / samples
                local = price_at(
                    rest_kw[p, k] + power_kw * x,
                    grid_price[k],
                    network_charge[p],
                    slope[p],
                    floor,
                    smoothing,
                )
                curves[s, g] = quantum * (w_local[k] * local + frozen_price[p, k])
            lo_level = min(lo_level, curves[s, 0])
            hi_level = max(hi_level, curves[s, samples] + tie)
        for _ in range(200):
            level = 0.5 * (lo_level + hi_level)
            total = min(max((level - skip_cost) / tie, 0.0), float(quanta))  # quanta skipped
            for s in range(n_window):
                total += _inverse_sampled(curves[s], level, tie)
            if total < quanta:
                lo_level = level
            else:
                hi_level = level
            if hi_level - lo_level <= 1e-15 * max(1.0, abs(hi_level)):
                break
        total = 0.0
        for s in range(n_window):
            x = _inverse_sampled(curves[s], hi_level, tie)
            share_run[p, window_start + s] = x
            total += x
        if total > quanta:
            for s in range(n_window):
                share_run[p, window_start + s] *= quanta / total


@njit(cache=True)
def shiftable_split_flow(share_run: np.ndarray, occupancy: np.ndarray, running: np.ndarray) -> None:
    """State law of households that realise the split ``x_k`` by systematic sampling.

    Each household draws ``U ~ U(0, 1)`` once and runs at step ``k`` when one of
    the points ``U, U+1, …, U+R−1`` falls in ``[S_k, S_k + x_k)``, ``S_k = Σ_{j<k} x_j``:
    it runs at step ``k`` with probability ``x_k`` exactly and its remaining
    energy never strays more than one quantum from the cluster mean. Before
    step ``k`` it has run ``n = ⌊S_k⌋`` quanta with probability ``1 − f`` and
    ``n + 1`` with probability ``f`` (``f`` the fractional part of ``S_k``).

    Parameters
    ----------
    share_run
        ``x_k``, shape ``(M, K)``, each in ``[0, 1]``, summing to at most ``R``.
    occupancy
        Output ``(M, K+1, R+1)``: law of the quanta left.
    running
        Output ``(M, K, R+1)``: mass running at ``(k, r)``.
    """
    n_clusters, n_steps = share_run.shape
    quanta = occupancy.shape[2] - 1
    for p in prange(n_clusters):
        done = 0.0
        for k in range(n_steps + 1):
            occupancy[p, k, :] = 0.0
            n = min(int(np.floor(done + 1e-12)), quanta)
            f = min(max(done - n, 0.0), 1.0) if n < quanta else 0.0
            occupancy[p, k, quanta - n] += 1.0 - f
            if f > 0.0:
                occupancy[p, k, quanta - n - 1] += f
            if k == n_steps:
                break
            running[p, k, :] = 0.0
            x = share_run[p, k]
            if n < quanta:
                running[p, k, quanta - n] = min(x, 1.0 - f)
                if n + 1 < quanta:
                    running[p, k, quanta - n - 1] = max(0.0, x - (1.0 - f))
            done += x
