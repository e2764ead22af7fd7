"""The finite population as columns: one array per quantity, households sorted by cluster."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.game import Game


def day_rng(seed: int, day: int) -> np.random.Generator:
    """Generator of a day's EV schedules: child ``(2, day)`` of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, day)))


@dataclass
class Population:
    """Mutable household state of a finite-N simulation (columnar)."""

    cluster: np.ndarray
    """Cluster of each household, ``(N,)`` int64, non-decreasing."""
    offsets: np.ndarray
    """``offsets[p]:offsets[p+1]`` are cluster ``p``'s households."""
    has_ev: np.ndarray
    ess_soe: np.ndarray
    ev_soe: np.ndarray
    ev_connected: np.ndarray
    """1 while plugged in, 0 while away (int8)."""
    ev_u: np.ndarray
    ev_since: np.ndarray
    """Time [h] up to which each EV's energy has been integrated."""
    shift_left: np.ndarray
    zeta_pv: np.ndarray
    zeta_load: np.ndarray
    ess_throughput: np.ndarray
    ev_throughput: np.ndarray
    ess_start: np.ndarray
    ev_start: np.ndarray

    @property
    def size(self) -> int:
        """Number of households N."""
        return len(self.cluster)


def init_population(game: Game, households: np.ndarray, seed: int) -> Population:
    """Draw a population of ``households[p]`` households per cluster (stream 1 of ``seed``).

    Within each cluster exactly ``round(share_p · N_p)`` households own an EV;
    initial states of energy are the scenario's normals, clipped to bounds.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    households = np.asarray(households, dtype=np.int64)
    cluster = np.repeat(np.arange(len(households)), households)
    n = len(cluster)
    offsets = np.concatenate([[0], np.cumsum(households)])
    has_ev = np.zeros(n, dtype=np.int8)
    for p, (lo, hi) in enumerate(itertools.pairwise(offsets)):
        owners = round(game.clusters.ev_share[p] * (hi - lo))
        has_ev[lo + rng.permutation(hi - lo)[:owners]] = 1
    hh = game.config.household

    def initial(device, grid) -> np.ndarray:
        draw = rng.normal(device.initial_mean_kwh, device.initial_std_kwh, n)
        return np.clip(draw, grid.soe[0], grid.soe[-1])

    ess = initial(hh.ess, game.ess)
    ev = initial(hh.ev, game.ev)
    return Population(
        cluster=cluster,
        offsets=offsets,
        has_ev=has_ev,
        ess_soe=ess,
        ev_soe=ev,
        ev_connected=has_ev.copy(),
        ev_u=np.zeros(n),
        ev_since=np.zeros(n),
        shift_left=np.full(n, game.shiftable_quanta, dtype=np.int64),
        zeta_pv=np.zeros(n),
        zeta_load=np.zeros(n),
        ess_throughput=np.zeros(n),
        ev_throughput=np.zeros(n),
        ess_start=ess.copy(),
        ev_start=ev.copy(),
    )


@dataclass(frozen=True)
class EVSchedule:
    """One day's EV events: each owner leaves once and comes back once."""

    households: np.ndarray
    departure_h: np.ndarray
    arrival_h: np.ndarray
    trip_kwh: np.ndarray


def draw_ev_schedule(game: Game, population: Population, seed: int, day: int) -> EVSchedule:
    """Departure, arrival [h since the start of the run] and trip energy of every EV owner."""
    rng = day_rng(seed, day)
    ev = game.config.household.ev
    owners = np.flatnonzero(population.has_ev)
    m = len(owners)
    start = 24.0 * day
    return EVSchedule(
        households=owners,
        departure_h=start + rng.uniform(*_window(ev.departure_window_h), size=m),
        arrival_h=start + rng.uniform(*_window(ev.arrival_window_h), size=m),
        trip_kwh=np.maximum(rng.normal(ev.trip_kwh_mean, ev.trip_kwh_std, size=m), 0.0),
    )


def _window(hours: Sequence[float]) -> tuple[float, float]:
    """A ``[from, to]`` window of the scenario [h] as the pair ``Generator.uniform`` takes."""
    return float(hours[0]), float(hours[1])
