"""Counter-based random streams of the HEMS kernels."""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import stats

from cosim.sim.hems import household_key, key_normal, key_uniform


@njit
def _draws(n: int, slot: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        out[i] = key_normal(household_key(11, i, 3), slot)
    return out


def test_ziggurat_normals_are_standard_normal():
    z = _draws(1_000_000, 0)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 5e-3 and abs(z.var() - 1.0) < 5e-3
    # the tail layer beyond 3.44 σ is drawn with its exact frequency
    tail = np.mean(np.abs(z) > 3.5)
    expected = 2 * stats.norm.sf(3.5)
    assert abs(tail - expected) < 4 * np.sqrt(expected / len(z))


def test_streams_are_independent_and_keys_distinct():
    z1, z2 = _draws(200_000, 0), _draws(200_000, 1)
    assert abs(np.corrcoef(z1, z2)[0, 1]) < 4 / np.sqrt(len(z1))
    u = np.array([key_uniform(np.uint64(household_key(11, i, 3)), 3) for i in range(20_000)])
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    keys = {household_key(11, i, s) for i in range(50) for s in range(50)}
    assert len(keys) == 2500
    assert household_key(11, 0, 3) != household_key(12, 0, 3)
