"""Compiled kernels of the GMFG solver: HJB backward, FPK forward (SPEC §4).

The battery kernels serve both the home ESS and the EV. Their state is the
state of energy on a uniform grid; the EV adds the exogenous connected/away
chain. One step of the scheme, for a connected battery at grid point ``i``:

1. control level ``l`` moves the energy to ``y = b_i + Δb(u_l)`` (clipped to the
   feasible interval, so ``y`` stays in bounds), split linearly between the two
   neighbouring grid points — the monotone semi-Lagrangian step of the HJB
   eq. (22), whose minimiser replaces the switching rules (23)–(27);
2. SoE noise ``σ√Δt·Z`` moves each grid point by Gauss–Hermite nodes, again
   split linearly and clipped (a row-stochastic matrix ``N``);
3. (EV) departure with hazard ``h_d``: the departure penalty, then the trip
   energy (Gauss–Hermite nodes) moves it to the away layer; away EVs arrive
   with hazard ``h_a``.

The HJB takes expectations of the next value through exactly these transition
weights and the FPK eq. (28) pushes mass through their transpose, so the
density keeps its mass to rounding and never turns negative, and the HJB value
equals the expected cost of its own policy under the pushed density.

All kernels run the clusters in parallel (``prange``) and write into
preallocated outputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _apply_rows(idx: np.ndarray, w: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = Σ_j w[i, j] · v[idx[i, j]]`` — expectation through a sparse row-stochastic map."""
    for i in range(idx.shape[0]):
        acc = 0.0
        for j in range(idx.shape[1]):
            acc += w[i, j] * v[idx[i, j]]
        out[i] = acc


@njit(cache=True)
def _scatter_rows(idx: np.ndarray, w: np.ndarray, mass: np.ndarray, out: np.ndarray) -> None:
    """``out[idx[i, j]] += w[i, j] · mass[i]`` — the adjoint of :func:`_apply_rows`."""
    for i in range(idx.shape[0]):
        m = mass[i]
        if m == 0.0:
            continue
        for j in range(idx.shape[1]):
            out[idx[i, j]] += w[i, j] * m


@njit(parallel=True, cache=True)
def battery_backward(
    price: np.ndarray,
    dt_h: float,
    post_idx: np.ndarray,
    post_w: np.ndarray,
    grid_kw: np.ndarray,
    control_cost: np.ndarray,
    noise_idx: np.ndarray,
    noise_w: np.ndarray,
    depart: np.ndarray,
    depart_cost: np.ndarray,
    trip_idx: np.ndarray,
    trip_w: np.ndarray,
    arrive: np.ndarray,
    terminal: np.ndarray,
    value: np.ndarray,
    value_away: np.ndarray,
    policy: np.ndarray,
) -> None:
    """Dynamic programming for one battery type in every cluster, HJB eq. (22).

    Parameters
    ----------
    price
        Stage price ``π_p(k)`` of eq. (13), shape ``(M, K)`` [$/kWh].
    dt_h
        Control step [h].
    post_idx, post_w
        Post-decision interpolation: control ``l`` at grid point ``i`` lands at
        ``(1 − w)·b[j] + w·b[j+1]`` with ``j = post_idx[i, l]``, ``w = post_w[i, l]``.
    grid_kw, control_cost
        Grid-side power [kW] and degradation cost for the step [$], shape ``(S, L)``.
    noise_idx, noise_w
        Row-stochastic SoE noise map, shape ``(S, Q)``.
    depart, arrive
        Per-step departure / arrival hazards, shape ``(K,)`` (zeros for a home ESS).
    depart_cost
        Departure penalty at each grid point [$], shape ``(S,)``.
    trip_idx, trip_w
        Row-stochastic trip-energy map (connected → away), shape ``(S, T)``.
    terminal
        End-of-day penalty ``Φ`` at each grid point [$], shape ``(S,)``.
    value, value_away
        Outputs, shape ``(M, K+1, S)``: cost-to-go of a connected / away battery.
    policy
        Output, shape ``(M, K, S)``: index of the optimal control level.
    """
    n_clusters, n_steps = price.shape
    n_soe, n_levels = grid_kw.shape
    for p in prange(n_clusters):
        value[p, n_steps, :] = terminal
        value_away[p, n_steps, :] = terminal
        after_noise = np.empty(n_soe)
        blend = np.empty(n_soe)
        trip_value = np.empty(n_soe)
        for k in range(n_steps - 1, -1, -1):
            v_next = value[p, k + 1]
            va_next = value_away[p, k + 1]
            hd = depart[k]
            ha = arrive[k]
            for i in range(n_soe):
                value_away[p, k, i] = ha * v_next[i] + (1.0 - ha) * va_next[i]
            if hd > 0.0:
                _apply_rows(trip_idx, trip_w, va_next, trip_value)
                for i in range(n_soe):
                    blend[i] = (1.0 - hd) * v_next[i] + hd * (depart_cost[i] + trip_value[i])
            else:
                blend[:] = v_next
            _apply_rows(noise_idx, noise_w, blend, after_noise)
            pk = price[p, k] * dt_h
            for i in range(n_soe):
                best = np.inf
                best_l = 0
                for l in range(n_levels):
                    j = post_idx[i, l]
                    w = post_w[i, l]
                    c = (
                        pk * grid_kw[i, l]
                        + control_cost[i, l]
                        + (1.0 - w) * after_noise[j]
                        + w * after_noise[j + 1]
                    )
                    if c < best:
                        best = c
                        best_l = l
                value[p, k, i] = best
                policy[p, k, i] = best_l


@njit(parallel=True, cache=True)
def battery_forward(
    policy: np.ndarray,
    initial: np.ndarray,
    post_idx: np.ndarray,
    post_w: np.ndarray,
    grid_kw: np.ndarray,
    control_cost: np.ndarray,
    noise_idx: np.ndarray,
    noise_w: np.ndarray,
    depart: np.ndarray,
    depart_cost: np.ndarray,
    trip_idx: np.ndarray,
    trip_w: np.ndarray,
    arrive: np.ndarray,
    terminal: np.ndarray,
    density: np.ndarray,
    density_away: np.ndarray,
    power: np.ndarray,
    other_cost: np.ndarray,
) -> None:
    """Push the battery density through the policy's transitions, FPK eq. (28).

    The exact adjoint of :func:`battery_backward`'s expectations.

    Parameters
    ----------
    policy
        Control level index per ``(cluster, step, grid point)``, shape ``(M, K, S)``.
    initial
        Density at ``t = 0`` (all connected), shape ``(S,)``, summing to 1.
    density, density_away
        Outputs, shape ``(M, K+1, S)``: probability mass per grid point.
    power
        Output, shape ``(M, K)``: expected grid-side power per battery [kW].
    other_cost
        Output, shape ``(M,)``: expected degradation + departure + terminal cost [$].

    Other parameters are those of :func:`battery_backward`.
    """
    n_clusters, n_steps, n_soe = policy.shape
    for p in prange(n_clusters):
        density[p, 0, :] = initial
        density_away[p, 0, :] = 0.0
        post = np.empty(n_soe)
        noisy = np.empty(n_soe)
        moved = np.empty(n_soe)
        cost = 0.0
        for k in range(n_steps):
            mu = density[p, k]
            mu_a = density_away[p, k]
            post[:] = 0.0
            drawn = 0.0
            for i in range(n_soe):
                m = mu[i]
                if m == 0.0:
                    continue
                l = policy[p, k, i]
                drawn += m * grid_kw[i, l]
                cost += m * control_cost[i, l]
                j = post_idx[i, l]
                w = post_w[i, l]
                post[j] += (1.0 - w) * m
                post[j + 1] += w * m
            power[p, k] = drawn
            noisy[:] = 0.0
            _scatter_rows(noise_idx, noise_w, post, noisy)
            hd = depart[k]
            ha = arrive[k]
            nxt = density[p, k + 1]
            nxt_a = density_away[p, k + 1]
            for i in range(n_soe):
                nxt[i] = (1.0 - hd) * noisy[i] + ha * mu_a[i]
                nxt_a[i] = (1.0 - ha) * mu_a[i]
            if hd > 0.0:
                for i in range(n_soe):
                    moved[i] = hd * noisy[i]
                    cost += moved[i] * depart_cost[i]
                _scatter_rows(trip_idx, trip_w, moved, nxt_a)
        final = density[p, n_steps]
        final_a = density_away[p, n_steps]
        for i in range(n_soe):
            cost += (final[i] + final_a[i]) * terminal[i]
        other_cost[p] = cost


@njit(parallel=True, cache=True)
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


@njit(parallel=True, cache=True)
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
