"""ε-Nash gap of a feedback law in the finite game (SPEC §7, seed 000 Theorem 3).

One household ``i`` of cluster ``p`` deviates; every other household keeps the
law. The others' states never depend on ``i``'s actions, so their aggregate is
a random process that ``i`` cannot influence except through its own term in the
price. Both information sets give ε_N as a bracket [lower, upper]:

- **local** (own state and time, the class of the GMFG law): the bracket of
  :mod:`cosim.studies.bracket` — lower, the fine-grid price taker's gain
  evaluated exactly in the others; upper, the relaxation of the own price term;
- **full** (own state plus the cluster's last cleared aggregate): lower, the
  larger gain of two feasible deviations (:func:`best_deviation`) — the local
  bracket's deviation, which simply ignores the aggregate (every local policy
  is a full-information one), evaluated exactly on the build samples; and an
  approximate dynamic program over (SoE, binned aggregate) that re-optimises
  the home battery (:func:`ess_best_response_full`), built on ``build``
  replications, its paired gain measured on fresh ones, each simulated twice —
  the law, then the same seed with ``i`` deviating — by the co-simulation
  engine (common random numbers); upper, the price-clairvoyant relaxation of
  :mod:`cosim.studies.clairvoyant`.

See ``docs/epsilon.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim.studies.bracket import bracket_epsilon, prepare_bracket
from cosim.studies.clairvoyant import clairvoyant_upper
from cosim.studies.deviation import DeviationSimulation, FineTables
from cosim.studies.full_information import (
    FULL_BINS,
    FullInformationTables,
    ess_best_response_full,
)
from cosim.studies.gap_statistics import (
    Precision,
    best_deviation,
    cluster_means,
    finite_game_errors,
    fit_rate,
    max_mean_ci,
    mean_ci,
    rate_text,
)
from cosim.studies.joint_deviation import JointDeviation, joint_policy
from cosim.studies.law_under_test import INFO_FULL, INFO_LOCAL, LawUnderTest
from cosim.studies.montecarlo import engine_seed


def _run(
    law: LawUnderTest,
    households: np.ndarray,
    seed: int,
    deviator: int | None = None,
    deviation: np.ndarray | None = None,
    watch: np.ndarray | None = None,
    full: tuple[np.ndarray, np.ndarray] | None = None,
    joint: JointDeviation | None = None,
    fine: FineTables | None = None,
) -> DeviationSimulation:
    sim = DeviationSimulation(
        law.game,
        law.feedback_law(),
        law.mode,
        households,
        seed=seed,
        deviator=deviator,
        deviation=deviation,
        joint=joint,
        watch=watch,
        full=full,
        fine=fine,
    )
    sim.run()
    return sim


#: The bracket's width aim: ``upper ≤ 2·lower + WIDTH_AIM_ABSOLUTE`` [$ per household-day].
WIDTH_AIM_ABSOLUTE = 1e-5


def deviators(households: np.ndarray) -> np.ndarray:
    """The deviating household of each cluster: its first one."""
    return np.concatenate([[0], np.cumsum(households)[:-1]]).astype(np.int64)


# --------------------------------------------------------------------------- replications


@dataclass(frozen=True)
class SampleOthers:
    """Replication of the build phase: the law's run, seen from each cluster's deviator.

    Rows per (cluster ``p``, step ``k``): the realised cluster means ``m_q``
    of every cluster [kW], the deviator's total exchange, its ESS part and its
    base load − PV [kWh], whether it owns an EV, the realised grid price; and
    of the replication: the cluster's mean daily cost, the law's mean-field
    cost ``j_inf`` and the mean |realised − mean-field| stage price.
    """

    law: LawUnderTest
    households: np.ndarray

    def __call__(self, replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
        watch = deviators(self.households)
        sim = _run(self.law, self.households, engine_seed(seq), watch=watch)
        m = sim.rec.m  # (K, M)
        cost = sim.rec.bills[0] + sim.rec.private[0]
        cluster_mean = np.bincount(sim.population.cluster, cost) / self.households
        price_error = float(np.mean(np.abs(sim.rec.stage - self.law.stage_price.T)))
        total = np.array(sim.watch_total)  # (K, M)
        ess = np.array(sim.watch_ess)
        exo = np.array(sim.watch_exo)
        k_steps, n_clusters = m.shape
        rows = {
            "cluster": np.repeat(np.arange(n_clusters), k_steps),
            "step": np.tile(np.arange(k_steps), n_clusters),
            "own_kwh": total.T.ravel(),
            "own_ess_kwh": ess.T.ravel(),
            "own_exo_kwh": exo.T.ravel(),
            "has_ev": np.repeat(sim.population.has_ev[watch].astype(bool), k_steps),
            "p_grid": np.tile(sim.rec.grid_price, n_clusters),
            "cluster_mean_cost": np.repeat(cluster_mean, k_steps),
            "j_inf": np.repeat(self.law.cost, k_steps),
            "price_error": price_error,
        }
        for q in range(n_clusters):
            rows[f"m_{q}"] = np.tile(m[:, q], n_clusters)
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class MeasureGap:
    """Replication of the evaluation phase: the law's run and one deviation run per cluster."""

    law: LawUnderTest
    households: np.ndarray
    deviations: list[JointDeviation] | np.ndarray | FullInformationTables | FineTables
    """Per cluster: the joint policies (local), ESS tables ``(M, K, S)``, full-information
    tables, or the fine-grid price taker's tables (:mod:`cosim.studies.price_taker`)."""

    def __call__(self, replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
        seed = engine_seed(seq)
        who = deviators(self.households)
        base = _run(self.law, self.households, seed)
        cost = base.rec.bills[0] + base.rec.private[0]
        cluster = base.population.cluster
        cluster_mean = np.bincount(cluster, cost) / self.households
        price_error = float(np.mean(np.abs(base.rec.stage - self.law.stage_price.T)))
        rows = []
        for p, i in enumerate(who):
            if isinstance(self.deviations, FullInformationTables):
                full = (self.deviations.tables[p], self.deviations.edges[p])
                dev = _run(self.law, self.households, seed, deviator=int(i), full=full)
            elif isinstance(self.deviations, FineTables):
                dev = _run(self.law, self.households, seed, deviator=int(i), fine=self.deviations)
            elif isinstance(self.deviations, list):
                dev = _run(
                    self.law, self.households, seed, deviator=int(i), joint=self.deviations[p]
                )
            else:
                dev = _run(
                    self.law, self.households, seed, deviator=int(i), deviation=self.deviations[p]
                )
            j_dev = float(dev.rec.bills[0, i] + dev.rec.private[0, i])
            rows.append(
                {
                    "cluster": p,
                    "j_law": float(cost[i]),
                    "j_dev": j_dev,
                    "gap": float(cost[i]) - j_dev,
                    "has_ev": bool(base.population.has_ev[i]),
                    "cluster_mean_cost": float(cluster_mean[p]),
                    "j_inf": float(self.law.cost[p]),
                    "price_error": price_error,
                }
            )
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the DP


def joint_best_response(
    law: LawUnderTest, samples: pd.DataFrame, households: np.ndarray
) -> list[JointDeviation]:
    """The deviators' joint best responses, local information, one per cluster.

    For each cluster and each deviator type (owns an EV or not), the exact DP
    of :func:`cosim.studies.joint_deviation.joint_policy` on the build samples of that
    cluster in which the deviator had that type — the others' aggregate
    depends on it (one EV fewer among them) — or on all of the cluster's
    samples when fewer than two match.

    Parameters
    ----------
    law
        The law the others play.
    samples
        Rows of :class:`SampleOthers` from the build replications.
    households
        ``N_p`` per cluster.
    """
    out = []
    for p in range(law.game.n_clusters):
        rows = samples[samples["cluster"] == p]
        typed = {}
        for has_ev in (True, False):
            match = rows[rows["has_ev"] == has_ev]
            use = match if match["replication"].nunique() >= 2 else rows
            typed[has_ev] = joint_policy(
                law.game, law.mode, law.policy, p, use, int(households[p]), has_ev
            )
        out.append(JointDeviation(p, typed[True], typed[False]))
    return out


# --------------------------------------------------------------------------- the estimator


@dataclass(frozen=True)
class EpsilonEstimate:
    """ε_N of one population size: the paired gaps per replication and their summary."""

    households: np.ndarray
    gaps: pd.DataFrame
    """Local: the bracket per cluster (:attr:`cosim.studies.bracket.Bracket.per_cluster`).
    Full: per (replication, cluster), ``j_law``, ``j_dev``, ``gap``, cluster mean cost,
    ``j_inf``, with the cluster's bracket repeated: ``lower`` (``lower_lo``, ``lower_hi``,
    ``lower_se``, ``lower_from``), the two deviations' gains ``local_lower`` and
    ``dp_gain`` (with ``_se``), ``upper`` (``upper_lo``, ``upper_hi``, ``upper_se``)."""
    summary: dict[str, float | str]
    """ε_N (the lower bound, ``epsilon``) and ``upper``, each with its CI simultaneous over
    clusters, the width and its aim, ``J^N − J^∞``, the price error; full information also
    ``lower_from`` (the deviation attaining the lower bound) and ``dp_gain``."""
    deviations: FullInformationTables | None
    """Full information: the deviators' ESS tables; local: ``None``."""


class StudyMismatchError(ValueError):
    """A work directory holds the replications of another study (resuming would mix them)."""


def _describe(stamp: dict) -> str:
    """A study's identity in a few words: mode, law, households, seed, game hash."""
    return (
        f"{stamp.get('mode')} {stamp.get('law')} law, households {stamp.get('households')}, "
        f"seed {stamp.get('seed')}, game {str(stamp.get('game'))[:12]}"
    )


def _claim(directory, law: LawUnderTest, households: np.ndarray, seed: int) -> None:
    """Tie ``directory`` to one study, so resuming never mixes replications of another.

    Raises
    ------
    StudyMismatchError
        When ``directory`` already holds replications of a different game, mode,
        law, size or seed, or its ``study.json`` is damaged (then nothing tells
        which study its replications belong to).
    """
    import json

    from cosim.io.cache import game_hash
    from models.checksums import (
        DamagedFileError,
        read_checked,
        read_json,
        verify_sidecar,
        write_sidecar,
        write_text_checked,
    )

    stamp = {
        "game": game_hash(law.game),
        "mode": str(law.mode),
        "law": law.label,
        "households": [int(n) for n in households],
        "seed": int(seed),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "study.json"
    if path.exists():
        try:
            checked = verify_sidecar(path)
            found = read_checked(path, read_json)
        except DamagedFileError as err:
            raise StudyMismatchError(
                f"{err}; nothing tells which study the replications beside it belong to: "
                "give another --work directory"
            ) from err
        if found != stamp:
            raise StudyMismatchError(
                f"{directory}: holds the replications of another study ({_describe(found)}); "
                f"this one is {_describe(stamp)}: give another --work directory"
            )
        if not checked:  # an earlier version's stamp: its checksum is recorded from now on
            write_sidecar(path)
        return
    write_text_checked(path, json.dumps(stamp))


def estimate_epsilon_nash(
    law: LawUnderTest,
    households: int | np.ndarray,
    replications: int,
    seed: int,
    directory,
    build_replications: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    dask_processes: bool = True,
    info: str = INFO_LOCAL,
    precision: Precision | None = None,
) -> EpsilonEstimate:
    """ε_N of ``law`` at ``households`` per cluster for the information set ``info``.

    **Local** (own state and time): the bracket [lower, upper] of
    :func:`cosim.studies.bracket.bracket_epsilon` on ``replications`` runs of
    the finite game (children of ``SeedSequence([seed, 1])``, in
    ``directory/evaluate``), more added in batches of ``replications`` until
    ``precision`` is met; ``summary["epsilon"]`` is the lower bound,
    ``summary["upper"]`` the upper. **Full** (own state plus the last cleared
    aggregate): the approximate ESS DP built on ``build`` replications
    (children of ``SeedSequence([seed, 0])``, ``directory/samples``), its paired
    gain measured on ``replications`` fresh ones
    (``directory/measure-buildB-full``): the lower bound; the upper bound is
    :func:`cosim.studies.clairvoyant.clairvoyant_upper` on the build
    replications (``summary["upper"]``, per cluster in ``gaps``). Both phases run through
    :func:`cosim.studies.montecarlo.run_replications` and resume from their
    directories (a directory belongs to one law, scenario and size).
    """
    from pathlib import Path

    from cosim.studies.montecarlo import run_replications

    m = law.game.n_clusters
    hh = np.broadcast_to(np.asarray(households, dtype=np.int64), (m,)).copy()
    directory = Path(directory)
    _claim(directory, law, hh, seed)
    build = build_replications if build_replications is not None else replications
    root = np.random.SeedSequence(seed)
    build_seed, measure_seed = (int(c.generate_state(1, np.uint32)[0]) for c in root.spawn(2))

    def replicate(fn, count: int, child_seed: int, name: str, what: str) -> pd.DataFrame:
        return run_replications(
            fn,
            count,
            child_seed,
            directory / name,
            workers=workers,
            scheduler=scheduler,
            progress=progress,
            description=f"N/cluster={hh[0]} {what}",
            dask_processes=dask_processes,
        ).table

    def sample(count: int, child_seed: int, name: str) -> pd.DataFrame:
        return replicate(SampleOthers(law, hh), count, child_seed, name, "samples")

    if info == INFO_LOCAL:
        return _bracketed(law, hh, replications, measure_seed, sample, precision)
    if info != INFO_FULL:
        raise ValueError(f"information set {info!r}: expected 'local' or 'full'")
    samples = sample(build, build_seed, "samples")
    tables = ess_best_response_full(law, samples, hh)
    measure = MeasureGap(law, hh, tables)
    gaps = replicate(measure, replications, measure_seed, f"measure-build{build}-full", "measure")
    return _full_bracket(law, hh, samples, gaps, measure_seed, tables)


#: Names of the full-information lower bound's deviations (``lower_from``).
FULL_DEVIATIONS = ("local price taker", "aggregate DP")


def _full_bracket(
    law: LawUnderTest, hh: np.ndarray, samples: pd.DataFrame, gaps: pd.DataFrame, seed: int,
    tables: FullInformationTables,
) -> EpsilonEstimate:  # fmt: skip
    """Full information: the larger of the two deviations' gains (lower) and the
    price-clairvoyant relaxation (upper), per cluster and for the max over clusters."""
    local = bracket_epsilon(law, hh, samples, seed, upper=False).per_cluster
    paired = cluster_means(gaps).reset_index()
    lower = best_deviation(
        {
            FULL_DEVIATIONS[0]: local.assign(mean=local["lower"], se=local["lower_se"], dof=np.inf),
            FULL_DEVIATIONS[1]: paired.assign(dof=gaps.groupby("cluster").size().to_numpy() - 1),
        }
    )
    upper = clairvoyant_upper(law, hh, samples, seed)
    per = lower.merge(upper[["cluster", "upper", "upper_se", "upper_lo", "upper_hi"]])
    per = per.assign(
        local_lower=local["lower"], local_lower_se=local["lower_se"],
        dp_gain=paired["mean"], dp_gain_se=paired["se"],
    )  # fmt: skip
    dp, dp_lo, dp_hi, _ = max_mean_ci(gaps)
    worst = int(per["lower"].idxmax())
    top = float(per["upper"].max())
    summary: dict[str, float | str] = {
        "info": INFO_FULL,
        "epsilon": float(per["lower"].max()),
        "epsilon_lo": float(per["lower_lo"].max()),
        "epsilon_hi": float(per["lower_hi"].max()),
        "lower_from": str(per["lower_from"][worst]),
        "dp_gain": dp,
        "dp_gain_lo": dp_lo,
        "dp_gain_hi": dp_hi,
        "upper": top,
        "upper_lo": float(per["upper_lo"].max()),
        "upper_hi": float(per["upper_hi"].max()),
        "worst_cluster": worst,
        **finite_game_errors(gaps, law.game.clusters.shares),
        "replications": int(gaps["replication"].nunique()),
    }
    summary["width"] = top - float(summary["epsilon"])
    summary["aim_met"] = bool(top <= 2.0 * float(summary["epsilon"]) + WIDTH_AIM_ABSOLUTE)
    return EpsilonEstimate(hh, gaps.merge(per, on="cluster"), summary, tables)


def _bracketed(
    law: LawUnderTest,
    households: np.ndarray,
    replications: int,
    seed: int,
    sample,
    precision: Precision | None,
) -> EpsilonEstimate:
    """Local information: the bracket of :mod:`cosim.studies.bracket` on the finite game's
    samples, replications added in batches of ``replications`` until ``precision`` is met."""
    count = replications
    setup = prepare_bracket(law, households, seed)
    stopped = "fixed"
    samples = sample(count, seed, "evaluate")
    while precision is not None:  # the lower bound alone decides: no dynamic program
        s = bracket_epsilon(law, households, samples, seed, setup=setup, upper=False).summary
        if precision.met(s["lower"], s["lower_lo"], s["lower_hi"]):
            stopped = "precise"
            break
        if count + replications > precision.max_replications:
            stopped = "max_replications"
            break
        count += replications
        samples = sample(count, seed, "evaluate")
    bracket = bracket_epsilon(law, households, samples, seed, setup=setup)
    s = bracket.summary
    worst = int(bracket.per_cluster["lower"].idxmax())
    summary: dict[str, float | str] = {
        "info": INFO_LOCAL,
        "epsilon": s["lower"],
        "epsilon_lo": s["lower_lo"],
        "epsilon_hi": s["lower_hi"],
        "upper": s["upper"],
        "upper_lo": s["upper_lo"],
        "upper_hi": s["upper_hi"],
        "width": s["width"],
        "aim_met": bool(s["upper"] <= 2.0 * s["lower"] + WIDTH_AIM_ABSOLUTE),
        "worst_cluster": worst,
        **finite_game_errors(samples, law.game.clusters.shares),
        "replications": count,
        "stopped": stopped,
    }
    return EpsilonEstimate(households, bracket.per_cluster, summary, None)


# --------------------------------------------------------------------------- summaries


__all__ = [
    "FULL_BINS",
    "INFO_FULL",
    "INFO_LOCAL",
    "DeviationSimulation",
    "EpsilonEstimate",
    "FullInformationTables",
    "LawUnderTest",
    "MeasureGap",
    "SampleOthers",
    "StudyMismatchError",
    "cluster_means",
    "ess_best_response_full",
    "estimate_epsilon_nash",
    "fit_rate",
    "joint_best_response",
    "max_mean_ci",
    "mean_ci",
    "rate_text",
]
