"""An upper bound on ε_N for full information: the price-clairvoyant relaxation (SPEC §7).

With full information the deviator also sees its cluster's realised aggregate,
so it can forecast prices from the others' fluctuations; the local bracket's
upper bound (:mod:`cosim.studies.bracket`) does not cover that class. Relax the
information further: let the deviator know, before the day starts, the whole
path of the others' cluster means ``m^{−i}_{s,·}`` of replication ``s`` (and its
own base load − PV). Every full-information policy is a policy of the relaxed
class — the realised aggregate is a function of the others' path and of the
deviator's own exchange — so the relaxed optimum is a lower bound on the best
deviation's cost (an information relaxation without penalty, Brown, Smith &
Sun, Operations Research 2010).

In sample ``s`` the relaxed problem is a single household's problem with known
per-step bill functions ``Φ_{s,k}(c)``; bound it as the local bracket does, per
sample: ``Φ_{s,k}(c) ≥ E0_{s,k} + q^s_k c + a_{s,k}`` with ``q^s_k = π_p(k;
m^{−i}_{s,k}) + b_k`` (``b`` the tangent of the own-price cost at the law's
mean exchange) and ``a_{s,k} = min_c [Φ_{s,k}(c) − E0_{s,k} − q^s_k c]``. Then

    upper = E_s [ X_law(q^s) + Σ_k (Φ_{s,k}(c^law_k) − E0_{s,k} − q^s_k c^law_k − a_{s,k}) ],

``X_law(q^s)`` the law's exploitability at the prices of sample ``s``: the
value of knowing the day's prices in advance. It is evaluated as
``X_law(q̄) + [X⁴(q^s) − X⁴(q̄)]``: the local bracket's margin-carrying figure
at the mean prices plus the sample's excess on a chain 4× finer than the law's
(:data:`CLAIRVOYANT_REFINE`; a difference of two values on one chain, whose
own error largely cancels).

Valid, but loose where prices are noisy: a clairvoyant knows every
fluctuation, a real deviator only the last aggregate. Its excess over the
local bound shrinks with the price noise, as ``N^−1/2``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cosim.studies.bracket import BRACKET_COPIES, deviation_prices, exploitability_bound
from cosim.studies.deviator import (
    CHUNK,
    OnGrid,
    OthersSamples,
    bill_tables,
    exchange_grid,
    others_samples,
    own_paths,
    own_zero_prices,
    owner_weight,
    subset,
    typed_game,
)
from cosim.studies.law_under_test import LawUnderTest
from market.pricing import Mode
from models.exploitability import CONTINUOUS_REFINE, applied_law, refined_game
from models.game import Game
from models.response import best_response, population_flow

__all__ = ["CLAIRVOYANT_REFINE", "CLAIRVOYANT_SAMPLES", "clairvoyant_upper"]

#: How many times finer than the law's grid the per-sample exploitability is evaluated.
CLAIRVOYANT_REFINE = 4
#: Most samples per cluster and deviator type the relaxation is solved on (one
#: price taker's dynamic program each).
CLAIRVOYANT_SAMPLES = 64


def _sample_exploitability(
    law: LawUnderTest, q: np.ndarray, has_ev: bool, at_mean: np.ndarray
) -> np.ndarray:
    """``X_law(q̄) + X⁴(q^s) − X⁴(q̄)`` for prices ``q`` ``(S, M, K)``, ``(S, M)`` [$].

    ``at_mean`` is ``X_law(q̄)`` with the chains' margin (``(M,)``); the law's
    flow is priced linearly, so only the best response is solved per sample.
    """
    game = law.game
    fine = typed_game(refined_game(game, CLAIRVOYANT_REFINE), has_ev)
    flow = population_flow(fine, applied_law(game, fine, law.policy))

    def excess(prices: np.ndarray) -> np.ndarray:
        _, optimal = best_response(fine, np.ascontiguousarray(prices))
        return flow.cost(prices, fine.dt_h) - optimal

    base = excess(q.mean(axis=0))
    return np.stack([at_mean + excess(q_s) - base for q_s in q])


def _own_terms(
    game: Game, mode: Mode, p: int, households: int, others: OthersSamples,
    c_law: np.ndarray, b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per sample: the law's own-price cost above sample ``s``'s minorant, ``(S,)``, and per
    copy its mean over samples, ``(n,)`` [$]."""
    zero = own_zero_prices(game, mode, p, others)
    x = exchange_grid(game)
    on_law = OnGrid.locate(x, c_law)
    h_law = on_law.histogram()
    s_count = others.m.shape[0]
    bill_rows, floor_rows = np.empty(s_count), np.empty(s_count)
    phi_sum = np.zeros((game.steps, len(x)))
    for lo in range(0, s_count, CHUNK):
        at = slice(lo, min(lo + CHUNK, s_count))
        phi = bill_tables(game, mode, p, households, subset(others, at), x)
        q = zero[at] + b  # (s, K)
        floor = phi - (others.exo[at] * zero[at])[..., None] - q[..., None] * x
        bill_rows[at] = np.einsum("skx,kx->s", phi, h_law)
        floor_rows[at] = floor.min(axis=2).sum(axis=1)
        phi_sum += phi.sum(axis=0)
    linear = (others.exo * zero).sum(axis=1)
    q = zero + b
    rows = bill_rows - linear - q @ c_law.mean(axis=0) - floor_rows
    cols = (
        on_law.values(phi_sum / s_count)
        - linear.mean()
        - c_law @ q.mean(axis=0)
        - floor_rows.mean()
    )
    return rows, cols


def clairvoyant_upper(
    law: LawUnderTest,
    households: np.ndarray,
    samples: pd.DataFrame,
    seed: int,
    copies: int = BRACKET_COPIES,
    level: float = 0.95,
) -> pd.DataFrame:
    """Upper bound on the full-information ε_N per cluster (see the module's docstring).

    Parameters
    ----------
    law, households, samples, seed, copies
        As for :func:`cosim.studies.bracket.bracket_epsilon`: the law, ``N_p``
        per cluster, rows of :class:`~cosim.studies.epsilon.SampleOthers`, the
        seed of the law's own paths and their number per cluster.
    level
        Coverage of the intervals, simultaneous over clusters (Bonferroni).

    Returns
    -------
    pandas.DataFrame
        Per cluster: ``upper`` with ``upper_lo``, ``upper_hi`` and ``upper_se``,
        ``samples`` (per deviator type).
    """
    game, mode = law.game, law.mode
    m_count = game.n_clusters
    hh = np.asarray(households, dtype=np.int64)
    fine, finer = refined_game(game, CONTINUOUS_REFINE), refined_game(game, 2 * CONTINUOUS_REFINE)
    law_fine = applied_law(game, fine, law.policy)
    copy_seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])
    paths = own_paths(game, law.feedback_law(), mode, copies, copy_seed)
    owners = np.array([owner_weight(game, int(hh[p]), p) for p in range(m_count)])
    mean, var = np.zeros(m_count), np.zeros(m_count)
    used = CLAIRVOYANT_SAMPLES
    for has_ev in (True, False):
        weights = owners if has_ev else 1.0 - owners
        if not np.any(weights > 0):
            continue
        others = [others_samples(game, samples, p, int(hh[p]), has_ev) for p in range(m_count)]
        used = min(used, *(o.m.shape[0] for o in others))
        others = [subset(o, slice(0, used)) for o in others]
        _, b = deviation_prices(law, fine, law_fine, hh, has_ev)
        q = np.stack([own_zero_prices(game, mode, p, o) + b[p] for p, o in enumerate(others)], 1)
        at_mean = exploitability_bound(
            law, q.mean(axis=0), has_ev, (typed_game(fine, has_ev), typed_game(finer, has_ev))
        )
        exploit = _sample_exploitability(law, q, has_ev, at_mean)  # (S, M)
        for p in range(m_count):
            mine = (paths.cluster == p) & (paths.has_ev == has_ev)
            rows, cols = _own_terms(
                game, mode, p, int(hh[p]), others[p], paths.controlled[mine], b[p]
            )
            rows = rows + exploit[:, p]
            mean[p] += weights[p] * rows.mean()
            var[p] += weights[p] ** 2 * (
                np.var(rows, ddof=1) / len(rows) + np.var(cols, ddof=1) / len(cols)
            )
    z = float(stats.norm.ppf(1.0 - (1.0 - level) / (2 * m_count)))
    se = np.sqrt(var)
    return pd.DataFrame(
        {
            "cluster": np.arange(m_count),
            "upper": mean,
            "upper_lo": mean - z * se,
            "upper_hi": mean + z * se,
            "upper_se": se,
            "samples": used,
        }
    )
