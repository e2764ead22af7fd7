"""The price clearing of the cluster-of-clusters, eqs. (13) and (16)–(20) of Aziz et al.

From the mean net exchange ``m_p`` of each cluster [kW per household]:

* the local price ``p_RPC,p = P_loc,p(m_p)``, eq. (19);
* the graphon aggregates ``A_p = Σ_q W_pq λ_q m_q`` and ``M_g = Σ_p λ_p A_p``,
  eqs. (17)–(18);
* the inter-cluster price ``p_CoC = P_glob,p(M_g)``, eq. (20), or
  ``P_glob,p(A_p)`` when each cluster sees its own aggregate (SPEC §3);
* the stage price ``π_p = w1 p_RPC,p + w2 p_CoC + w3 p_G``, eq. (13).

This is the one implementation of the rule. The solver clears every step of
an aggregate path at once, the co-simulation one interval of realised
aggregates, the ε-Nash deviator many samples of them; the ε-Nash gap is a
difference between the prices of two of these callers, so any second copy of
the rule would show up in it as drift.

Arrays carry the cluster axis first: ``m`` has shape ``(M, ...)`` and every
price comes back with the same shape (or ``(...)`` for one cluster); the grid
price and the weights broadcast against the trailing ``(...)``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from market.pricing import price_curve


class PriceFunction(NamedTuple):
    """``P_p(m) = clip(p_G − δ_p + a_p·m, floor, p_G)``, smoothed (:func:`.price_curve`)."""

    network_charge: np.ndarray
    """``δ_p``, the network charge saved [$/kWh], shape ``(M,)``."""
    slope: np.ndarray
    """``a_p``, the price increase per kW of the aggregate [$/kWh per kW], shape ``(M,)``."""
    floor: float
    """Price floor [$/kWh]."""
    smoothing: float
    """Softplus width of the clip [$/kWh]; 0 gives the hard clip."""

    def __call__(
        self, aggregate: np.ndarray, grid_price: np.ndarray | float, cluster: int | None = None
    ) -> np.ndarray:
        """The price at ``aggregate`` [kW], shape ``(M, ...)``, or ``(...)`` for one ``cluster``."""
        if cluster is None:
            column = (slice(None),) + (None,) * (np.ndim(aggregate) - 1)
            network_charge, slope = self.network_charge[column], self.slope[column]
        else:
            network_charge, slope = self.network_charge[cluster], self.slope[cluster]
        return price_curve(aggregate, grid_price, network_charge, slope, self.floor, self.smoothing)


class ClearingParameters(NamedTuple):
    """Everything the clearing rule needs besides the aggregates, grid price and weights."""

    local: PriceFunction
    """``P_loc``, the price of energy traded inside a cluster (RPC), eq. (19)."""
    inter: PriceFunction
    """``P_glob``, the price of energy traded across clusters (CoC), eq. (20)."""
    shares: np.ndarray
    """``λ_p = N_p / N``, shape ``(M,)``."""
    graphon: np.ndarray
    """``W_pq = exp(−α e_pq)``, shape ``(M, M)``."""
    aggregate: Literal["scalar", "per_cluster"]
    """What ``P_glob`` is evaluated at: ``M_g`` (eq. (20)) or each cluster's ``A_p``."""


class ClearedPrices(NamedTuple):
    """The prices of one clearing [$/kWh] and the aggregates they came from [kW]."""

    rpc: np.ndarray
    """``p_RPC,p``, shape ``(M, ...)`` (``(...)`` for one cluster)."""
    seen: np.ndarray
    """``A_p``, shape ``(M, ...)``, always every cluster's."""
    scalar: np.ndarray
    """``M_g``, shape ``(...)``."""
    coc: np.ndarray
    """``p_CoC``, same shape as ``rpc``."""
    stage: np.ndarray
    """``π_p``, same shape as ``rpc``."""


def graphon_aggregates(
    weights: np.ndarray, shares: np.ndarray, cluster_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Graphon aggregates ``A_p = Σ_q W_pq λ_q m_q`` and ``M_g = Σ_p λ_p A_p``, eqs. (17)–(18).

    Parameters
    ----------
    weights
        ``W``, shape ``(M, M)``.
    shares
        ``λ_p = N_p / N``, shape ``(M,)``.
    cluster_mean
        ``m_p`` [kW per household], shape ``(M, ...)``.

    Returns
    -------
    tuple
        ``A`` with the shape of ``cluster_mean`` and ``M_g`` with shape ``(...)``.
    """
    mean = np.asarray(cluster_mean, dtype=float)
    columns = mean.reshape(len(shares), -1)  # (M, everything else): one matrix product
    seen = weights @ (shares[:, None] * columns)
    return seen.reshape(mean.shape), (shares @ seen).reshape(mean.shape[1:])


def clear_prices(
    rule: ClearingParameters,
    cluster_mean: np.ndarray,
    grid_price: np.ndarray | float,
    weights: np.ndarray,
    cluster: int | None = None,
) -> ClearedPrices:
    """Clear the cluster-of-clusters for cluster means ``m_p``, eqs. (13), (16)–(20).

    Parameters
    ----------
    rule
        Price functions, shares and graphon.
    cluster_mean
        ``m_p`` [kW per household], shape ``(M, ...)``: one clearing per
        trailing index (a step, a sample).
    grid_price
        ``p_G`` [$/kWh], broadcasting against ``(...)``.
    weights
        ``(w1, w2, w3)`` of eq. (13) on the last axis, shape ``(3,)`` or
        ``(..., 3)`` broadcasting against ``(...)``.
    cluster
        Only this cluster's prices (the aggregates still take every cluster's
        mean); ``None``: every cluster's.
    """
    mean = np.asarray(cluster_mean, dtype=float)
    seen, scalar = graphon_aggregates(rule.graphon, rule.shares, mean)
    own = mean if cluster is None else mean[cluster]
    rpc = rule.local(own, grid_price, cluster)
    if rule.aggregate == "per_cluster":
        inter_input = seen if cluster is None else seen[cluster]
    else:
        inter_input = np.broadcast_to(scalar, own.shape)
    coc = rule.inter(inter_input, grid_price, cluster)
    stage = _stage(rpc, coc, grid_price, weights)
    return ClearedPrices(rpc=rpc, seen=seen, scalar=scalar, coc=coc, stage=stage)


def _stage(
    rpc: np.ndarray, coc: np.ndarray, grid_price: np.ndarray | float, weights: np.ndarray
) -> np.ndarray:
    """``π_p = w1 p_RPC,p + w2 p_CoC + w3 p_G``, eq. (13)."""
    w = np.asarray(weights, dtype=float)
    return w[..., 0] * rpc + w[..., 1] * coc + w[..., 2] * grid_price


def clear_shifted(
    rule: ClearingParameters,
    cluster_mean: np.ndarray,
    shift: np.ndarray,
    grid_price: np.ndarray | float,
    weights: np.ndarray,
    cluster: int,
) -> np.ndarray:
    """Stage price of ``cluster`` when its mean moves by each of ``shift`` (eq. (13)).

    ``clear_prices(rule, m + shift·e_p, …, cluster=p).stage`` for many shifts
    at once: the aggregates are linear in the means, so they are formed once
    at ``m`` and moved along ``e_p``, and only the price curves are evaluated
    per shift — ``M`` times less work than clearing every shifted vector.

    Parameters
    ----------
    cluster_mean
        ``m`` [kW per household], shape ``(M, ...)``.
    shift
        Shifts of ``m_p`` [kW per household], shape ``(..., X...)``: the
        trailing axes of ``cluster_mean`` first, then any of its own.
    grid_price, weights
        As for :func:`clear_prices`, broadcasting against ``shift``.
    """
    mean = np.asarray(cluster_mean, dtype=float)
    seen, scalar = graphon_aggregates(rule.graphon, rule.shares, mean)
    unit = np.zeros(len(rule.shares))
    unit[cluster] = 1.0
    seen_unit, scalar_unit = graphon_aggregates(rule.graphon, rule.shares, unit)
    expand = (Ellipsis,) + (None,) * (np.ndim(shift) - (mean.ndim - 1))
    rpc = rule.local(mean[cluster][expand] + shift, grid_price, cluster)
    if rule.aggregate == "per_cluster":
        inter_input = seen[cluster][expand] + seen_unit[cluster] * shift
    else:
        inter_input = scalar[expand] + scalar_unit * shift
    coc = rule.inter(inter_input, grid_price, cluster)
    return _stage(rpc, coc, grid_price, weights)
