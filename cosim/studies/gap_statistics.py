"""Statistics of the measured gaps: confidence intervals, ε_N per size, the fitted rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cosim.studies.law_under_test import INFO_LOCAL


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean."""
    x = np.asarray(x, dtype=float)
    mean = float(np.mean(x))
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def summarise_gaps(
    gaps: pd.DataFrame, shares: np.ndarray, info: str = INFO_LOCAL
) -> dict[str, float | str]:
    """ε_N (max over clusters of the mean paired gap) with its CI, ``J^N − J^∞``, price error."""
    per = {p: mean_ci(g["gap"].to_numpy()) for p, g in gaps.groupby("cluster")}
    worst = max(per, key=lambda p: per[p][0])
    bias = gaps.assign(b=gaps["cluster_mean_cost"] - gaps["j_inf"]).pivot(
        index="replication", columns="cluster", values="b"
    )
    bias_mean, bias_lo, bias_hi = mean_ci(bias.to_numpy() @ shares)
    err = gaps.groupby("replication")["price_error"].first().to_numpy()
    err_mean, err_lo, err_hi = mean_ci(err)
    return {
        "info": info,
        "epsilon": per[worst][0],
        "epsilon_lo": per[worst][1],
        "epsilon_hi": per[worst][2],
        "worst_cluster": int(worst),
        "bias": bias_mean,
        "bias_lo": bias_lo,
        "bias_hi": bias_hi,
        "price_error": err_mean,
        "price_error_lo": err_lo,
        "price_error_hi": err_hi,
        "replications": int(gaps["replication"].nunique()),
    }


def fit_rate(
    sizes: np.ndarray, tables: list[pd.DataFrame], boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Slope of ``log ε_N`` against ``log N`` with a bootstrap 95 % CI over replications.

    Sizes whose estimate is not positive cannot enter a log fit and are left out
    (their number is reported).
    """
    rng = np.random.default_rng(seed)

    def eps(table: pd.DataFrame) -> float:
        return float(table.groupby("cluster")["gap"].mean().max())

    keep = [i for i, t in enumerate(tables) if eps(t) > 0]
    out = {"slope": float("nan"), "slope_lo": float("nan"), "slope_hi": float("nan")}
    out["sizes_used"] = len(keep)
    if len(keep) < 2:
        return out
    x = np.log(np.asarray(sizes, dtype=float)[keep])
    out["slope"] = float(np.polyfit(x, np.log([eps(tables[i]) for i in keep]), 1)[0])
    slopes: list[float] = []
    grouped = [dict(tuple(tables[i].groupby("replication"))) for i in keep]
    for _ in range(boot):
        ys = np.array(
            [eps(pd.concat([g[r] for r in rng.choice(list(g), size=len(g))])) for g in grouped]
        )
        if np.all(ys > 0):
            slopes.append(np.polyfit(x, np.log(ys), 1)[0])
    if slopes:
        out["slope_lo"], out["slope_hi"] = (float(v) for v in np.percentile(slopes, [2.5, 97.5]))
    out["bootstrap_valid"] = len(slopes)
    return out
