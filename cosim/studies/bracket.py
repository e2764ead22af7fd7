"""ε_N of the local information class as a bracket [lower, upper] (SPEC §7).

Household ``i`` of cluster ``p`` deviates, every other household plays the law
on its own state. With local information (own device states and time — the
law's class) two facts make the deviator's problem exact to evaluate:

* the others never react to ``i``, so their cluster means ``m^{−i}_k`` are a
  random process independent of everything ``i`` does or sees;
* ``i``'s own randomness (SoE noise, trips, PV and load noise, the shiftable
  draws) is keyed to ``i`` alone, so its controlled exchange ``c_k`` (every
  device but base load − PV) is independent of ``m^{−i}_k`` and of its own
  base load − PV ``x_k``.

So any local policy ``u`` costs ``J(u) = Σ_k E F_k(c_k) + private(u)`` with
``F_k(c) = E[(x_k + c)·π_p(m^{−i}_k + (x_k + c)/(N_p Δt))]`` — the bill as a
function of the controlled exchange, averaged over the others' samples and the
deviator's own base load − PV at step ``k`` (the same expectation as
:func:`cosim.studies.joint_deviation.exchange_cost`). Only the per-step
marginal of the others matters.

**Upper bound** (a lower bound on the best deviation's cost). Prices are
non-decreasing in the cluster's aggregate, so the deviator's own term only
raises its bill: ``F_k(c) ≥ E0_k + q_k c + a_k`` for any price ``q_k`` with
``a_k = min_c [F_k(c) − E0_k − q_k c]``, ``E0_k = E[x_k π_p(m^{−i}_k)]``. The
right side is linear in ``c``, so the devices decouple and
``min_u J(u) ≥ V(q) + Σ_k (E0_k + a_k)``: ``V(q)`` is the price taker's optimal
cost at the deterministic prices ``q`` (:func:`models.response.best_response`,
base load − PV left out). The law's cost minus that bound is

    upper = X_law(q) + E Σ_k [F_k(c^law_k) − E0_k − q_k c^law_k − a_k],

``X_law(q)`` the law's exploitability at the prices ``q`` in the continuous
game (:func:`models.exploitability.continuous_exploitability` on chains 8× and
16× finer than the law's grid, the larger plus their difference: the chain's
own error is a few per cent) and the second
term — the law's own-price cost above its linear minorant, ``≥ 0`` per path —
measured on the law's own continuous paths. Valid whatever ``q``; it is tight
when ``q`` is the tangent of the own-price cost at the deviator's mean
exchange: ``q_k = π̄_k + b_k`` with ``π̄_k = E π_p(m^{−i}_k)`` and ``b_k`` the
slope of ``F_k(c) − E0_k − π̄_k c`` at the law's mean ``c``.
What it cannot see is the own-price cost of the spread of ``c`` around its mean
(``≈ π'·Var(c_k)/(N_p Δt)``): the bracket's width is O(1/N).

**Lower bound** (a feasible deviation). The price taker's best response at
``q`` on SoE grids ``2·``:data:`~models.exploitability.CONTINUOUS_REFINE` times finer
than the law's (8× is not enough: applied at continuous state, the 8× policy
gained 7.7e-5 $ on a 41-point test game where the 16× and 32× ones gained
1.21e-4 and 1.22e-4) — every device, the own price term inside linearised at the
mean exchange — applied at the deviator's continuous state. Its gain
``J(law) − J(dev)`` is evaluated exactly in the others (``F_k`` from fresh
samples) and by Monte Carlo in the deviator's own paths: ``copies`` independent
households per cluster simulated by the co-simulation engine under the law and
under the deviation with common random numbers — paired, continuous state, the
HEMS's own dynamics.

**Statistics.** The deviation is built without the samples (from the law's
mean exchanges, :func:`deviation_prices`), so its gain, evaluated on them, is
unbiased, and any deviation's gain is a lower bound. Both bounds are averages
over (sample, copy) pairs; their variance is taken as
``var(row means)/S + var(column means)/n`` (the interaction counted twice:
conservative; a two-way bootstrap gave the same widths), and the intervals are
normal at level ``1 − α/M`` per cluster (Bonferroni), so the interval of the
maximum over clusters, ``[max lo_p, max hi_p]``, holds with probability
``≥ 1 − α``. Estimating ``a_k`` (a minimum) and ``X_law`` (convex in ``q``)
from samples biases the upper bound up: conservative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cosim.studies.deviator import (
    CHUNK,
    OnGrid,
    OthersSamples,
    OwnPaths,
    bill_tables,
    exchange_grid,
    others_samples,
    own_paths,
    own_zero_prices,
    owner_weight,
    subset,
    typed_game,
)
from cosim.studies.joint_deviation import cluster_stage_price
from cosim.studies.law_under_test import LawUnderTest
from market.pricing import Mode
from models.exploitability import (
    CONTINUOUS_REFINE,
    applied_law,
    continuous_exploitability,
    refined_game,
)
from models.feedback import FeedbackLaw
from models.game import Game
from models.response import Policy, best_response, population_flow

__all__ = [
    "BRACKET_COPIES",
    "Bracket",
    "BracketSetup",
    "bracket_epsilon",
    "deviation_prices",
    "exploitability_bound",
    "prepare_bracket",
]

#: Independent deviator copies per cluster in the Monte Carlo of its own paths.
BRACKET_COPIES = 4000


# --------------------------------------------------------------------------- the bracket


@dataclass(frozen=True)
class _Estimate:
    """One cluster and deviator type: the two bounds and their variances."""

    lower: float
    lower_var: float
    upper: float
    upper_var: float
    exploitability: float
    samples: int
    copies: int


def _typed_estimate(
    game: Game, mode: Mode, p: int, households: int, others: OthersSamples,
    paths: tuple[OwnPaths, OwnPaths, np.ndarray], b: np.ndarray,
    law_terms: tuple[float, np.ndarray] | None,
) -> _Estimate:  # fmt: skip
    """Both bounds of one cluster and deviator type, with crossed-design variances.

    Every term is an average over (sample ``s``, copy ``i``) pairs; its variance
    is bounded by ``var_s(row means)/S + var_i(column means)/n``, which counts
    the interaction twice (conservative). ``a_k``, a minimum over the exchange
    grid, varies with the samples through its minimiser only (envelope theorem).
    ``law_terms`` ``None``: the lower bound only (the upper one NaN).
    """
    law_paths, dev_paths, mine = paths
    c_law = law_paths.controlled[mine]
    private_gain = law_paths.private[mine] - dev_paths.private[mine]
    s_count = others.m.shape[0]
    zero = own_zero_prices(game, mode, p, others)  # (S, K)
    x = exchange_grid(game)
    on_law, on_dev = OnGrid.locate(x, c_law), OnGrid.locate(x, dev_paths.controlled[mine])
    h_law, h_dev = on_law.histogram(), on_dev.histogram()
    bill_rows, gain_rows = np.empty(s_count), np.empty(s_count)
    phi_sum, grid_sum = np.zeros((game.steps, len(x))), np.zeros((game.steps, len(x)))
    for lo in range(0, s_count, CHUNK):
        rows = slice(lo, min(lo + CHUNK, s_count))
        phi = bill_tables(game, mode, p, households, subset(others, rows), x)
        bill_rows[rows] = np.einsum("skx,kx->s", phi, h_law)
        gain_rows[rows] = bill_rows[rows] - np.einsum("skx,kx->s", phi, h_dev)
        phi_sum += phi.sum(axis=0)
        if law_terms is not None:  # the upper bound's minorant
            grid_sum += (phi - (others.exo[rows, :, None] + x) * zero[rows, :, None]).sum(axis=0)
    law_cols = on_law.values(phi_sum / s_count)
    gain_cols = law_cols - on_dev.values(phi_sum / s_count)
    linear = (others.exo * zero).sum(axis=1)  # Σ_k x_s π^0_s
    c_bar = c_law.mean(axis=0)
    own_rows = bill_rows - linear - zero @ c_bar - b @ c_bar
    own_cols = law_cols - linear.mean() - c_law @ (zero.mean(axis=0) + b)

    def crossed(row: np.ndarray, col: np.ndarray) -> float:
        return float(np.var(row, ddof=1) / s_count + np.var(col, ddof=1) / len(col))

    upper, upper_var, exploit = np.nan, np.nan, np.nan
    if law_terms is not None:
        exploit, sensitivity = law_terms
        minorant = grid_sum / s_count - b[:, None] * x
        at = np.argmin(minorant, axis=1)  # the minimiser of each step
        phi_at = np.stack(
            [bill_tables(game, mode, p, households, others, x[at[k] : at[k] + 1])[:, k, 0]
             for k in range(game.steps)], axis=1,
        )  # fmt: skip
        floor_rows = (phi_at - (others.exo + x[at]) * zero - b * x[at]).sum(axis=1)
        shift_rows = (zero - zero.mean(axis=0)) @ sensitivity
        upper_rows = own_rows - floor_rows + shift_rows
        upper, upper_var = float(upper_rows.mean() + exploit), crossed(upper_rows, own_cols)

    return _Estimate(
        lower=float(gain_rows.mean() + private_gain.mean()),
        lower_var=crossed(gain_rows, gain_cols + private_gain),
        upper=upper,
        upper_var=upper_var,
        exploitability=exploit,
        samples=s_count,
        copies=len(c_law),
    )


@dataclass(frozen=True)
class Bracket:
    """ε_N of the local class bracketed, per cluster and for the max over clusters."""

    per_cluster: pd.DataFrame
    """Per cluster: ``lower`` with ``lower_lo``, ``lower_hi``; ``upper`` with ``upper_lo``,
    ``upper_hi`` (simultaneous intervals); ``exploitability`` (``X_law(q)``, owner-weighted),
    ``owner_weight``, ``samples`` (fewest of a type), ``copies``."""
    summary: dict[str, float]
    """``lower``, ``lower_lo``, ``lower_hi``, ``upper``, ``upper_lo``, ``upper_hi`` of the
    max over clusters (``[max lo_p, max hi_p]``) and ``width`` = ``upper − lower``."""


def _controlled(game: Game, policy: Policy) -> np.ndarray:
    """Mean controlled exchange per step under ``policy``, ``(M, K)`` [kWh]."""
    flow = population_flow(game, policy)
    return game.dt_h * (flow.net_kw - flow.exogenous_kw)


def exploitability_bound(
    law: LawUnderTest, q: np.ndarray, has_ev: bool, grids: tuple[Game, Game]
) -> np.ndarray:
    """``X_law(q)`` with a margin for the fine chain's own error, per cluster [$].

    The law's exploitability is measured on two chains, ``refine`` and
    ``2·refine`` times finer than the law's grid; the bound is the larger plus
    their difference. (On a 41-point test game the chain's figure moves by
    about 5 % between 8×, 16× and 32×, and a 16×-grid deviation gains
    1.22e-4 $ in the continuous game where the 32× chain says 1.15e-4: the
    chain alone is not a bound.)
    """
    typed = typed_game(law.game, has_ev)
    x = [continuous_exploitability(typed, q, law.policy, fine=g) for g in grids]
    return np.maximum(x[0], x[1]) + np.abs(x[0] - x[1])


def deviation_prices(
    law: LawUnderTest, fine: Game, law_fine: Policy, households: np.ndarray, has_ev: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The prices ``q = π(E m^{−i}) + b`` the deviation answers, and the tangents ``b``.

    Deterministic, from the law's mean exchanges by type on the fine grids:
    ``E m^{−i}`` counts the deviator's type out of its cluster's owners, and
    ``b_k`` is the slope at the law's mean controlled exchange of the own
    price cost ``(x̄ + c)·(π(m̄ + (x̄ + c)/(N_p Δt)) − π(m̄))``, ``x̄`` the mean base
    load − PV. Only the deviation depends on them, and any deviation's gain
    is a lower bound, so approximating ``E π(m)`` by ``π(E m)`` costs nothing
    in validity; the upper bound recomputes ``q`` from the samples.
    """
    game, mode, dt = law.game, law.mode, law.game.dt_h
    net = {t: population_flow(typed_game(fine, t), law_fine).net_kw for t in (True, False)}
    counts = np.round(game.clusters.ev_share * households)
    mean_c = _controlled(typed_game(fine, has_ev), law_fine)
    exo = game.dt_h * game.exogenous_kw
    x = exchange_grid(game)
    q = np.empty_like(mean_c)
    b = np.empty_like(mean_c)
    for p in range(game.n_clusters):
        owners = counts.astype(float)
        others = households.astype(float)
        owners[p] -= float(has_ev)
        others[p] -= 1.0
        others = np.maximum(others, 0.0)
        owners = np.clip(owners, 0.0, others)
        m_bar = owners[:, None] * net[True] + (others - owners)[:, None] * net[False]
        m_bar /= households[:, None]
        for k in range(game.steps):
            total = exo[p, k] + x
            shifted = np.broadcast_to(m_bar[:, k], (len(x), game.n_clusters)).copy()
            shifted[:, p] += total / (households[p] * dt)
            at_zero = float(cluster_stage_price(game, mode, k, p, m_bar[:, k]))
            own = total * (cluster_stage_price(game, mode, k, p, shifted) - at_zero)
            b[p, k] = np.interp(mean_c[p, k], x, np.gradient(own, x[1] - x[0]))
            q[p, k] = at_zero + b[p, k]
    return q, b


@dataclass(frozen=True)
class BracketSetup:
    """What the bracket needs that no sample of the others changes: the grids, the law's
    and the deviations' own paths (computed once, reused as samples are added)."""

    fine: Game
    finer: Game
    law_fine: Policy
    law_paths: OwnPaths
    owners: np.ndarray
    """Probability that each cluster's deviator owns an EV, ``(M,)``."""
    deviations: dict[bool, tuple[np.ndarray, OwnPaths]]
    """Per deviator type (owns an EV): the tangents ``b`` ``(M, K)`` and the deviation's paths."""


def prepare_bracket(
    law: LawUnderTest,
    households: np.ndarray,
    seed: int,
    copies: int = BRACKET_COPIES,
    refine: int = CONTINUOUS_REFINE,
) -> BracketSetup:
    """The sample-free part of :func:`bracket_epsilon` (same parameters)."""
    game, mode = law.game, law.mode
    hh = np.asarray(households, dtype=np.int64)
    fine = refined_game(game, refine)
    finer = refined_game(game, 2 * refine)
    law_fine = applied_law(game, fine, law.policy)
    copy_seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])
    law_paths = own_paths(game, law.feedback_law(), mode, copies, copy_seed)
    owners = np.array([owner_weight(game, int(hh[p]), p) for p in range(game.n_clusters)])
    deviations = {}
    for has_ev in (True, False):
        weights = owners if has_ev else 1.0 - owners
        if not np.any(weights > 0):
            continue
        q_dev, b = deviation_prices(law, fine, law_fine, hh, has_ev)
        deviation, _ = best_response(typed_game(finer, has_ev), q_dev)
        dev_law = FeedbackLaw.from_policy(finer, deviation)
        deviations[has_ev] = (b, own_paths(finer, dev_law, mode, copies, copy_seed))
    return BracketSetup(fine, finer, law_fine, law_paths, owners, deviations)


def bracket_epsilon(
    law: LawUnderTest,
    households: np.ndarray,
    samples: pd.DataFrame,
    seed: int,
    copies: int = BRACKET_COPIES,
    refine: int = CONTINUOUS_REFINE,
    level: float = 0.95,
    setup: BracketSetup | None = None,
    upper: bool = True,
) -> Bracket:
    """ε_N of ``law`` for local information, bracketed (see the module's docstring).

    Parameters
    ----------
    law
        The law every other household plays.
    households
        ``N_p`` per cluster.
    samples
        Rows of :class:`~cosim.studies.epsilon.SampleOthers` from replications of
        the finite game: the others' per-step marginal the bounds are evaluated on.
    seed
        Seeds the deviator copies' paths (the law's and the deviation's share it).
    copies
        Deviator copies per cluster in the Monte Carlo of its own paths.
    refine
        The law's exploitability is measured on chains ``refine`` and
        ``2·refine`` times finer than its grid; the deviation lives on the latter.
    level
        Coverage of the interval of the maximum over clusters.
    setup
        :func:`prepare_bracket` of the same ``law``, ``households``, ``seed``,
        ``copies`` and ``refine``, when already computed (samples being added).
    upper
        ``False``: the lower bound only (its columns; the upper ones NaN) — no
        dynamic program is solved, as while samples are being added.
    """
    game, mode = law.game, law.mode
    hh = np.asarray(households, dtype=np.int64)
    if setup is None:
        setup = prepare_bracket(law, hh, seed, copies, refine)
    parts: dict[int, list[tuple[float, _Estimate]]] = {p: [] for p in range(game.n_clusters)}
    for has_ev, (b, dev_paths) in setup.deviations.items():
        weights = setup.owners if has_ev else 1.0 - setup.owners
        others = [others_samples(game, samples, p, int(n), has_ev) for p, n in enumerate(hh)]
        pbar = [own_zero_prices(game, mode, p, o).mean(axis=0) for p, o in enumerate(others)]
        terms = _law_terms(law, setup, np.array(pbar) + b, has_ev) if upper else None
        law_paths = setup.law_paths
        for p in map(int, np.flatnonzero(weights > 0)):
            mine = (law_paths.cluster == p) & (law_paths.has_ev == has_ev)
            estimate = _typed_estimate(
                game, mode, p, int(hh[p]), others[p], (law_paths, dev_paths, mine), b[p],
                None if terms is None else (float(terms[0][p]), terms[1][p]),
            )  # fmt: skip
            parts[p].append((float(weights[p]), estimate))
    frame = _per_cluster(parts, setup.owners, level)
    summary = {
        key: float(frame[key].max())
        for key in ("lower", "lower_lo", "lower_hi", "upper", "upper_lo", "upper_hi")
    }
    summary["width"] = summary["upper"] - summary["lower"]
    return Bracket(frame, summary)


def _law_terms(
    law: LawUnderTest, setup: BracketSetup, q_eval: np.ndarray, has_ev: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The upper bound's terms at prices ``q_eval``: ``X_law(q)`` with its margin ``(M,)``,
    and how the price taker's mean exchange differs from the law's ``(M, K)``."""
    typed_fine = typed_game(setup.fine, has_ev)
    best_eval, _ = best_response(typed_fine, q_eval)
    exploit = exploitability_bound(
        law, q_eval, has_ev, (typed_fine, typed_game(setup.finer, has_ev))
    )
    sensitivity = _controlled(typed_fine, setup.law_fine) - _controlled(typed_fine, best_eval)
    return exploit, sensitivity


def _per_cluster(
    parts: dict[int, list[tuple[float, _Estimate]]], owners: np.ndarray, level: float
) -> pd.DataFrame:
    """Both bounds per cluster, the types mixed, with intervals simultaneous over clusters."""
    m_count = len(parts)
    z = float(stats.norm.ppf(1.0 - (1.0 - level) / (2 * m_count)))
    rows = []
    for p in range(m_count):
        lower = sum(w * e.lower for w, e in parts[p])
        upper = sum(w * e.upper for w, e in parts[p])
        lower_se = np.sqrt(sum(w * w * e.lower_var for w, e in parts[p]))
        upper_se = np.sqrt(sum(w * w * e.upper_var for w, e in parts[p]))
        rows.append(
            {
                "cluster": p,
                "lower": lower,
                "lower_lo": lower - z * lower_se,
                "lower_hi": lower + z * lower_se,
                "upper": upper,
                "upper_lo": upper - z * upper_se,
                "upper_hi": upper + z * upper_se,
                "lower_se": lower_se,
                "upper_se": upper_se,
                "exploitability": sum(w * e.exploitability for w, e in parts[p]),
                "owner_weight": float(owners[p]),
                "samples": min(e.samples for _, e in parts[p]),
                "copies": sum(e.copies for _, e in parts[p]),
            }
        )
    return pd.DataFrame(rows)
