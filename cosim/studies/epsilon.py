"""ε-Nash gap of a feedback law in the finite game (SPEC §7, seed 000 Theorem 3).

One household ``i`` of cluster ``p`` deviates; every other household keeps the
law. Information set **local** (own state and time, the class of the GMFG law):
the others' states never depend on ``i``'s actions, so their aggregate is a
random process that ``i`` cannot influence except through its own term in the
price. ``i``'s best response is then a dynamic program over its own state whose
stage cost averages, over Monte Carlo samples of the others' aggregates at that
step, ``e_i · π_p(others + e_i)`` — nonlinear in ``e_i`` through its own term.

Deviation class: with local information the deviator re-optimises **all its
devices jointly** — an exact DP over (ESS SoE, EV SoE, EV plugged in / away,
shiftable quanta left) with every control at once and the controllable load
inside the stage cost (:mod:`cosim.studies.joint_deviation`); its EV ownership is
part of its state. With full information the DP is approximate and, to stay
small, re-optimises the home battery only (:func:`ess_best_response_full`).
See ``docs/epsilon.md``.

Estimation: the DP is built on ``build`` replications (the law's runs); the
gap is measured on fresh replications, each simulated twice — the law, then
the same seed with ``i`` deviating — by the co-simulation engine itself
(counter-based noise keyed by household and step: common random numbers), so
``J(law) − J(dev)`` per replication is a paired difference of realised
finite-game costs, bills settled at the realised prices with ``i`` counted in
its own cluster's aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cosim.sim import hems
from cosim.sim.engine import CoSimulation
from cosim.sim.hooks import HouseholdLaw, LawRow, Observer
from cosim.studies.joint_deviation import (
    JointDeviation,
    cluster_stage_price,
    joint_policy,
    sampled_grid_price,
)
from cosim.studies.montecarlo import engine_seed
from market.pricing import Mode
from models import kernels
from models.battery import clipped_moves
from models.equilibrium import EquilibriumResult
from models.feedback import FeedbackLaw
from models.game import Game, stage_prices
from models.response import Policy, best_response, population_flow

#: Information sets: own state and time (exact DP) ...
INFO_LOCAL = "local"
#: ... and own state plus the last cleared aggregate of its cluster (approximate DP).
INFO_FULL = "full"
#: Bins of the observed aggregate in the full-information DP.
FULL_BINS = 3
#: Controls of the full-information ESS DP (besides the law's own control at each point).
DEVIATION_CONTROLS = 81


@dataclass(frozen=True)
class LawUnderTest:
    """A feedback law, the game it is played in, and its mean-field numbers."""

    game: Game
    mode: Mode
    policy: Policy
    stage_price: np.ndarray
    """Mean-field stage prices the law induces, ``(M, K)`` [$/kWh]."""
    cost: np.ndarray
    """``J^∞``: the law's expected daily cost per household at those prices, ``(M,)`` [$]."""
    label: str

    @classmethod
    def from_equilibrium(cls, result: EquilibriumResult) -> LawUnderTest:
        """The GMFG law of a solved equilibrium."""
        return cls(
            result.game, result.mode, result.policy, result.prices.stage, result.cost, "gmfg"
        )

    @classmethod
    def flat_price_response(cls, game: Game, mode: Mode | str) -> LawUnderTest:
        """A deliberately non-equilibrium law: the best response to the grid price alone."""
        mode = Mode(mode)
        flat = np.array(np.broadcast_to(game.grid_price, (game.n_clusters, game.steps)))
        policy, _ = best_response(game, flat)
        flow = population_flow(game, policy)
        prices = stage_prices(game, mode, flow.net_kw)
        return cls(game, mode, policy, prices.stage, flow.cost(prices.stage, game.dt_h), "flat")

    def feedback_law(self) -> FeedbackLaw:
        """The lookup tables every HEMS applies."""
        return FeedbackLaw.from_policy(self.game, self.policy)

    def exploitability(self) -> np.ndarray:
        """Mean-field exploitability of the law at its own prices, ``(M,)`` [$].

        Expected daily cost of a household playing the law minus that of an
        exact best response over every device (:func:`models.response.best_response`):
        the limit of ``ε^{local}_N`` for a law that is not an equilibrium.
        """
        return self.cost - best_response(self.game, self.stage_price)[1]

    def ess_exploitability(self) -> np.ndarray:
        """Mean-field gain of re-optimising the ESS alone at the law's prices, ``(M,)`` [$].

        The mean-field counterpart of ``ε^{local, ESS}``: with prices fixed the
        household problem decouples by device, so this is the ESS part of the
        law's exploitability (expected ESS cost under the law minus the ESS
        value function of the best response).
        """
        g = self.game
        flow = population_flow(g, self.policy)
        law_cost = g.dt_h * np.sum(self.stage_price * flow.ess_kw, axis=1) + flow.ess_cost
        m, k = self.stage_price.shape
        s = len(g.ess.soe)
        value, away, control = np.empty((m, k + 1, s)), np.empty((m, k + 1, s)), np.empty((m, k, s))
        kernels.battery_backward(
            np.ascontiguousarray(self.stage_price),
            g.dt_h,
            g.ess.battery,
            g.ess.tables,
            value,
            away,
            control,
        )
        return law_cost - value[:, 0, :] @ g.ess.initial


# --------------------------------------------------------------------------- the engine


class TableDeviation(HouseholdLaw):
    """The deviator's own ESS table ``(K, S)``; its other devices keep its cluster's law."""

    def __init__(self, ess: np.ndarray) -> None:
        self.ess = ess

    def tables(self, sim: CoSimulation, household: int) -> LawRow:
        """The cluster's row with the ESS table replaced."""
        return super().tables(sim, household)._replace(ess=self.ess)


class FullInformationDeviation(TableDeviation):
    """Full information: the deviator's ESS table of each step is picked by the bin of
    its cluster's last cleared aggregate (the others' mean, its own term removed)."""

    def __init__(self, tables: np.ndarray, edges: np.ndarray) -> None:
        super().__init__(np.array(tables[:, 0, :]))
        self.by_bin, self.edges = tables, edges

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """Row ``k`` of the ESS table: the one of the bin the last interval fell in."""
        b = 0
        if k > 0:
            pop, p = sim.population, int(sim.population.cluster[household])
            lo, hi = pop.offsets[p], pop.offsets[p + 1]
            others = sim.interval_energy[lo:hi].sum() - sim.interval_energy[household]
            b = int(np.searchsorted(self.edges[k - 1], others / ((hi - lo) * sim.dt_h), "right"))
        row.ess[k] = self.by_bin[k, b]


class JointDeviationLaw(HouseholdLaw, Observer):
    """Local information, every device: the deviator re-solves its one-step problem at its
    own state each step (:meth:`~cosim.studies.joint_deviation.JointPolicy.act`).

    Also an observer: the engine charges the deviator the discomfort of its
    cluster law's controllable setting; at the end of each day this law books
    the difference to the settings it chose.
    """

    def __init__(self, joint: JointDeviation) -> None:
        self.joint = joint
        self._ctrl_u: list[float] = []

    def tables(self, sim: CoSimulation, household: int) -> LawRow:
        """The cluster's row, the policy of the deviator's type (owns an EV or not)."""
        self._household = household
        self._policy = self.joint.policy(bool(sim.population.has_ev[household]))
        return super().tables(sim, household)

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        """Every control of step ``k``, chosen at the deviator's state."""
        pop, law, i = sim.population, sim.law, household
        p = int(pop.cluster[i])
        u_e, u_v, run, u_c = self._policy.act(
            k,
            float(pop.ess_soe[i]),
            float(pop.ev_soe[i]),
            bool(pop.ev_connected[i]),
            int(pop.shift_left[i]),
            hems.law_control(law.ess[p, k], *law.ess_grid[:2], float(pop.ess_soe[i])),
            hems.law_control(law.ev[p, k], *law.ev_grid[:2], float(pop.ev_soe[i])),
        )
        row.ess[k], row.ev[k], row.shiftable_run[k], row.controllable[k] = u_e, u_v, run, u_c
        self._ctrl_u.append(u_c)

    def day_ended(self, sim: CoSimulation, day: int) -> None:
        """The deviator pays the discomfort of its own settings, not the law's."""
        if not self._ctrl_u:
            return
        i = self._household
        p = int(sim.population.cluster[i])
        own = np.sum(np.square(self._ctrl_u))
        law = np.sum(np.square(sim.law.controllable[p, : len(self._ctrl_u)]))
        cc = sim.game.config.household.controllable
        sim.rec.private[day, i] += cc.discomfort * sim.dt_h * (own - law)
        self._ctrl_u = []


class WatchedEnergies(Observer):
    """Per interval, the watched households' total, ESS and base load − PV energies [kWh]."""

    def __init__(self, households: np.ndarray | None) -> None:
        self.households = np.asarray(households if households is not None else [], dtype=np.int64)
        self.total: list[np.ndarray] = []
        self.ess: list[np.ndarray] = []
        self.exo: list[np.ndarray] = []

    def interval_closed(self, sim: CoSimulation, step: int) -> None:
        """Record the interval's energies of the watched households."""
        self.total.append(sim.interval_energy[self.households].copy())
        self.ess.append(sim.energy[self.households, 1].copy())
        self.exo.append(sim.energy[self.households, 0].copy())


class DeviationSimulation(CoSimulation):
    """The co-simulation with household ``deviator`` playing its own policy.

    Every other household applies ``law``. The deviator has its own
    :class:`~cosim.sim.hooks.HouseholdLaw` — an extra row of the law tables
    the HEMS kernel reads; the aggregators, books and prices still count it in
    its own cluster. Its policy is either ``joint`` (all devices, re-solved at
    its state each step), an ESS table ``deviation`` ``(K, S)``, or ``full``
    (ESS tables per bin of the last cleared aggregate). ``watch`` households
    have their per-step total, ESS and base-load − PV energies recorded.
    """

    def __init__(
        self,
        *args,
        deviator: int | None = None,
        deviation: np.ndarray | None = None,
        joint: JointDeviation | None = None,
        watch: np.ndarray | None = None,
        full: tuple[np.ndarray, np.ndarray] | None = None,
        **kwargs,
    ) -> None:
        self.deviator = deviator
        self.watching = WatchedEnergies(watch)
        observers: list[Observer] = [self.watching]
        own: HouseholdLaw | None = None
        if joint is not None:
            own = JointDeviationLaw(joint)
            observers.append(own)
        elif full is not None:
            own = FullInformationDeviation(*full)
        elif deviation is not None:
            own = TableDeviation(deviation)
        laws = {deviator: own} if deviator is not None and own is not None else {}
        super().__init__(*args, household_laws=laws, observers=observers, **kwargs)

    @property
    def watch(self) -> np.ndarray:
        """The watched households."""
        return self.watching.households

    @property
    def watch_total(self) -> list[np.ndarray]:
        """Per interval, the watched households' total energy [kWh]."""
        return self.watching.total

    @property
    def watch_ess(self) -> list[np.ndarray]:
        """Per interval, the watched households' ESS energy [kWh]."""
        return self.watching.ess

    @property
    def watch_exo(self) -> list[np.ndarray]:
        """Per interval, the watched households' base load − PV energy [kWh]."""
        return self.watching.exo


def _run(
    law: LawUnderTest,
    households: np.ndarray,
    seed: int,
    deviator: int | None = None,
    deviation: np.ndarray | None = None,
    watch: np.ndarray | None = None,
    full: tuple[np.ndarray, np.ndarray] | None = None,
    joint: JointDeviation | None = None,
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
    )
    sim.run()
    return sim


def deviators(households: np.ndarray) -> np.ndarray:
    """The deviating household of each cluster: its first one."""
    return np.concatenate([[0], np.cumsum(households)[:-1]]).astype(np.int64)


# --------------------------------------------------------------------------- replications


@dataclass(frozen=True)
class SampleOthers:
    """Replication of the build phase: the law's run, seen from each cluster's deviator.

    Rows per (cluster ``p``, step ``k``): the realised cluster means ``m_q``
    of every cluster [kW], the deviator's total exchange, its ESS part and its
    base load − PV [kWh], and whether it owns an EV.
    """

    law: LawUnderTest
    households: np.ndarray

    def __call__(self, replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
        watch = deviators(self.households)
        sim = _run(self.law, self.households, engine_seed(seq), watch=watch)
        m = sim.rec.m  # (K, M)
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
        }
        for q in range(n_clusters):
            rows[f"m_{q}"] = np.tile(m[:, q], n_clusters)
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class MeasureGap:
    """Replication of the evaluation phase: the law's run and one deviation run per cluster."""

    law: LawUnderTest
    households: np.ndarray
    deviations: list[JointDeviation] | np.ndarray | FullInformationTables
    """Per cluster: the joint policies (local), ESS tables ``(M, K, S)``, or full-information
    tables."""

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


def _ess_stage(
    law: LawUnderTest, at: pd.DataFrame, p: int, k: int, households: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate ESS controls, their per-sample stage costs and next SoEs at step ``k``.

    Returns ``u`` ``(S, U)`` (clipped to what the bounds allow), the stage cost
    per sample ``(S, U, n)`` — the deviator's bill with its own exchange in the
    price, minus the bill of its other devices alone (a constant of the
    sample), plus degradation — and the SoE after the move ``(S, U)``.
    """
    game, mode = law.game, law.mode
    battery = game.ess.battery
    soe = game.ess.soe
    dt = game.dt_h
    m_count = game.n_clusters
    s = len(soe)
    m = at[[f"m_{q}" for q in range(m_count)]].to_numpy()  # (n, M)
    own = at["own_kwh"].to_numpy()
    rest = own - at["own_ess_kwh"].to_numpy()
    base_u = np.linspace(-1.0, 1.0, DEVIATION_CONTROLS)
    u = np.concatenate(
        [np.broadcast_to(base_u, (s, len(base_u))), law.policy.ess[p, k][:, None]], axis=1
    )
    u, after, power = clipped_moves(battery, soe, u, dt)
    mine = rest[None, None, :] + (power * dt)[..., None]  # deviator's exchange, (S, U, n)
    shifted = np.broadcast_to(m, (*mine.shape, m_count)).copy()
    shifted[..., p] += (mine - own[None, None, :]) / (households[p] * dt)
    p_g = sampled_grid_price(game, k, at)
    bill = mine * cluster_stage_price(game, mode, k, p, shifted, p_g)
    rest_bill = rest * cluster_stage_price(game, mode, k, p, m, p_g)
    stage = bill - rest_bill[None, None, :] + (battery.degradation * u**2 * dt)[..., None]
    return u, stage, after


def _after_noise(law: LawUnderTest, value: np.ndarray) -> np.ndarray:
    grid = law.game.ess
    out = np.zeros(len(grid.soe))
    kernels._apply_rows(grid.noise_idx, grid.noise_w, np.ascontiguousarray(value), out)
    return out


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


@dataclass(frozen=True)
class FullInformationTables:
    """The deviators' ESS tables indexed by the bin of the last cleared aggregate."""

    tables: np.ndarray
    """``u(p, k, bin, SoE grid point)``, ``(M, K, B, S)``."""
    edges: np.ndarray
    """Bin edges of the others' cluster mean at each step [kW], ``(M, K, B−1)``."""


def ess_best_response_full(
    law: LawUnderTest, samples: pd.DataFrame, households: np.ndarray, bins: int = FULL_BINS
) -> FullInformationTables:
    """The deviators' ESS tables, full information: an *approximate* DP.

    The deviator also sees its cluster's last cleared aggregate (the others'
    mean ``x(k−1)`` of the previous interval, its own term removed). State:
    (SoE, bin of ``x(k−1)``), bins at the per-step sample terciles. The
    expectation at step ``k`` given bin ``b`` averages over the build samples
    whose ``x(k−1)`` fell in ``b``, and the continuation uses each sample's own
    next bin: the aggregate's dynamics are the empirical transitions of the
    samples, treated as Markov in the binned signal (the approximation).
    """
    game = law.game
    soe = game.ess.soe
    m_count, k_steps, s = law.policy.ess.shape
    tables = np.empty((m_count, k_steps, bins, s))
    edges = np.empty((m_count, k_steps, bins - 1))
    dt = game.dt_h
    for p in range(m_count):
        rows = samples[samples["cluster"] == p].sort_values(["step", "replication"], kind="stable")
        per_k = [rows[rows["step"] == k] for k in range(k_steps)]
        x = np.array(
            [a[f"m_{p}"].to_numpy() - a["own_kwh"].to_numpy() / (households[p] * dt) for a in per_k]
        )
        edges[p] = np.quantile(x, np.arange(1, bins) / bins, axis=1).T
        bin_of = np.array([np.searchsorted(edges[p, k], x[k], "right") for k in range(k_steps)])
        value = np.broadcast_to(game.ess.terminal.astype(float), (bins, s)).copy()
        for k in range(k_steps - 1, -1, -1):
            u, stage, nxt = _ess_stage(law, per_k[k], p, k, households)
            cont = np.stack([np.interp(nxt, soe, _after_noise(law, v)) for v in value])  # (B,S,U)
            per_sample = stage + np.moveaxis(cont[bin_of[k]], 0, -1)  # (S, U, n)
            seen = bin_of[k - 1] if k > 0 else np.zeros(x.shape[1], dtype=int)
            new = np.empty((bins, s))
            for b in range(bins):
                chosen = seen == b
                total = per_sample[..., chosen if chosen.any() else slice(None)].mean(axis=-1)
                best = np.argmin(total, axis=1)
                tables[p, k, b] = u[np.arange(s), best]
                new[b] = total[np.arange(s), best]
            value = new
    return FullInformationTables(tables, edges)


# --------------------------------------------------------------------------- the estimator


@dataclass(frozen=True)
class EpsilonEstimate:
    """ε_N of one population size: the paired gaps per replication and their summary."""

    households: np.ndarray
    gaps: pd.DataFrame
    """Per (replication, cluster): ``j_law``, ``j_dev``, ``gap``, cluster mean cost, ``j_inf``."""
    summary: dict[str, float]
    deviations: np.ndarray | FullInformationTables


def _claim(directory, law: LawUnderTest, households: np.ndarray, seed: int) -> None:
    """Tie ``directory`` to one study, so resuming never mixes replications of another.

    Raises
    ------
    ValueError
        When ``directory`` already holds replications of a different game, mode,
        law, size or seed.
    """
    import json

    from cosim.io.cache import game_hash

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
        found = json.loads(path.read_text())
        if found != stamp:
            raise ValueError(f"{directory} holds another study ({found}); expected {stamp}")
        return
    path.write_text(json.dumps(stamp))


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
) -> EpsilonEstimate:
    """ε_N of ``law`` at ``households`` per cluster for the information set ``info``.

    The build replications (children ``0..B-1`` of ``SeedSequence([seed, 0])``)
    give the samples of the others' aggregates for the deviator's DP; the
    measured replications (children of ``SeedSequence([seed, 1])``) are fresh.
    Both phases run through :func:`cosim.studies.montecarlo.run_replications` in
    ``directory/samples`` and ``directory/measure-buildB-{joint,full}`` and resume from there
    (the measured gaps depend on the deviation built from ``B`` replications,
    hence the name; a directory belongs to one law, scenario and size).
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
    samples = run_replications(
        SampleOthers(law, hh),
        build,
        build_seed,
        directory / "samples",
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        description=f"N/cluster={hh[0]} build",
        dask_processes=dask_processes,
    ).table
    if info == INFO_FULL:
        tables = ess_best_response_full(law, samples, hh)
    elif info == INFO_LOCAL:
        tables = joint_best_response(law, samples, hh)
    else:
        raise ValueError(f"information set {info!r}: expected 'local' or 'full'")
    gaps = run_replications(
        MeasureGap(law, hh, tables),
        replications,
        measure_seed,
        directory / (f"measure-build{build}-" + ("full" if info == INFO_FULL else "joint")),
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        description=f"N/cluster={hh[0]} measure",
        dask_processes=dask_processes,
    ).table
    summary = summarise_gaps(gaps, law.game.clusters.shares, info)
    return EpsilonEstimate(hh, gaps, summary, tables)


# --------------------------------------------------------------------------- summaries


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
) -> dict[str, float]:
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
    slopes = []
    grouped = [dict(tuple(tables[i].groupby("replication"))) for i in keep]
    for _ in range(boot):
        ys = []
        for g in grouped:
            reps = rng.choice(list(g), size=len(g))
            ys.append(eps(pd.concat([g[r] for r in reps])))
        ys = np.asarray(ys)
        if np.all(ys > 0):
            slopes.append(np.polyfit(x, np.log(ys), 1)[0])
    if slopes:
        out["slope_lo"], out["slope_hi"] = (float(v) for v in np.percentile(slopes, [2.5, 97.5]))
    out["bootstrap_valid"] = len(slopes)
    return out


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
    "ess_best_response_full",
    "estimate_epsilon_nash",
    "fit_rate",
    "joint_best_response",
    "mean_ci",
    "summarise_gaps",
]
