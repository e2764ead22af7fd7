"""Statistics of the measured gaps: confidence intervals, ε_N per size, the fitted rate.

``ε_N`` is a maximum over clusters of mean paired gaps, so its CI is
simultaneous over the clusters (:func:`max_mean_ci`), and its rate in ``N`` is
fitted on every size's per-cluster means, negatives included
(:func:`fit_rate`): no size and no resample is ever left out for being
non-positive, and the fit says plainly when the data do not identify a rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Range of the decay exponent ``r`` searched by :func:`fit_rate` (``ε ∝ N^−r``).
RATE_RANGE = (-2.0, 4.0)
#: Widest 95 % CI of ``r`` still reported as an identified rate.
RATE_MAX_WIDTH = 3.0


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean."""
    x = np.asarray(x, dtype=float)
    mean = float(np.mean(x))
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def cluster_means(gaps: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per cluster: mean paired gap, its standard error and its simultaneous CI.

    Parameters
    ----------
    gaps
        One row per (replication, cluster) with a ``gap`` column.
    level
        Joint coverage of the ``M`` intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by cluster: ``mean``, ``se`` (``s/√R``), ``lo`` and ``hi``, the
        Student-t interval at level ``1 − (1 − level)/M`` (Bonferroni), so that
        all ``M`` intervals hold together with probability at least ``level``.
    """
    g = gaps.groupby("cluster")["gap"]
    out = pd.DataFrame({"mean": g.mean(), "n": g.size()})
    out["se"] = g.std(ddof=1) / np.sqrt(out["n"])
    alpha = (1.0 - level) / len(out)
    dof = np.maximum(out["n"].to_numpy() - 1, 1)
    half = stats.t.ppf(1.0 - alpha / 2, dof) * out["se"]
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    return out.drop(columns="n")


def max_mean_ci(gaps: pd.DataFrame, level: float = 0.95) -> tuple[float, float, float, int]:
    """``max_p`` of the clusters' mean gaps with a CI valid for that maximum.

    The CI is ``[max_p lo_p, max_p hi_p]`` over the Bonferroni intervals of
    :func:`cluster_means`: when every ``μ_p ∈ [lo_p, hi_p]`` (probability ≥
    ``level``), ``max_p μ_p`` lies in it too. Bonferroni rather than a
    bootstrap of the maximum: it needs no assumption on how the clusters'
    gaps co-vary (they share each replication's prices), it is exact at the
    ``R = 16`` replications a study affords, where a bootstrap of a maximum
    of near-tied means is known to under-cover, and it is deterministic, so a
    resumed study reproduces its summary bit for bit. It is conservative by at
    most ``(M − 1)·α`` in coverage. The argmax cluster's own t-interval is not
    a CI for the maximum: it ignores the selection and is biased up when the
    clusters' gaps are close (tested).

    Returns
    -------
    tuple
        Point estimate (the largest mean), lower and upper end, and the cluster
        with the largest mean.
    """
    per = cluster_means(gaps, level)
    worst = per["mean"].idxmax()
    return float(per["mean"].max()), float(per["lo"].max()), float(per["hi"].max()), int(worst)


def best_deviation(candidates: dict[str, pd.DataFrame], level: float = 0.95) -> pd.DataFrame:
    """Per cluster, the largest mean gain among several feasible deviations.

    Every feasible deviation's gain is a lower bound on the cluster's ε, so
    their largest is one too. Each candidate's per-cluster interval is taken
    at level ``1 − (1 − level)/(M·D)`` (Bonferroni over ``M`` clusters and
    ``D`` candidates); when all hold, ``max_d μ_{p,d}`` lies in
    ``[max_d lo_{p,d}, max_d hi_{p,d}]`` for every ``p``, and so does the
    maximum over clusters (as in :func:`max_mean_ci`).

    Parameters
    ----------
    candidates
        Per deviation, a frame with columns ``cluster``, ``mean``, ``se`` and
        ``dof`` (degrees of freedom of its Student-t interval; ``inf``: normal).
    level
        Joint coverage of all the intervals.

    Returns
    -------
    pandas.DataFrame
        Per cluster: ``lower`` (the largest mean), ``lower_lo``, ``lower_hi``,
        ``lower_se`` (the chosen candidate's) and ``lower_from`` (its name).
    """
    frames = [f.assign(name=name) for name, f in candidates.items()]
    table = pd.concat(frames, ignore_index=True)
    alpha = (1.0 - level) / len(table)
    half = stats.t.ppf(1.0 - alpha / 2, table["dof"].to_numpy()) * table["se"]
    table = table.assign(lo=table["mean"] - half, hi=table["mean"] + half)
    rows = []
    for p, group in table.groupby("cluster"):
        best = group.loc[group["mean"].idxmax()]
        rows.append(
            {
                "cluster": int(p),
                "lower": float(best["mean"]),
                "lower_lo": float(group["lo"].max()),
                "lower_hi": float(group["hi"].max()),
                "lower_se": float(best["se"]),
                "lower_from": str(best["name"]),
            }
        )
    return pd.DataFrame(rows)


def finite_game_errors(rows: pd.DataFrame, shares: np.ndarray) -> dict[str, float]:
    """``J^N − J^∞`` (share-weighted over clusters) and the price error, with t-intervals.

    ``rows`` carry per (replication, cluster) the cluster's realised mean cost
    ``cluster_mean_cost``, the law's mean-field cost ``j_inf`` and the
    replication's ``price_error`` (repeated rows of one pair are fine).
    """
    per = rows.groupby(["replication", "cluster"]).first().reset_index()
    bias = per.assign(b=per["cluster_mean_cost"] - per["j_inf"]).pivot(
        index="replication", columns="cluster", values="b"
    )
    bias_mean, bias_lo, bias_hi = mean_ci(bias.to_numpy() @ shares)
    err = per.groupby("replication")["price_error"].first().to_numpy()
    err_mean, err_lo, err_hi = mean_ci(err)
    return {
        "bias": bias_mean,
        "bias_lo": bias_lo,
        "bias_hi": bias_hi,
        "price_error": err_mean,
        "price_error_lo": err_lo,
        "price_error_hi": err_hi,
    }


def _profile(
    rates: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, group: np.ndarray,
    free_floor: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Weighted residual sum ``χ²(r)`` minimised over the constants, the constants and floors.

    For a fixed ``r`` the model ``y = C_g·x^−r`` (``+ F_g`` with ``free_floor``)
    is linear in each group's ``C_g`` (and ``F_g``), so they are closed-form
    weighted least squares. Returns ``χ²`` ``(R,)``, ``C`` and ``F`` ``(R, G)``
    (``F`` zero without ``free_floor``).
    """
    basis = x[None, :] ** -rates[:, None]  # (R, points)
    groups = np.unique(group)
    chi2 = np.zeros(len(rates))
    consts = np.zeros((len(rates), len(groups)))
    floors = np.zeros((len(rates), len(groups)))
    for j, g in enumerate(groups):
        on = group == g
        b, yy, ww = basis[:, on], y[on], w[on]
        sbb, sby = (ww * b * b).sum(axis=1), (ww * b * yy).sum(axis=1)
        if not free_floor:
            consts[:, j] = sby / sbb
            chi2 += (ww * yy * yy).sum() - sby * sby / sbb
            continue
        s1, sb, sy = ww.sum(), (ww * b).sum(axis=1), (ww * yy).sum()
        det = np.maximum(s1 * sbb - sb * sb, 1e-300)
        consts[:, j] = (s1 * sby - sb * sy) / det
        floors[:, j] = (sbb * sy - sb * sby) / det
        chi2 += (ww * yy * yy).sum() - consts[:, j] * sby - floors[:, j] * sy
    return chi2, consts, floors


def fit_rate(
    sizes: np.ndarray, tables: list[pd.DataFrame], level: float = 0.95
) -> dict[str, float | bool | str | int]:
    """Rate of ``ε_N ∝ N^−r`` fitted on every size, negative estimates included.

    Every cluster's mean paired gap at every size enters a weighted
    least-squares fit (weights ``1/se²``, ``se = s/√R``) of the model
    ``μ_p(N) = C_p·N^−r``: one constant per cluster, one shared rate, so that
    ``ε_N = max_p μ_p(N) = (max_p C_p)·N^−r``. The fit is on the gaps
    themselves, not their logarithms, so a size whose estimate is ≤ 0 counts
    like any other; and it is on the clusters' means, which are unbiased,
    not on the maximum over clusters, whose upward bias shrinks with the
    noise and would itself read as a decay. The CI for ``r`` is the profile
    likelihood interval ``{r : χ²(r) − χ²_min ≤ χ²_1(level)}`` on ``r ∈``
    :data:`RATE_RANGE` (the constants are closed-form at each ``r``). Clusters
    are weighted as independent within a size (they share the replication's
    prices; the approximation is stated, not corrected). In the M-growing
    study cluster ``p`` of one ``M`` is not cluster ``p`` of another, so the
    shared constants are a further approximation there.

    The rate is *identified* when the fit rejects ``ε ≡ 0`` (the drop in
    ``χ²`` from the zero model exceeds the ``χ²`` quantile with one degree
    per constant and the rate), the largest constant's interval at the
    fitted rate excludes 0, and the profile CI of ``r`` is closed inside
    :data:`RATE_RANGE` and at most :data:`RATE_MAX_WIDTH` wide. Otherwise
    ``identified`` is false, ``reason`` says why and ``slope``, ``slope_lo``,
    ``slope_hi`` are NaN (the unidentified point estimate stays in
    ``fit_slope`` for diagnosis only).

    Parameters
    ----------
    sizes
        Total households ``N`` of each size.
    tables
        Each size's paired gaps, one row per (replication, cluster).
    level
        Coverage of the CI of ``r``.

    Returns
    -------
    dict
        ``slope`` (``−r``), ``slope_lo``, ``slope_hi``; ``identified``,
        ``reason``; ``fit_slope`` (``−r̂`` whatever the verdict),
        ``constant`` (``max_p C_p`` [$]) with ``constant_lo``, ``constant_hi`` (Bonferroni
        over the ``M`` constants, conditional on the fitted rate: the rate's own
        uncertainty is not in it);
        ``sizes_used`` (every size); ``points`` (cluster means fitted).
    """
    rows = [
        cluster_means(t).assign(households=float(n)).reset_index()
        for n, t in zip(np.asarray(sizes), tables, strict=True)
    ]
    points = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return fit_rate_points(points, level)


def fit_rate_points(
    points: pd.DataFrame, level: float = 0.95, free_floor: bool = False
) -> dict[str, Any]:
    """:func:`fit_rate` on given points: columns ``cluster``, ``households``, ``mean``, ``se``.

    For estimates that are not paired gaps — e.g. the bounds of
    :mod:`cosim.studies.bracket` — with their standard errors. ``free_floor``:
    the model is ``μ_p(N) = F_p + C_p·N^−r``, a limit ``F_p`` per cluster fitted
    with the constants (closed-form for each ``r``); the largest is reported as
    ``floor_fitted``, and the rate is identified only when the fit rejects a
    constant per cluster.
    """
    nan = float("nan")
    sizes_used = int(points["households"].nunique()) if len(points) else 0
    out: dict[str, Any] = {
        "slope": nan,
        "slope_lo": nan,
        "slope_hi": nan,
        "fit_slope": nan,
        "constant": nan,
        "constant_lo": nan,
        "constant_hi": nan,
        "identified": False,
        "reason": "",
        "sizes_used": sizes_used,
        "points": len(points),
    }
    if sizes_used < 2 + free_floor:
        out["reason"] = (
            "fewer than three sizes (a limit and a rate)"
            if free_floor
            else ("fewer than two sizes")
        )
        return out
    if not np.all(np.isfinite(points["se"])):
        out["reason"] = "no standard error at some size"
        return out
    if free_floor and points.groupby("cluster")["households"].nunique().min() < 3:
        out["reason"] = "a cluster is seen at fewer than three sizes (a limit and a rate each)"
        return out
    fit = _fit(points, level, free_floor)
    r_lo, r_hi = float(fit.pop("r_lo")), float(fit.pop("r_hi"))
    out.update(fit)
    if not out["reason"]:
        out.update(identified=True, slope=fit["fit_slope"], slope_lo=-r_hi, slope_hi=-r_lo)
    return out


def _fit(points: pd.DataFrame, level: float, free_floor: bool = False) -> dict[str, Any]:
    """The profile fit of :func:`fit_rate` on the clusters' means, and its verdict."""
    x = points["households"].to_numpy()
    y = points["mean"].to_numpy()
    scale = max(float(np.abs(y).max()), float(points["se"].max()), 1e-300)
    se = np.maximum(points["se"].to_numpy(), 1e-9 * scale)  # a gap exactly 0 has se 0
    w = 1.0 / se**2
    group = points["cluster"].to_numpy()
    rates = np.linspace(*RATE_RANGE, 3001)
    chi2 = _profile(rates, x, y, w, group, free_floor)[0]
    inside = rates[chi2 - chi2.min() <= stats.chi2.ppf(level, 1)]
    step = rates[1] - rates[0]
    # the interval again on a grid 1000× finer around it: precise data give narrow ones
    fine = np.linspace(
        max(inside.min() - step, rates[0]), min(inside.max() + step, rates[-1]), 2001
    )
    rates = np.unique(np.concatenate([rates, fine]))
    chi2, consts, floors = _profile(rates, x, y, w, group, free_floor)
    best = int(np.argmin(chi2))
    r_hat, c_hat = float(rates[best]), consts[best]
    top = int(np.argmax(c_hat))
    on = group == np.unique(group)[top]
    b = x[on] ** -r_hat
    s1, sb, sbb = w[on].sum(), (w[on] * b).sum(), (w[on] * b * b).sum()
    det = s1 * sbb - sb * sb  # 0 at r = 0, where the rate term is the limit itself
    c_var = (s1 / det if det > 0.0 else np.inf) if free_floor else 1.0 / sbb
    c_se = float(np.sqrt(c_var))
    z = float(stats.norm.ppf(1.0 - (1.0 - level) / (2 * len(c_hat))))
    inside = rates[chi2 - chi2[best] <= stats.chi2.ppf(level, 1)]
    r_lo, r_hi = float(inside.min()), float(inside.max())
    null = (w * y * y).sum()  # the model without the decaying term: 0, or a floor per cluster
    if free_floor:
        null -= sum((w[group == g] * y[group == g]).sum() ** 2 / w[group == g].sum()
                    for g in np.unique(group))  # fmt: skip
    reason = ""
    if float(null - chi2[best]) <= stats.chi2.ppf(level, len(c_hat) + 1):
        reason = (
            "the estimates are consistent with a constant per cluster at every size"
            if free_floor
            else "the gaps are consistent with ε = 0 at every size"
        )
    elif c_hat[top] - z * c_se <= 0.0:
        reason = "the constant's CI includes 0"
    elif r_lo <= rates[0] or r_hi >= rates[-1]:
        lo, hi = RATE_RANGE
        reason = f"the CI of the rate is unbounded: it reaches an end of r ∈ [{lo:g}, {hi:g}]"
    elif r_hi - r_lo > RATE_MAX_WIDTH:
        reason = f"the CI of the rate is wider than {RATE_MAX_WIDTH}"
    out: dict[str, Any] = {
        "fit_slope": -r_hat,
        "constant": float(c_hat[top]),
        "constant_lo": float(c_hat[top] - z * c_se),
        "constant_hi": float(c_hat[top] + z * c_se),
        "r_lo": r_lo,
        "r_hi": r_hi,
        "reason": reason,
    }
    if free_floor:  # every cluster's curve, for ε_N = max_p (F_p + C_p·N^−r)
        out["floor_fitted"] = float(floors[best].max())
        out["floors"] = floors[best].tolist()
        out["constants"] = c_hat.tolist()
    return out


def rate_text(rate: dict, digits: int = 3) -> str:
    """The fitted rate in words: ``N^s [lo, hi]``, or ``rate not identified (reason)``."""
    if not rate.get("identified", False):
        return f"rate not identified ({rate.get('reason') or 'no fit'})"
    slope, lo, hi = (f"{rate[k]:.{digits}f}" for k in ("slope", "slope_lo", "slope_hi"))
    return f"N^{slope} [{lo}, {hi}]"


@dataclass(frozen=True)
class Precision:
    """When a measurement stops adding replications.

    It stops once the simultaneous interval of the largest cluster mean
    (:func:`max_mean_ci`) has a half-width of at most ``relative`` times the
    estimate's magnitude, or at most ``floor`` [$] — the resolution below
    which a gap is not worth resolving — or when ``max_replications`` have run.
    """

    relative: float = 0.25
    floor: float = 0.0
    max_replications: int = 1024

    def met(self, estimate: float, lo: float, hi: float) -> bool:
        """Whether an interval ``[lo, hi]`` around ``estimate`` is precise enough."""
        return 0.5 * (hi - lo) <= max(self.relative * abs(estimate), self.floor)
