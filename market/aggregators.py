"""The market's buses, their prosumers and consumers, and the aggregators' play.

Seed 003 §3–4: every bus hosts prosumers (rooftop PV and storage) and pure
consumers; one aggregator per bus pools its prosumers' storage, and in the play
phase each prosumer samples an action from the aggregator's policy, the bids
are aggregated per bus, eq. (14), and submitted to the economic dispatch.

:class:`MarketCase` holds what does not change within a replication (the
dispatchable network, mean profiles, prosumer counts); :class:`ExogenousDraws`
the random weather and demand factors of every step, drawn up front so that a
run with storage and one without see the same draws. Grid-scale solar and
wind units (zero cost, seed 003 §5.1) enter the dispatch as negative demand at
their bus; the dispatch's surplus variable, priced at a curtailment price near
zero, curtails them when their output cannot be absorbed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from market.network import Network
from market.storage import StorageModel

__all__ = [
    "RENEWABLE_FUELS",
    "ExogenousDraws",
    "MarketCase",
    "advance_population",
    "sample_actions",
]

RENEWABLE_FUELS = ("solar", "wind")
"""Fuels dispatched as zero-cost must-take output scaled by a capacity factor."""


@dataclass(frozen=True)
class ExogenousDraws:
    """Per-step random factors of one replication (seed 003 §5.1)."""

    demand_factor: NDArray[np.float64]
    """Factor on gross load per step and bus, shape ``(steps, buses)``."""
    solar_factor: NDArray[np.float64]
    """Factor on the clear-sky PV shape per step, shape ``(steps,)``."""
    wind_factor: NDArray[np.float64]
    """Wind capacity factor per step, shape ``(steps,)``."""

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        steps: int,
        buses: int,
        demand: tuple[float, float, float],
        solar: tuple[float, float, float],
        wind: tuple[float, float, float],
    ) -> ExogenousDraws:
        """Draw every step's factors from triangular distributions ``(low, mode, high)``.

        Order of draws (fixed, so that a seed fixes them): demand, solar, wind.
        """
        return cls(
            demand_factor=rng.triangular(*demand, size=(steps, buses)),
            solar_factor=rng.triangular(*solar, size=steps),
            wind_factor=rng.triangular(*wind, size=steps),
        )


@dataclass(frozen=True)
class MarketCase:
    """Buses, populations and mean profiles of one replication.

    Profiles are per slot of the day; ``slots · dt_h = 24``.
    """

    network: Network
    """The full network, renewable units included (their output is taken as given)."""
    dt_h: float
    """Step length (h)."""
    consumer_mw: NDArray[np.float64]
    """Mean demand of each bus's pure consumers per slot (MW), ``(slots, buses)``."""
    prosumers: NDArray[np.int64]
    """Prosumers per bus, ``(buses,)``."""
    prosumer_load_kw: NDArray[np.float64]
    """A prosumer's mean gross load per slot (kW), ``(slots,)``."""
    prosumer_pv_kw: NDArray[np.float64]
    """A prosumer's rooftop PV per slot at solar factor 1 (kW), ``(slots,)``."""
    solar_shape: NDArray[np.float64]
    """Grid-scale solar output per MW installed per slot at solar factor 1, ``(slots,)``."""
    storage_kwh: float
    """Storage capacity per prosumer (kWh); 0 for runs without storage."""

    def __post_init__(self) -> None:
        slots = self.consumer_mw.shape[0]
        if abs(slots * self.dt_h - 24.0) > 1e-9:
            raise ValueError(f"MarketCase: {slots} slots of {self.dt_h} h do not make a day")
        n = self.network.n_buses
        if self.consumer_mw.shape != (slots, n) or self.prosumers.shape != (n,):
            raise ValueError("MarketCase: consumer_mw must be (slots, buses), prosumers (buses,)")
        for name in ("prosumer_load_kw", "prosumer_pv_kw", "solar_shape"):
            if getattr(self, name).shape != (slots,):
                raise ValueError(f"MarketCase.{name}: expected shape ({slots},)")

    @property
    def slots(self) -> int:
        """Steps per day."""
        return self.consumer_mw.shape[0]

    @property
    def aggregator_bus(self) -> NDArray[np.intp]:
        """Bus of each aggregator: every bus with at least one prosumer."""
        return np.flatnonzero(self.prosumers > 0)

    @property
    def has_storage(self) -> bool:
        """Whether aggregators have storage to control."""
        return self.storage_kwh > 0.0 and self.aggregator_bus.size > 0

    @property
    def storage_mwh(self) -> NDArray[np.floating]:
        """Pooled storage capacity of each aggregator (MWh), ``(aggregators,)``."""
        return self.prosumers[self.aggregator_bus] * self.storage_kwh / 1000.0

    def dispatch_network(self) -> Network:
        """The network without its renewable units, which enter as negative demand."""
        keep = tuple(g for g in self.network.generators if g.fuel not in RENEWABLE_FUELS)
        return replace(self.network, generators=keep)

    def renewable_mw(self, slot: int, solar_factor: float, wind_factor: float) -> NDArray:
        """Output of the renewable units per bus (MW) in a step."""
        net = self.network
        out = np.zeros(net.n_buses)
        solar_cf = min(1.0, float(self.solar_shape[slot]) * solar_factor)
        for g in net.generators:
            if g.fuel == "solar":
                out[g.bus] += g.pmax_mw * solar_cf
            elif g.fuel == "wind":
                out[g.bus] += g.pmax_mw * min(1.0, wind_factor)
        return out

    def base_bids_mw(self, slot: int, demand_factor: NDArray, solar_factor: float) -> NDArray:
        """Bids per bus without storage (MW): consumers plus prosumers' net load, eq. (14)."""
        prosumer_kw = self.prosumer_load_kw[slot] * demand_factor
        prosumer_kw = prosumer_kw - self.prosumer_pv_kw[slot] * solar_factor
        return self.consumer_mw[slot] * demand_factor + self.prosumers * prosumer_kw / 1000.0


def sample_actions(
    rng: np.random.Generator, counts: NDArray[np.int64], policy: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Each prosumer samples its action from its aggregator's policy (Algorithm 1, play).

    Parameters
    ----------
    rng
        The run's generator.
    counts
        Prosumers per aggregator and SoE level, ``(aggregators, n_soe)``.
    policy
        ``π(a | s)`` of the step's slot, ``(aggregators, n_soe, n_actions)``.

    Returns
    -------
    numpy.ndarray
        Prosumers per aggregator, SoE level and action, ``(aggregators, n_soe, n_actions)``:
        multinomial draws, so each prosumer's action is sampled without a loop.
    """
    p = np.clip(policy, 0.0, None)
    p = p / p.sum(axis=-1, keepdims=True)
    return rng.multinomial(counts, p)


def advance_population(model: StorageModel, chosen: NDArray[np.int64]) -> NDArray[np.int64]:
    """Prosumers per aggregator and SoE level after their actions, eq. (11)."""
    n_agg, n_soe, n_act = chosen.shape
    target = np.broadcast_to(model.next_soe, (n_agg, n_soe, n_act))
    flat = (np.arange(n_agg)[:, None, None] * n_soe + target).ravel()
    out = np.bincount(flat, weights=chosen.ravel(), minlength=n_agg * n_soe)
    return np.rint(out).astype(np.int64).reshape(n_agg, n_soe)
