"""The figure of an ε_N study: ε_N against N on log–log axes, with the fitted rate."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cosim.studies.epsilon import INFO_FULL, INFO_LOCAL, rate_text
from cosim.studies.epsilon_study import study_label

__all__ = ["plot_study"]

#: The deviation class of each information set, in the figure's legend.
DEVIATION_CLASS = {
    INFO_LOCAL: "lower bound",
    INFO_FULL: "lower bound: best of price taker and aggregate DP",
}


def plot_study(
    table: pd.DataFrame,
    rate: dict[str, Any],
    law: str,
    path: Path,
    info: str = INFO_LOCAL,
) -> None:
    """Log–log ε_N with 95 % CIs simultaneous over clusters, and the fitted rate (or the
    reason it is not identified); ``|J^N − J^∞|`` and the price error.

    The title names the study (:func:`study_label`); in the M-growing study
    every point is labelled with its ``M``.
    """
    n = table["households"].to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    eps = table["epsilon"].to_numpy()
    lo, hi = table["epsilon_lo"].to_numpy(), table["epsilon_hi"].to_numpy()
    shown = eps > 0
    bottom = float(np.min(eps[shown])) / 30.0 if shown.any() else 1e-9
    ax.errorbar(
        n[shown],
        eps[shown],
        yerr=[eps[shown] - np.maximum(lo[shown], bottom), hi[shown] - eps[shown]],
        fmt="o",
        capsize=3,
        label=textwrap.fill(
            f"ε_N ({info} information, {DEVIATION_CLASS[info]}), simultaneous 95 % CI"
            + ("; bars to the axis: CI contains 0" if np.any(lo[shown] <= 0) else ""),
            50,
        ),
    )
    for x, h in zip(n[~shown], hi[~shown], strict=True):
        ax.plot([x], [max(h, 1e-9)], "v", color="C0", alpha=0.6)
    _plot_upper(ax, table, rate, n, bottom)
    if rate.get("identified", False):
        ax.plot(
            n,
            _fitted_curve(rate, n),
            "--",
            color="C1",
            label=f"fit {rate_text(rate, 2)}, all sizes",
        )
    else:
        ax.plot([], [], " ", label=textwrap.fill(rate_text(rate), 50))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom)
    ax.set_xlabel("households N")
    ax.set_ylabel("ε_N [$ per household-day]")
    if table["clusters"].nunique() > 1:
        for x, y, m in zip(n, np.maximum(eps, bottom), table["clusters"], strict=True):
            ax.annotate(f"M={m}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_title(f"ε-Nash gap of the {law} law\n{study_label(table)}", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[1]
    error = table["price_error"].to_numpy()
    ax.errorbar(
        n,
        error,
        yerr=np.array(
            [
                error - table["price_error_lo"].to_numpy(),
                table["price_error_hi"].to_numpy() - error,
            ]
        ),
        fmt="s-",
        capsize=3,
        label="mean |π^N − π^∞| [$/kWh]",
    )
    ax.plot(n, np.abs(table["bias"].to_numpy()), "o-", label="|J^N − J^∞| [$]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("households N")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_upper(
    ax, table: pd.DataFrame, rate: dict[str, Any], n: np.ndarray, bottom: float
) -> None:
    """The bracket's upper bound with its interval, and ε_∞."""
    if "upper" not in table:
        return
    up = table["upper"].to_numpy()
    up_lo, up_hi = table["upper_lo"].to_numpy(), table["upper_hi"].to_numpy()
    ax.errorbar(
        n * 1.08,
        up,
        yerr=[up - np.maximum(up_lo, bottom), up_hi - up],
        fmt="s",
        color="C2",
        capsize=3,
        label="upper bound, simultaneous 95 % CI",
    )
    fitted = rate.get("upper", {})
    if isinstance(fitted, dict) and fitted.get("identified", False):
        label = f"upper: fit F + C·{rate_text(fitted, 2)}"
        ax.plot(n, _fitted_curve(fitted, n), "--", color="C2", label=label)
    if "floor" in rate:
        ax.axhline(float(rate["floor"]), color="0.5", lw=0.8, ls=":", label="ε_∞")


def _fitted_curve(rate: dict[str, Any], n: np.ndarray) -> np.ndarray:
    """The fitted ``max_p (F_p + C_p·N^−r)``, or ``C·N^−r`` when no limit was fitted."""
    slope = float(rate["slope"])
    if "floors" not in rate:
        return float(rate["constant"]) * n**slope
    curves = [f + c * n**slope for f, c in zip(rate["floors"], rate["constants"], strict=True)]
    return np.max(curves, axis=0)
