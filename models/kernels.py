"""Compiled kernels of the GMFG solver: HJB backward, FPK forward (SPEC §4).

The battery kernels serve both the home ESS and the EV. Their state is the
state of energy on a uniform grid; the EV adds the exogenous connected/away
chain. One step of the scheme, for a connected battery at grid point ``i``:

1. control ``u`` moves the energy to ``y = b_i + Δb(u)`` (within bounds), split
   linearly between the two neighbouring grid points — the monotone
   semi-Lagrangian step of the HJB eq. (22); its exact minimiser over
   continuous ``u`` replaces the switching rules (23)–(27);
2. SoE noise ``σ√Δt·Z`` moves each grid point by Gauss–Hermite nodes, again
   split linearly and clipped (a row-stochastic matrix ``N``);
3. (EV) departure with hazard ``h_d``: the departure penalty, then the trip
   energy (Gauss–Hermite nodes) moves it to the away layer; away EVs arrive
   with hazard ``h_a``.

The HJB takes expectations of the next value through exactly these transition
weights and the FPK eq. (28) pushes mass through their transpose, so the
density keeps its mass to rounding and never turns negative, and the HJB value
equals the expected cost of its own policy under the pushed density.

Kernels write into preallocated outputs; the heavy ones run the clusters in
parallel (``prange``).
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


@njit(cache=True)
def _minimise_moves(
    continuation: np.ndarray,
    slopes: np.ndarray,
    spacing: float,
    price_dt: float,
    charge_kw: float,
    discharge_kw: float,
    efficiency: float,
    degradation: float,
    dt_h: float,
    value: np.ndarray,
    control: np.ndarray,
) -> None:
    """Exact minimiser of one semi-Lagrangian step of the battery HJB, eq. (22), at each point.

    At grid point ``i`` it minimises ``π·e(d) + κ·u(d)²·Δt + W(b_i + d)`` over
    the energy moved ``d`` (``u`` and the grid energy ``e`` follow from ``d``
    and the efficiency), ``W`` the piecewise-linear interpolant of
    ``continuation``. On each grid segment the objective is a convex quadratic
    in ``d`` whose minimum is the clamped vertex; the best segment wins. This
    is the closed-form minimiser of the strictly convex stage cost (SPEC §4),
    replacing the switching rules (23)–(27). When ``W`` is convex the search
    walks outward from ``d = 0`` and stops at the first interior vertex;
    otherwise every reachable segment is examined.
    """
    n_soe = continuation.shape[0]
    up_max = efficiency * charge_kw * dt_h
    down_max = discharge_kw * dt_h / efficiency
    n_up = int(np.ceil(up_max / spacing - 1e-12))
    n_down = int(np.ceil(down_max / spacing - 1e-12))
    lin_up = price_dt / (efficiency * dt_h)  # $ per kWh stored
    quad_up = degradation * dt_h / (efficiency * charge_kw * dt_h) ** 2
    lin_down = price_dt * efficiency / dt_h
    quad_down = degradation * dt_h * (efficiency / (discharge_kw * dt_h)) ** 2
    half_inv_up = 0.5 / quad_up if quad_up > 0.0 else 1e300
    half_inv_down = 0.5 / quad_down if quad_down > 0.0 else 1e300
    # Where the continuation is convex over a state's reach and the price is not
    # negative, the objective is convex in d: walking segment by segment away
    # from d = 0 can stop at the first interior vertex. concave[j] counts the
    # concave kinks at grid points 1..j (clipping the noise at the bounds makes
    # a few near the ends).
    concave = np.zeros(n_soe, dtype=np.int64)
    for j in range(1, n_soe - 1):
        bent = slopes[j] < slopes[j - 1] - 1e-12 * (abs(slopes[j - 1]) + 1e-12)
        concave[j] = concave[j - 1] + (1 if bent else 0)
    concave[n_soe - 1] = concave[n_soe - 2]
    for i in range(n_soe):
        best = continuation[i]
        best_d = 0.0
        lo = max(i - n_down, 0)
        hi = min(i + n_up, n_soe - 1)
        convex = price_dt >= 0.0 and (hi - 1 < lo or concave[hi - 1] == concave[lo])
        reach = min(up_max, (n_soe - 1 - i) * spacing)
        for j in range(i, min(i + n_up, n_soe - 1)):
            start = (j - i) * spacing
            end = min(start + spacing, reach)
            d = -(lin_up + slopes[j]) * half_inv_up
            d = min(max(d, start), end)
            cost = lin_up * d + quad_up * d * d + continuation[j] + slopes[j] * (d - start)
            if cost < best:
                best = cost
                best_d = d
            if convex and d < end:
                break
        reach = -min(down_max, i * spacing)
        for j in range(i - 1, max(i - n_down, 0) - 1, -1):
            start = (j - i) * spacing
            lower = max(start, reach)
            d = -(lin_down + slopes[j]) * half_inv_down
            d = min(max(d, lower), start + spacing)
            cost = lin_down * d + quad_down * d * d + continuation[j] + slopes[j] * (d - start)
            if cost < best:
                best = cost
                best_d = d
            if convex and d > lower:
                break
        value[i] = best
        if best_d > 0.0:
            control[i] = min(best_d / up_max, 1.0)
        else:
            control[i] = max(best_d / down_max, -1.0)


@njit(parallel=True, cache=True)
def battery_backward(
    price: np.ndarray,
    dt_h: float,
    soe_min: float,
    spacing: float,
    charge_kw: float,
    discharge_kw: float,
    efficiency: float,
    degradation: float,
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
    control: np.ndarray,
) -> None:
    """Dynamic programming for one battery type in every cluster, HJB eq. (22).

    Parameters
    ----------
    price
        Stage price ``π_p(k)`` of eq. (13), shape ``(M, K)`` [$/kWh].
    dt_h
        Control step [h].
    soe_min, spacing
        First grid point and grid spacing [kWh].
    charge_kw, discharge_kw, efficiency, degradation
        Rated powers [kW], one-way efficiency and degradation κ [$/h].
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
    control
        Output, shape ``(M, K, S)``: the optimal control ``u ∈ [-1, 1]``.
    """
    n_clusters, n_steps = price.shape
    n_soe = terminal.shape[0]
    for p in prange(n_clusters):
        value[p, n_steps, :] = terminal
        value_away[p, n_steps, :] = terminal
        after_noise = np.empty(n_soe)
        slopes = np.empty(n_soe - 1)
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
            for j in range(n_soe - 1):
                slopes[j] = (after_noise[j + 1] - after_noise[j]) / spacing
            _minimise_moves(
                after_noise,
                slopes,
                spacing,
                price[p, k] * dt_h,
                charge_kw,
                discharge_kw,
                efficiency,
                degradation,
                dt_h,
                value[p, k],
                control[p, k],
            )


@njit(cache=True)
def battery_move(
    b: float,
    u: float,
    soe_min: float,
    soe_max: float,
    charge_kw: float,
    discharge_kw: float,
    efficiency: float,
    dt_h: float,
) -> tuple[float, float]:
    """State after control ``u`` (clipped to bounds) and grid-side power [kW], eqs. (5)–(12)."""
    if u > 0.0:
        return min(b + efficiency * u * charge_kw * dt_h, soe_max), u * charge_kw
    return max(b + u * discharge_kw * dt_h / efficiency, soe_min), u * discharge_kw


@njit(parallel=True, cache=True)
def battery_forward(
    control: np.ndarray,
    initial: np.ndarray,
    dt_h: float,
    soe_min: float,
    spacing: float,
    charge_kw: float,
    discharge_kw: float,
    efficiency: float,
    degradation: float,
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
    """Push the battery density through a policy's transitions, FPK eq. (28).

    The exact adjoint of :func:`battery_backward`'s expectations: mass at grid
    point ``i`` moves to ``b_i + Δb(u)`` and is split linearly between the two
    neighbouring grid points, then spread by the noise map (and, for an EV,
    by departures, trips and arrivals).

    Parameters
    ----------
    control
        Control ``u`` per ``(cluster, step, grid point)``, shape ``(M, K, S)``.
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
    n_clusters, n_steps, n_soe = control.shape
    soe_max = soe_min + (n_soe - 1) * spacing
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
                u = control[p, k, i]
                y, g = battery_move(
                    soe_min + i * spacing,
                    u,
                    soe_min,
                    soe_max,
                    charge_kw,
                    discharge_kw,
                    efficiency,
                    dt_h,
                )
                drawn += m * g
                cost += m * degradation * u * u * dt_h
                pos = (y - soe_min) / spacing
                j = min(max(int(np.floor(pos)), 0), n_soe - 2)
                w = min(max(pos - j, 0.0), 1.0)
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
def _smooth_clip(x: float, lo: float, hi: float, width: float) -> float:
    """Scalar twin of :func:`market.pricing.smooth_clip`."""
    if width <= 1e-12:
        return min(max(x, lo), hi)
    a = (x - lo) / width
    b = (x - hi) / width
    soft_a = a + np.log1p(np.exp(-a)) if a > 0.0 else np.log1p(np.exp(a))
    soft_b = b + np.log1p(np.exp(-b)) if b > 0.0 else np.log1p(np.exp(b))
    return min(max(lo + width * (soft_a - soft_b), lo), hi)


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
    grid_price: np.ndarray,
    network_charge: np.ndarray,
    slope: np.ndarray,
    floor: float,
    smoothing: float,
    power_kw: float,
    dt_h: float,
    window_start: int,
    window_end: int,
    quanta: int,
    skip_cost: float,
    samples: int,
    tie: float,
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
    costs ``skip_cost``). A small tie cost (``tie`` dollars per quantum at
    ``x = 1``, rising linearly in ``x``) splits steps that are tied or nearly
    so evenly, which keeps the split a continuous function of the prices where
    they are flat (at the price floor); whatever it costs the households is
    part of the exploitability the solver reports.

    Parameters
    ----------
    rest_kw
        Mean net exchange of the cluster without the shiftable load [kW], ``(M, K)``.
    w_local, frozen_price
        ``w1(k)``, ``(K,)``, and ``w2 p_CoC + w3 p_G`` [$/kWh], ``(M, K)``.
    grid_price, network_charge, slope, floor, smoothing
        The local price function (see :func:`market.pricing.price_curve`).
    power_kw, dt_h
        Rated power ``P_s`` [kW] and step [h].
    window_start, window_end
        Window ``[start, end)`` in steps.
    quanta
        ``R``: quanta ``P_s·Δt`` each household has to run.
    skip_cost
        Cost of a quantum left undone [$].
    samples
        Points sampling each step's cost curve in ``x ∈ [0, 1]``.
    tie
        Tie-breaking cost at ``x = 1`` [$ per quantum].
    share_run
        Output ``(M, K)``: fraction ``x_k`` of households running at each step
        (``Σ_k x_k ≤ R``).
    """
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
                local = _smooth_clip(
                    grid_price[k] - network_charge[p] + slope[p] * (rest_kw[p, k] + power_kw * x),
                    floor,
                    grid_price[k],
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
