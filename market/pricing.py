"""Local (RPC) and inter-cluster (CoC) prices, eqs. (19)–(20) of Aziz et al.

Both price functions have the form of SPEC §3::

    P(m) = clip(p_G − δ + a·m, p_floor, p_G)

increasing and Lipschitz in the aggregate ``m`` (kW per household), capped at
the grid price: energy traded inside a cluster (or across clusters) carries
less of the retail network charge ``δ`` than grid energy does. The clip is
smoothed with a softplus of width ``smoothing`` so that the fixed point and
the grid-refinement study do not chase a kink; ``smoothing = 0`` gives the
hard clip.

The stage price of eq. (13) is ``π_p = w1 p_RPC,p + w2 p_CoC + w3 p_G``; the
weights depend on the trading mode of seed 000 §4.3.1 and may vary by hour.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from numba import njit, vectorize
from pydantic import Discriminator, Field, Tag

from market.schema import LIST, SCALAR, ClusterValue, Frozen, UniformRange, ValueOrHourly

Weight = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
WeightTriple = Annotated[list[Weight], Field(min_length=3, max_length=3)]


def _triple_or_table(value: Any) -> str:
    """``[w1, w2, w3]`` or ``[[w1, w2, w3], …]`` (24 hourly triples)."""
    if isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
        return LIST
    return SCALAR


#: One weight triple, or 24 hourly triples.
Weights = Annotated[
    Annotated[WeightTriple, Tag(SCALAR)] | Annotated[list[WeightTriple], Tag(LIST)],
    Discriminator(_triple_or_table),
]


class Mode(StrEnum):
    """Trading modes compared in seed 000 §4.3.1."""

    STANDALONE = "standalone"
    RPC = "rpc"
    COC = "coc"


class PriceFunctionConfig(Frozen):
    """``P(m) = clip(p_G − δ + a·m, floor, p_G)`` (smoothed), per cluster where allowed.

    The defaults are the local (RPC) price's; see :class:`GlobalPriceConfig`.
    """

    network_charge: ClusterValue = Field(
        UniformRange(low=0.025, high=0.04),
        description="δ: network charge saved by trading locally [$/kWh]; per cluster.",
    )
    slope: ClusterValue = Field(
        UniformRange(low=0.005, high=0.01),
        description="a: price increase per kW of mean net exchange per household [$/kWh/kW].",
    )
    floor: float = Field(0.02, ge=0, allow_inf_nan=False, description="Price floor [$/kWh].")
    smoothing: float = Field(
        0.002, ge=0, allow_inf_nan=False, description="Softplus width of the clip [$/kWh]."
    )


class GlobalPriceConfig(PriceFunctionConfig):
    """The inter-cluster (CoC) price function; same form, its own defaults."""

    network_charge: ClusterValue = Field(
        0.03, description="δ: network charge saved by trading across clusters [$/kWh]."
    )
    slope: ClusterValue = Field(
        0.0075, description="a: price increase per kW of the graphon aggregate [$/kWh/kW]."
    )


class WeightsConfig(Frozen):
    """Weights ``(w1, w2, w3)`` of eq. (13) for each mode; stand-alone is always (0, 0, 1).

    Each mode takes one triple, or 24 triples (one per hour of day) for
    time-varying weights.
    """

    rpc: Weights = Field([0.5, 0.0, 0.5], description="RPC-only weights (w2 must be 0).")
    coc: Weights = Field([0.4, 0.3, 0.3], description="CoC weights.")


class PriceConfig(Frozen):
    """Grid tariff, price functions and mode weights (SPEC §3)."""

    grid_price: ValueOrHourly = Field(
        0.07,
        description="p_G: flat [$/kWh], or 24 hourly values (time of use) [$/kWh].",
    )
    rpc: PriceFunctionConfig = Field(default_factory=PriceFunctionConfig)
    coc: GlobalPriceConfig = Field(default_factory=GlobalPriceConfig)
    coc_aggregate: Literal["scalar", "per_cluster"] = Field(
        "scalar",
        description="scalar: p_CoC = P_glob(M_g), eq. (20); per_cluster: P_glob(A_p) (SPEC §3).",
    )
    weights: WeightsConfig = Field(default_factory=WeightsConfig)


@njit(cache=True)
def _softplus(a: float) -> float:
    """``log(1 + e^a)``, evaluated as ``numpy.logaddexp(0, a)`` is (no overflow)."""
    if a > 0.0:
        return a + math.log1p(math.exp(-a))
    return math.log1p(math.exp(a))


@njit(cache=True)
def clip_at(x: float, lo: float, hi: float, width: float) -> float:
    """Clip ``x`` to ``[lo, hi]``, smoothed by a softplus of ``width`` (hard clip when 0).

    Increasing, 1-Lipschitz, and never above ``hi`` nor below ``lo``. The one
    implementation of the clip: :func:`smooth_clip` is its ufunc.
    """
    if width <= 1e-12:  # below that the softplus is the hard clip to double precision
        return min(max(x, lo), hi)
    soft_lo = width * _softplus((x - lo) / width)
    soft_hi = width * _softplus((x - hi) / width)
    return min(max(lo + soft_lo - soft_hi, lo), hi)


@njit(cache=True)
def price_at(
    aggregate: float,
    grid_price: float,
    network_charge: float,
    slope: float,
    floor: float,
    smoothing: float,
) -> float:
    """``P(m) = clip(p_G − δ + a·m, floor, p_G)`` at one point (eqs. (19)–(20)).

    The one implementation of the price function: :func:`price_curve` is its
    ufunc, and compiled kernels (the shiftable load's Wardrop split) call it.
    """
    return clip_at(grid_price - network_charge + slope * aggregate, floor, grid_price, smoothing)


@functools.cache
def _ufunc(scalar: Callable[..., float], arguments: int) -> Callable[..., np.ndarray]:
    """``scalar`` as a NumPy ufunc over float64 arrays, broadcasting (made on first use)."""
    return vectorize([f"float64({', '.join(['float64'] * arguments)})"], cache=True)(scalar)


def smooth_clip(
    x: np.ndarray | float, lo: np.ndarray | float, hi: np.ndarray | float, width: float
) -> np.ndarray:
    """:func:`clip_at` elementwise over broadcasting arrays."""
    return np.asarray(_ufunc(clip_at, 4)(x, lo, hi, width))


def price_curve(
    aggregate: np.ndarray,
    grid_price: np.ndarray | float,
    network_charge: np.ndarray | float,
    slope: np.ndarray | float,
    floor: float,
    smoothing: float,
) -> np.ndarray:
    """Evaluate ``P(m) = clip(p_G − δ + a·m, floor, p_G)`` elementwise (eqs. (19)–(20)).

    Parameters
    ----------
    aggregate
        Mean net exchange per household ``m`` [kW], any shape broadcasting with
        ``grid_price``.
    grid_price
        ``p_G`` [$/kWh] at the same steps.
    network_charge, slope
        ``δ`` [$/kWh] and ``a`` [$/kWh per kW], scalars or broadcastable arrays.
    floor, smoothing
        Price floor and softplus width [$/kWh].
    """
    price = _ufunc(price_at, 6)
    return np.asarray(price(aggregate, grid_price, network_charge, slope, floor, smoothing))


def price_curve_slope(
    aggregate: np.ndarray,
    grid_price: np.ndarray,
    network_charge: np.ndarray | float,
    slope: np.ndarray | float,
    floor: float,
    smoothing: float,
) -> np.ndarray:
    """Derivative ``dP/dm`` of :func:`price_curve` [$/kWh per kW]; ≥ 0 everywhere."""
    raw = grid_price - network_charge + slope * aggregate
    if smoothing <= 1e-12:
        inside = (raw > floor) & (raw < grid_price)
        return np.where(inside, slope, 0.0) * np.ones_like(raw)
    sig_lo = 1.0 / (1.0 + np.exp(-(raw - floor) / smoothing))
    sig_hi = 1.0 / (1.0 + np.exp(-(raw - grid_price) / smoothing))
    return slope * (sig_lo - sig_hi)


def mode_weights(mode: Mode | str, config: WeightsConfig, step_hours: np.ndarray) -> np.ndarray:
    """Weights ``(w1, w2, w3)`` per control step, shape ``(K, 3)``.

    Parameters
    ----------
    mode
        Trading mode, or its name (``"standalone"``, ``"rpc"``, ``"coc"``);
        stand-alone is ``(0, 0, 1)`` by definition.
    config
        The scenario's weights.
    step_hours
        Start time of each control step [h of day], shape ``(K,)``.

    Raises
    ------
    ValueError
        For a name that is not a trading mode.
    """
    mode = Mode(mode)
    k = len(step_hours)
    if mode is Mode.STANDALONE:
        return np.tile([0.0, 0.0, 1.0], (k, 1))
    table = np.asarray(config.rpc if mode is Mode.RPC else config.coc, dtype=float)
    if table.ndim == 1:
        return np.tile(table, (k, 1))
    hour = np.minimum(np.floor(step_hours).astype(int), 23)
    return table[hour]


def hourly_to_steps(values: float | list[float], step_hours: np.ndarray) -> np.ndarray:
    """A flat value or 24 hourly values expanded to one value per control step."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        return np.full(len(step_hours), float(arr))
    hour = np.minimum(np.floor(step_hours).astype(int), 23)
    return arr[hour]
