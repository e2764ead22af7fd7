"""Statistics of ε_N on synthetic gaps: they can fail, and they do where they should.

The noise is of the measured size (docs/results.md, ``eps_convergence``, 16
replications, 4 clusters): a paired gap's standard deviation per replication
about 1e-3 $ at N = 80, shrinking like ``N^−1/2`` to about 1e-4 $ at N = 8000.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cosim.studies.gap_statistics import (
    best_deviation,
    cluster_means,
    fit_rate,
    fit_rate_points,
    max_mean_ci,
    mean_ci,
)

SIZES = np.array([8, 80, 800, 8000])
REPS, CLUSTERS = 16, 4


def synthetic(rng: np.random.Generator, mean: np.ndarray, sigma: float) -> pd.DataFrame:
    """One size's paired gaps: ``mean`` per cluster plus Gaussian noise per replication."""
    gaps = mean[None, :] + sigma * rng.standard_normal((REPS, len(mean)))
    return pd.DataFrame(
        {
            "replication": np.repeat(np.arange(REPS), len(mean)),
            "cluster": np.tile(np.arange(len(mean)), REPS),
            "gap": gaps.ravel(),
        }
    )


def measured_noise(n: np.ndarray) -> np.ndarray:
    return 1e-3 * (n / 80.0) ** -0.5


def old_slope_ci(sizes: np.ndarray, tables: list[pd.DataFrame], boot: int = 400) -> np.ndarray:
    """The earlier procedure: log–log slope over sizes with ε > 0, bootstrap kept if all ε > 0."""
    rng = np.random.default_rng(0)
    means = [
        t.pivot(index="replication", columns="cluster", values="gap").to_numpy() for t in tables
    ]
    keep = [i for i, m in enumerate(means) if m.mean(axis=0).max() > 0]
    x = np.log(sizes[keep])
    slopes = []
    for _ in range(boot):
        ys = np.array([means[i][rng.integers(0, REPS, REPS)].mean(axis=0).max() for i in keep])
        if np.all(ys > 0):
            slopes.append(np.polyfit(x, np.log(ys), 1)[0])
    return np.percentile(slopes, [2.5, 97.5])


def test_no_rate_is_identified_when_every_gap_is_zero():
    """True ε = 0 at every size: the old fit found a decay in the noise; this one declares none."""
    rng = np.random.default_rng(2026)
    tables = [synthetic(rng, np.zeros(CLUSTERS), s) for s in measured_noise(SIZES)]
    # the earlier procedure reports a decay with a CI that excludes 0: the test bites
    assert old_slope_ci(SIZES, tables)[1] < 0.0
    rate = fit_rate(SIZES, tables)
    assert not rate["identified"], rate
    assert rate["reason"]
    assert np.isnan(rate["slope"]) and np.isnan(rate["slope_lo"]) and np.isnan(rate["slope_hi"])
    assert rate["sizes_used"] == len(SIZES)


def test_no_rate_from_a_gap_seen_only_at_the_smallest_size():
    """The measured pattern: a gap at N = 8, none after. One resolved size is not a rate."""
    rng = np.random.default_rng(7)
    first = np.array([0.0, 0.0, 3.7e-3, 0.0])
    tables = [synthetic(rng, first, float(measured_noise(SIZES[:1])[0]))]
    tables += [synthetic(rng, np.zeros(CLUSTERS), s) for s in measured_noise(SIZES[1:])]
    rate = fit_rate(SIZES, tables)
    assert not rate["identified"], rate


def test_a_one_over_n_gap_is_fitted_with_its_rate():
    """True ε = 0.01·N^−1 (cluster constants 1, 0.5, 0.2, 0 of it) and small noise."""
    rng = np.random.default_rng(3)
    constants = 0.01 * np.array([1.0, 0.5, 0.2, 0.0])
    tables = [synthetic(rng, constants / n, 1e-5) for n in SIZES]
    rate = fit_rate(SIZES, tables)
    assert rate["identified"], rate
    assert rate["slope_lo"] <= -1.0 <= rate["slope_hi"]
    assert rate["slope_hi"] < 0.0
    assert abs(rate["constant"] - 0.01) < 0.05 * 0.01  # its CI is at the fitted rate, r fixed
    # a negative estimate at a size counts like any other: nothing is dropped
    assert rate["points"] == len(SIZES) * CLUSTERS


def test_the_simultaneous_ci_covers_the_max_and_the_argmax_interval_does_not():
    """400 studies with every true gap 0: the CI of the max covers 0 at ≥ its level; the
    argmax cluster's own t-interval, biased up by the selection, covers it less often."""
    rng = np.random.default_rng(11)
    simultaneous = argmax = 0
    studies = 400
    for _ in range(studies):
        gaps = synthetic(rng, np.zeros(CLUSTERS), 1e-3)
        _, lo, hi, worst = max_mean_ci(gaps)
        simultaneous += lo <= 0.0 <= hi
        _, wlo, whi = mean_ci(gaps.loc[gaps["cluster"] == worst, "gap"].to_numpy())
        argmax += wlo <= 0.0 <= whi
    assert simultaneous / studies >= 0.93
    assert argmax / studies < simultaneous / studies - 0.03


def test_cluster_table_and_max_agree():
    rng = np.random.default_rng(5)
    gaps = synthetic(rng, np.array([0.0, 2e-3, 1e-3, 0.0]), 1e-3)
    per = cluster_means(gaps)
    eps, lo, hi, worst = max_mean_ci(gaps)
    assert list(per.columns) == ["mean", "se", "lo", "hi"]
    assert eps == per["mean"].max() and worst == per["mean"].idxmax()
    assert lo == per["lo"].max() and hi == per["hi"].max()
    # each cluster's interval is wider than its own 95 % t-interval (level 1 − 0.05/M)
    _, tlo, thi = mean_ci(gaps.loc[gaps["cluster"] == worst, "gap"].to_numpy())
    assert per.loc[worst, "lo"] < tlo and per.loc[worst, "hi"] > thi


def _bound_points(floors, constants, rate, rng, se=2e-6):
    sizes = np.array([8, 80, 800, 8000, 80000])
    rows = [
        {"cluster": p, "households": n, "mean": f + c * n**-rate + rng.normal(0.0, se), "se": se}
        for p, (f, c) in enumerate(zip(floors, constants, strict=True))
        for n in sizes
    ]
    return pd.DataFrame(rows)


def test_a_bound_with_a_limit_is_fitted_with_its_rate_and_limit():
    """``F_p + C_p·N^−r``: the free limit and the rate are recovered, and the profile CI of
    the rate covers the truth about as often as it says (95 %)."""
    fits = [
        fit_rate_points(
            _bound_points([3e-5, 1e-5], [0.1, 0.05], 1.0, np.random.default_rng(seed)),
            free_floor=True,
        )
        for seed in range(100)
    ]
    assert all(f["identified"] for f in fits)
    coverage = np.mean([f["slope_lo"] <= -1.0 <= f["slope_hi"] for f in fits])
    assert 0.88 <= coverage <= 1.0, coverage
    assert all(abs(f["floor_fitted"] - 3e-5) < 5e-6 for f in fits)
    # subtracting a wrong limit (the smaller one for both clusters) misses the rate
    points = _bound_points([3e-5, 1e-5], [0.1, 0.05], 1.0, np.random.default_rng(0))
    wrong = fit_rate_points(points.assign(mean=points["mean"] - 1e-5))
    assert not (wrong["identified"] and wrong["slope_lo"] <= -1.0 <= wrong["slope_hi"])


def test_no_rate_when_a_bound_is_constant_in_n():
    """A limit and nothing that decays: the free-floor fit says so rather than a rate."""
    rng = np.random.default_rng(4)
    fit = fit_rate_points(_bound_points([3e-5, 1e-5], [0.0, 0.0], 1.0, rng), free_floor=True)
    assert not fit["identified"]
    assert fit["reason"] == "the estimates are consistent with a constant per cluster at every size"


def test_no_limit_is_fitted_for_a_cluster_seen_at_two_sizes():
    """Clusters that exist at some sizes only (the M-growing study): no limit per cluster can
    be fitted, and the fit says so instead of failing."""
    points = _bound_points([3e-5, 1e-5], [0.1, 0.05], 1.0, np.random.default_rng(5))
    points = points[(points["cluster"] == 0) | (points["households"] <= 80)]
    fit = fit_rate_points(points, free_floor=True)
    assert not fit["identified"] and "fewer than three sizes" in fit["reason"]


def test_the_best_deviation_takes_the_larger_gain_with_intervals_over_both():
    """Per cluster the larger mean wins; each interval is Bonferroni over clusters × deviations,
    so it is wider than either deviation's interval over clusters alone."""
    a = pd.DataFrame({"cluster": [0, 1], "mean": [1.0, 0.2], "se": [0.1, 0.1], "dof": np.inf})
    b = pd.DataFrame({"cluster": [0, 1], "mean": [0.5, 0.6], "se": [0.2, 0.3], "dof": [9, 9]})
    best = best_deviation({"a": a, "b": b}).set_index("cluster")
    assert best["lower"].tolist() == [1.0, 0.6]
    assert best["lower_from"].tolist() == ["a", "b"]
    assert best["lower_se"].tolist() == [0.1, 0.3]
    z4 = stats.norm.ppf(1 - 0.05 / 8)  # 2 clusters × 2 deviations
    assert np.isclose(best.loc[0, "lower_lo"], 1.0 - z4 * 0.1)
    t4 = stats.t.ppf(1 - 0.05 / 8, 9)
    assert np.isclose(best.loc[1, "lower_hi"], 0.6 + t4 * 0.3)
    # cluster 1's lower end is the better of the two lower ends, not the winner's
    assert np.isclose(best.loc[1, "lower_lo"], max(0.2 - z4 * 0.1, 0.6 - t4 * 0.3))
