"""Cluster-of-clusters graph and graphon (seed 000 §3.1–3.3, eqs. (14), (16)–(18)).

Distances ``e ∈ [0,1]^{M×M}`` (symmetric, zero diagonal) come from a seeded
radial feeder (normalised path impedance between cluster buses), from random
points on a line, or from the user; the step graphon is ``W = exp(−α e)``.
The aggregates it weighs, eqs. (17)–(18), are part of the clearing rule
(:func:`market.clearing.graphon_aggregates`, re-exported here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from market.clearing import graphon_aggregates

__all__ = [
    "distance_violations",
    "graphon_aggregates",
    "graphon_weights",
    "line_distances",
    "load_distance_file",
    "monotonicity_eigenvalue",
    "radial_feeder_distances",
]


def radial_feeder_distances(n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Normalised path impedance between the cluster buses of a random radial feeder.

    Bus 0 is the substation; cluster bus ``q ≥ 1`` hangs off one of the
    previous ``min(q, 4)`` buses (a long, branching feeder), through a line of
    impedance ``U(0.5, 1.5)`` (per unit length). Each cluster sits at its own
    bus; the distance is the path impedance, divided by its maximum so
    ``e ∈ [0, 1]``. Tree metrics are L1-embeddable, so ``exp(−α e)`` is
    positive semi-definite: the graphon is Lasry–Lions monotone (SPEC §4).
    """
    if n_clusters == 1:
        return np.zeros((1, 1))
    n_bus = n_clusters + 1
    parent = np.array([q - 1 - rng.integers(0, min(q, 4)) for q in range(1, n_bus)])
    impedance = rng.uniform(0.5, 1.5, size=n_bus - 1)
    tree = csr_matrix((impedance, (np.arange(1, n_bus), parent)), shape=(n_bus, n_bus))
    dist = shortest_path(tree, directed=False)[1:, 1:]
    return dist / dist.max()


def line_distances(n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Distances ``|x_p − x_q|`` of ``M`` uniform random points on ``[0, 1]``."""
    x = rng.uniform(0.0, 1.0, size=n_clusters)
    return np.abs(x[:, None] - x[None, :])


def load_distance_file(path: Path) -> np.ndarray:
    """Read an ``M×M`` distance matrix from a CSV file (comma-separated, no header)."""
    return np.loadtxt(path, delimiter=",", ndmin=2)


def distance_violations(e: np.ndarray, n_clusters: int) -> list[str]:
    """Rules a distance matrix breaks (empty when valid)."""
    rules = []
    if e.shape != (n_clusters, n_clusters):
        return [
            f"must be {n_clusters}×{n_clusters} (clusters.count), got {e.shape[0]}×{e.shape[1]}"
        ]
    if not np.all(np.isfinite(e)):
        rules.append("must be finite")
    elif np.any(e < 0) or np.any(e > 1):
        rules.append("entries must lie in [0, 1]")
    if not np.allclose(e, e.T, atol=1e-12):
        rules.append("must be symmetric")
    if np.any(np.diag(e) != 0):
        rules.append("diagonal must be zero")
    return rules


def graphon_weights(distances: np.ndarray, alpha: float) -> np.ndarray:
    """Step graphon ``W_pq = exp(−α e_pq)``, eq. (14)."""
    return np.exp(-alpha * distances)


def monotonicity_eigenvalue(weights: np.ndarray, shares: np.ndarray) -> float:
    """Smallest eigenvalue of ``D^½ W D^½`` (``D = diag λ``).

    Non-negative ⇒ the graphon coupling is Lasry–Lions monotone, which with
    increasing price functions gives uniqueness (Theorem 2).
    """
    root = np.sqrt(shares)
    return float(np.linalg.eigvalsh(root[:, None] * weights * root[None, :]).min())
