"""Compiled battery kernels of the GMFG solver: HJB backward, FPK forward (SPEC §4).

The battery kernels serve both the home ESS and the EV. Their state is the
state of energy on a uniform grid; the EV adds the exogenous connected/away
chain. One step of the scheme, for a connected battery at grid point ``i``:

1. control ``u`` moves the energy to ``y = b_i + Δb(u)`` (within bounds), split
   linearly between the two neighbouring grid points — the semi-Lagrangian
   step of the HJB eq. (22); its exact minimiser over continuous ``u``
   replaces the switching rules (23)–(27);
2. SoE noise ``σ√Δt·Z`` moves each grid point by Gauss–Hermite nodes, again
   split linearly and clipped (a row-stochastic matrix ``N``);
3. (EV) a plugged-in EV leaves *during* the step with hazard ``h_d``, at a
   uniform time inside the departure window's overlap with the step (as the
   co-simulation draws it; Gauss–Legendre nodes ``F`` over the fraction of
   the step): it has then moved ``F·Δb(u)``, drawn and paid ``F·e(u)``, worn
   ``F·κu²Δt``, takes no SoE noise, pays the departure penalty and the trip
   energy (Gauss–Hermite nodes) moves it to the away layer. Away EVs arrive
   with hazard ``h_a`` and are plugged in from the next step.

The FPK eq. (28) pushes mass through these transition weights, so the density
keeps its mass to rounding and never turns negative. The HJB reads the next
value between grid points either linearly — expectations through exactly these
weights, the grid chain's exact program, whose value equals the expected cost
of its policy under the pushed density — or by cubic Hermite pieces
(:mod:`models.cubic`), whose law is close to optimal at every continuous state;
the step is minimised exactly either way (:mod:`models.hjb_step`).

Kernels write into preallocated outputs; the heavy ones run the clusters in
parallel (``prange``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from models.battery import Battery, move, move_costs, plugged_share
from models.cubic import minimise_moves_cubic, smooth_expectation
from models.hjb_step import minimise_step


class RowMap(NamedTuple):
    """A sparse row-stochastic map: row ``i`` sends weight ``w[i, j]`` to point ``idx[i, j]``."""

    idx: np.ndarray
    """Target grid points, ``(S, Q)`` int64."""
    w: np.ndarray
    """Their weights, ``(S, Q)``; each row sums to 1."""


class EVTrips(NamedTuple):
    """The EV's exogenous connected/away chain on the SoE grid (all zero-hazard for an ESS)."""

    depart: np.ndarray
    """Probability ``h_d`` of leaving during step ``k`` if plugged in at its start, ``(K,)``."""
    leave_at: np.ndarray
    """Fractions ``F`` of step ``k`` plugged in before leaving: quadrature nodes ``(K, G)`` ..."""
    leave_w: np.ndarray
    """... and their weights ``(K, G)``."""
    depart_cost: np.ndarray
    """Departure penalty at each grid point [$], ``(S,)``."""
    trip: RowMap
    """Trip energy taken at departure (connected → away), ``(S, T)``."""
    arrive: np.ndarray
    """Probability ``h_a`` that an away EV arrives during step ``k``, ``(K,)``."""


class Jumps(NamedTuple):
    """A random jump of the state of energy: quadrature nodes and their probabilities."""

    shift: np.ndarray
    """Jumps [kWh], ``(Q,)``."""
    prob: np.ndarray
    """Their probabilities, ``(Q,)``, summing to 1."""


class BatteryTables(NamedTuple):
    """The price-free transition tables of one battery type on its uniform SoE grid."""

    spacing: float
    """Grid spacing [kWh]; the first point is the battery's ``soe_min``."""
    noise: RowMap
    """SoE noise ``σ√Δt·Z`` (Gauss–Hermite nodes, split linearly, clipped), ``(S, Q)``."""
    trips: EVTrips
    """Departures, trips and arrivals of an EV."""
    terminal: np.ndarray
    """End-of-day penalty ``Φ`` at each grid point [$], ``(S,)``."""
    noise_jumps: Jumps
    """The SoE noise's nodes, before they are split onto the grid (``noise`` above)."""
    trip_jumps: Jumps
    """The trip energy's nodes (negative jumps), before they are split onto the grid."""


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
def minimise_moves_linear(
    continuation: np.ndarray,
    slopes: np.ndarray,
    spacing: float,
    price_dt: float,
    battery: Battery,
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
    up_max, down_max, lin_up, quad_up, lin_down, quad_down = move_costs(
        battery, price_dt, dt_h, 1.0
    )
    n_up = int(np.ceil(up_max / spacing - 1e-12))
    n_down = int(np.ceil(down_max / spacing - 1e-12))
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


@njit(cache=True)
def _backward_cluster(
    price: np.ndarray,
    dt_h: float,
    battery: Battery,
    tables: BatteryTables,
    value: np.ndarray,
    value_away: np.ndarray,
    control: np.ndarray,
    smooth: bool,
) -> None:
    """:func:`battery_backward` of one cluster: ``price`` ``(K,)``; outputs per step and point."""
    n_steps = price.shape[0]
    spacing, terminal = tables.spacing, tables.terminal
    noise_idx, noise_w = tables.noise
    depart, leave_at, leave_w, depart_cost, trip, arrive = tables.trips
    trip_idx, trip_w = trip
    n_soe = terminal.shape[0]
    value[n_steps, :] = terminal
    value_away[n_steps, :] = terminal
    after_noise = np.empty(n_soe)
    slopes = np.empty(n_soe - 1)
    blend = np.zeros(n_soe)
    trip_value = np.empty(n_soe)
    for k in range(n_steps - 1, -1, -1):
        v_next = value[k + 1]
        va_next = value_away[k + 1]
        hd = depart[k]
        ha = arrive[k]
        for i in range(n_soe):
            value_away[k, i] = ha * v_next[i] + (1.0 - ha) * va_next[i]
        if smooth:
            smooth_expectation(v_next, tables.noise_jumps, spacing, after_noise)
        else:
            _apply_rows(noise_idx, noise_w, v_next, after_noise)
        if hd > 0.0:
            if smooth:
                smooth_expectation(va_next, tables.trip_jumps, spacing, trip_value)
            else:
                _apply_rows(trip_idx, trip_w, va_next, trip_value)
            for i in range(n_soe):
                blend[i] = depart_cost[i] + trip_value[i]
        price_dt = price[k] * dt_h
        if hd <= 0.0 and smooth:  # a battery that stays: the specialised minimisers
            minimise_moves_cubic(
                after_noise, battery, spacing, price_dt, dt_h, value[k], control[k]
            )
        elif hd <= 0.0:
            for j in range(n_soe - 1):
                slopes[j] = (after_noise[j + 1] - after_noise[j]) / spacing
            minimise_moves_linear(
                after_noise, slopes, spacing, price_dt, battery, dt_h, value[k], control[k]
            )
        elif smooth:  # a literal flag each: see minimise_step
            minimise_step(
                after_noise, blend, (hd, leave_at[k], leave_w[k]), battery, spacing, price_dt,
                dt_h, True, value[k], control[k],
            )  # fmt: skip
        else:
            minimise_step(
                after_noise, blend, (hd, leave_at[k], leave_w[k]), battery, spacing, price_dt,
                dt_h, False, value[k], control[k],
            )  # fmt: skip


@njit(parallel=True, cache=True)
def battery_backward(
    price: np.ndarray,
    dt_h: float,
    battery: Battery,
    tables: BatteryTables,
    value: np.ndarray,
    value_away: np.ndarray,
    control: np.ndarray,
    smooth: bool = False,
) -> None:
    """Dynamic programming for one battery type in every cluster, HJB eq. (22).

    Parameters
    ----------
    price
        Stage price ``π_p(k)`` of eq. (13), shape ``(M, K)`` [$/kWh].
    dt_h
        Control step [h].
    battery
        The battery (:mod:`models.battery`); its ``soe_min`` is the grid's first point.
    tables
        Grid spacing, SoE noise map, the EV's departures, trips and arrivals
        (zero hazards for a home ESS) and the end-of-day penalty.
    value, value_away
        Outputs, shape ``(M, K+1, S)``: cost-to-go of a connected / away battery.
    control
        Output, shape ``(M, K, S)``: the optimal control ``u ∈ [-1, 1]``.
    smooth
        Interpolate the continuation value by cubic Hermite pieces
        (:mod:`models.cubic`) instead of linearly. Linear is the exact dynamic
        program of the grid's Markov chain — the transport of
        :func:`battery_forward` — and is what a reference best response uses;
        cubic gives a law close to optimal at every continuous state.
    """
    n_clusters = price.shape[0]
    # numba's parallel loop takes no nested tuple: unpack the tables before it
    spacing, terminal = tables.spacing, tables.terminal
    noise_idx, noise_w = tables.noise
    depart, leave_at, leave_w, depart_cost, trip, arrive = tables.trips
    trip_idx, trip_w = trip
    noise_shift, noise_prob = tables.noise_jumps
    trip_shift, trip_prob = tables.trip_jumps
    for p in prange(n_clusters):
        # one cluster per call: numba compiles the serial function far better
        # than the same loop written inside the parallel one
        local = BatteryTables(
            spacing,
            RowMap(noise_idx, noise_w),
            EVTrips(depart, leave_at, leave_w, depart_cost, RowMap(trip_idx, trip_w), arrive),
            terminal,
            Jumps(noise_shift, noise_prob),
            Jumps(trip_shift, trip_prob),
        )
        _backward_cluster(
            price[p], dt_h, battery, local, value[p], value_away[p], control[p], smooth
        )


@njit(cache=True)
def _split(y: float, mass: float, soe_min: float, spacing: float, out: np.ndarray) -> None:
    """Add ``mass`` at SoE ``y`` to ``out``, split linearly between the two nearest grid points."""
    n_soe = out.shape[0]
    pos = (y - soe_min) / spacing
    j = min(max(int(np.floor(pos)), 0), n_soe - 2)
    t = min(max(pos - j, 0.0), 1.0)
    out[j] += (1.0 - t) * mass
    out[j + 1] += t * mass


@njit(parallel=True, cache=True)
def battery_forward(
    control: np.ndarray,
    initial: np.ndarray,
    dt_h: float,
    battery: Battery,
    tables: BatteryTables,
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
    # numba's parallel loop takes no nested tuple: unpack the tables before it
    spacing, terminal = tables.spacing, tables.terminal
    noise_idx, noise_w = tables.noise
    depart, leave_at, leave_w, depart_cost, trip, arrive = tables.trips
    trip_idx, trip_w = trip
    soe_min = battery.soe_min
    degradation = battery.degradation
    # moves are clipped at the grid's top as the scheme represents it, first
    # point + (S − 1)·spacing (which can differ from the last point by rounding)
    on_grid = Battery(
        soe_min,
        soe_min + (n_soe - 1) * spacing,
        battery.charge_kw,
        battery.discharge_kw,
        battery.efficiency,
        degradation,
        battery.noise_kwh,
    )
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
            hd = depart[k]
            ha = arrive[k]
            at = leave_at[k]
            wt = leave_w[k]
            plugged = plugged_share(hd, at, wt)
            post[:] = 0.0
            moved[:] = 0.0
            drawn = 0.0
            for i in range(n_soe):
                m = mu[i]
                if m == 0.0:
                    continue
                b = soe_min + i * spacing
                u = control[p, k, i]
                y, g = move(on_grid, b, u, dt_h)
                drawn += plugged * m * g
                cost += plugged * m * degradation * u * u * dt_h
                _split(y, (1.0 - hd) * m, soe_min, spacing, post)
                if hd > 0.0:  # leaving during the step, after the fraction F of it
                    for q in range(at.shape[0]):
                        _split(b + at[q] * (y - b), hd * wt[q] * m, soe_min, spacing, moved)
            power[p, k] = drawn
            noisy[:] = 0.0
            _scatter_rows(noise_idx, noise_w, post, noisy)
            nxt = density[p, k + 1]
            nxt_a = density_away[p, k + 1]
            for i in range(n_soe):
                nxt[i] = noisy[i] + ha * mu_a[i]
                nxt_a[i] = (1.0 - ha) * mu_a[i]
            if hd > 0.0:
                for i in range(n_soe):
                    cost += moved[i] * depart_cost[i]
                _scatter_rows(trip_idx, trip_w, moved, nxt_a)
        final = density[p, n_steps]
        final_a = density_away[p, n_steps]
        for i in range(n_soe):
            cost += (final[i] + final_a[i]) * terminal[i]
        other_cost[p] = cost
