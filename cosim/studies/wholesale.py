"""The seed-003 wholesale experiment: runs and results (``cosim wholesale`` runs it).

A wholesale scenario (TOML, :class:`market.wholesale_config.WholesaleScenario`)
is validated once, by :mod:`cosim.scenario.wholesale`, with the same reporting
as GMFG scenarios (``FILE: path: value: rule``, every violation); its loaders
are re-exported here. An experiment
runs ``seeds`` replications, children of one ``SeedSequence``; each draws its
generator costs (by fuel) and every step's weather and demand factors first,
then plays Algorithm 1 with storage and — on the same draws — without it, so
that the comparison of IMV and ex-post cost is paired. The learning loop is
:func:`models.fixed_point.run_fixed_point` driving
:class:`market.learning.TwoPhaseLearning`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.io.results import manifest
from cosim.scenario.wholesale import (
    LoadedWholesale,
    load_wholesale_scenario,
    parse_wholesale_scenario,
    with_overrides,
)
from market.aggregators import ExogenousDraws, MarketCase
from market.learners import DynamicProgrammingLearner, Learner, greedy_value, make_learner
from market.learning import MarketRecord, PlaySettings, TwoPhaseLearning
from market.matpower import load_matpower
from market.metrics import (
    SHED_TOLERANCE_MW,
    VOLL_RELATIVE_TOLERANCE,
    ex_post_cost,
    imv,
    scarcity_metrics,
    scarcity_steps,
    settling,
)
from market.network import Generator, Line, Network, pjm5bus, redraw_costs_by_fuel
from market.storage import StorageModel
from market.wholesale_config import WholesaleScenario
from models.checksums import read_checked, read_json, read_npz, verify_checksums, write_checksums
from models.fixed_point import run_fixed_point
from models.profiles import base_load_per_kwh, pv_per_kwp
from models.provenance import write_manifest

__all__ = [
    "ExperimentResult",
    "LoadedWholesale",
    "Replication",
    "build_case",
    "load_network",
    "load_wholesale_scenario",
    "parse_wholesale_scenario",
    "run_experiment",
    "run_replication",
    "with_overrides",
]


# ---------------------------------------------------------------------------
# Building a replication
# ---------------------------------------------------------------------------
def load_network(loaded: LoadedWholesale) -> Network:
    """The scenario's network (costs as in the file), or the built-in PJM 5-bus case."""
    file = loaded.network_file()
    return pjm5bus() if file is None else load_matpower(file)


def build_case(s: WholesaleScenario, network: Network, *, storage: bool) -> MarketCase:
    """Populations and mean profiles of every bus.

    A bus's gross demand has its daily peak at ``demand.peak_fraction`` × the
    case's nominal demand; a share ``demand.flat_share`` of that peak is flat
    over the day, the rest follows the BDEW H0 shape of ``time.date``. Of it,
    ``prosumers.per_mw`` prosumers per MW carry ``daily_kwh`` each on the same
    shape and own rooftop PV on pvlib's clear-sky shape at the site; the rest
    is pure consumers. Grid-scale solar follows the same PV shape.
    """
    slots, dt = s.slots, s.time.step_h
    shape = base_load_per_kwh(s.time.date, dt, slots)  # kW per kWh/day
    site = s.site
    pv = pv_per_kwp(
        site.latitude, site.longitude, site.altitude_m, site.timezone, s.time.date, dt, slots
    )
    nominal = np.clip(network.nominal_demand_mw, 0.0, None)
    flat = s.demand.flat_share
    profile = flat + (1.0 - flat) * shape / shape.max()
    gross_mw = s.demand.peak_fraction * nominal[None, :] * profile[:, None]
    prosumers = np.rint(s.prosumers.per_mw * nominal).astype(np.int64)
    load_kw = s.prosumers.daily_kwh * shape
    consumer_mw = gross_mw - prosumers[None, :] * load_kw[:, None] / 1000.0
    return MarketCase(
        network=network,
        dt_h=dt,
        consumer_mw=np.clip(consumer_mw, 0.0, None),
        prosumers=prosumers,
        prosumer_load_kw=load_kw,
        prosumer_pv_kw=s.prosumers.pv_kwp * pv,
        solar_shape=pv / max(float(pv.max()), 1e-12),
        storage_kwh=s.storage.capacity_kwh if storage else 0.0,
    )


def storage_model(s: WholesaleScenario) -> StorageModel:
    """The discrete storage MDP of the scenario."""
    st = s.storage
    return StorageModel(st.soe_levels, st.max_action_levels, st.efficiency, s.learning.discount)


def _tri(t: object) -> tuple[float, float, float]:
    return (t.low, t.mode, t.high)  # type: ignore[attr-defined]


@dataclass
class Replication:
    """One seed's runs: with storage (unless skipped) and without."""

    seed_index: int
    network: Network
    with_storage: MarketRecord | None
    without_storage: MarketRecord
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    learners: dict[str, float] = field(default_factory=dict)
    """Policy values of the DP and RL learners on this run's final beliefs."""


def run_scarcity(record: MarketRecord, s: WholesaleScenario) -> np.ndarray:
    """The run's scarcity steps (:func:`market.metrics.scarcity_steps`): a mask per step."""
    return scarcity_steps(record.lmp, record.shed_mw, s.dispatch.value_of_lost_load)


def summarise(
    record: MarketRecord, s: WholesaleScenario, exclude: np.ndarray | None = None
) -> dict[str, float]:
    """IMV, ex-post cost and settling of one run, with and without scarcity steps.

    ``exclude`` (a mask per step) is what the ``*_excl_scarcity`` figures
    leave out: by default the run's own scarcity steps; :func:`run_replication`
    passes those of either run of the seed, so that both runs lose the same
    steps and stay paired.
    """
    slots, dt = s.slots, s.time.step_h
    last = s.metrics.last_days * slots
    cost = ex_post_cost(record.bids_mw, record.lmp, dt)
    first, final = settling(record.hub_price, slots, s.metrics.settle_days)
    return {
        "imv_last_days": float(np.mean(imv(record.lmp[-last:], axis=0))),
        "imv_hub_last_days": float(imv(record.hub_price[-last:])),
        "imv_whole_run": float(np.mean(imv(record.lmp, axis=0))),
        "ex_post_cost_last_days": float(cost[-last:].sum()),
        "ex_post_cost_total": float(cost.sum()),
        "day_change_first": first,
        "day_change_last": final,
        "mean_hub_price": float(record.hub_price.mean()),
        "steps_with_shedding": int(np.sum(record.shed_mw > SHED_TOLERANCE_MW)),
        "curtailed_mwh": float(record.surplus_mw.sum() * dt),
        **scarcity_metrics(
            record.lmp,
            record.hub_price,
            record.shed_mw * dt,
            cost,
            own=run_scarcity(record, s),
            exclude=exclude,
            last=last,
        ),
    }


def compare_learners(
    s: WholesaleScenario,
    model: StorageModel,
    belief: np.ndarray,
    rng: np.random.Generator,
    trained: Learner | None = None,
) -> dict[str, float]:
    """Policy values (eq. (13)) of the DP optimum and of the RL learner on one belief.

    The value is the mean over aggregators, slots and SoE levels, in $ per MWh
    of storage capacity. ``trained`` is the run's RL learner (Q-learning or
    PPO), valued by its greedy policy; without one (a DP run) a fresh
    Q-learner is trained against ``belief`` for as many training phases as a
    run has steps.
    """
    n_agents = belief.shape[0]
    dp = DynamicProgrammingLearner(model, n_agents, s.slots)
    dp.train(belief)
    if trained is None:
        trained = make_learner(s.learning, model, n_agents, s.slots, name="rl")
        for _ in range(s.time.days * s.slots):
            trained.train(belief, rng)
    v_dp = dp.values
    v_rl = greedy_value(model, belief, trained)
    return {
        "dp_value": float(v_dp.mean()),
        "rl_value": float(v_rl.mean()),
        "rl_share_of_optimum": float(v_rl.mean() / v_dp.mean()) if v_dp.mean() > 0 else 1.0,
        "dp_not_below_rl_everywhere": bool(np.all(v_dp >= v_rl - 1e-7 * (1 + np.abs(v_dp)))),
    }


def run_replication(
    loaded: LoadedWholesale,
    base_network: Network,
    seed_index: int,
    seed_seq: np.random.SeedSequence,
    *,
    storage: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
) -> Replication:
    """One replication: cost and factor draws, then Algorithm 1 with and without storage.

    One generator, from ``seed_seq``, is handed down: it draws the costs (by
    fuel, case files only), then every step's factors, then the learners'
    and prosumers' choices in the run with storage. The run without storage
    uses the same costs and factors.
    """
    s = loaded.scenario
    rng = np.random.default_rng(seed_seq)
    network = base_network
    if loaded.network_file() is not None and s.network.redraw_costs:
        network = redraw_costs_by_fuel(base_network, rng)
    steps = s.time.days * s.slots
    draws = ExogenousDraws.draw(
        rng,
        steps,
        network.n_buses,
        _tri(s.demand.factor),
        _tri(s.renewables.solar_factor),
        _tri(s.renewables.wind_factor),
    )
    model = storage_model(s)
    learn = s.learning
    settings = PlaySettings(
        belief_rate=learn.belief_rate,
        temperature=learn.play_temperature,
        epsilon=learn.play_epsilon,
        initial_soe=s.storage.initial_soe,
        initial_belief=learn.initial_belief,
    )
    options = s.dispatch.options()

    def play(with_storage: bool) -> tuple[MarketRecord, TwoPhaseLearning]:
        case = build_case(s, network, storage=with_storage)
        n_agg = case.aggregator_bus.size
        learner = make_learner(s.learning, model, n_agg, s.slots) if case.has_storage else None
        algo = TwoPhaseLearning(case, draws, model, learner, settings, rng, options)
        run = run_fixed_point(algo, steps, on_iteration=on_step)
        return run.state.record, algo

    rep = Replication(seed_index, network, None, play(False)[0])
    scarce = run_scarcity(rep.without_storage, s)
    if storage:
        record, algo = play(True)
        rep.with_storage = record
        scarce = scarce | run_scarcity(record, s)
        rep.summary["with_storage"] = summarise(record, s, scarce)
        trained = None if isinstance(algo.learner, DynamicProgrammingLearner) else algo.learner
        rep.learners = compare_learners(s, model, record.belief[-1], rng, trained)
    rep.summary = {"without_storage": summarise(rep.without_storage, s, scarce), **rep.summary}
    return rep


@dataclass
class ExperimentResult:
    """All replications of an experiment and their summary."""

    scenario: WholesaleScenario
    replications: list[Replication]
    seconds: float
    storage: bool

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """The experiment's long tables (those ``cosim wholesale`` writes).

        Returns
        -------
        dict of str to pandas.DataFrame
            ``"steps"``: per replication, run and step — hub price, capacity
            factors, shed and curtailed power, generation and ex-post cost,
            whether it is a scarcity step, storage power; ``"lmp"``: per
            replication, run, step and bus — LMP and bid; ``"replications"``:
            one summary row per replication and run (IMV, ex-post cost,
            settling, scarcity steps and the metrics without them, learners'
            policy values);
            ``"aggregators"`` (runs with storage only): per step and
            aggregator — SoE, action, storage power and the belief in play.
        """
        return result_tables(self)

    def save(self, directory: str | Path) -> None:
        """Write the tables (Parquet) and everything needed to reload the result.

        Besides ``NAME.parquet`` for each table of :meth:`to_pandas`,
        ``experiment.json`` holds the scenario, the run time, each
        replication's network and summaries, and ``records.npz`` every
        recorded array of every run; ``checksums.sha256`` their SHA-256 and
        ``manifest.json`` the seed, scenario, versions, git commit and time.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tables = self.to_pandas()
        for name, table in tables.items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
        arrays: dict[str, np.ndarray] = {}
        reps = []
        for rep in self.replications:
            for run in ("with_storage", "without_storage"):
                record = getattr(rep, run)
                if record is not None:
                    for f in fields(record):
                        arrays[f"{rep.seed_index}/{run}/{f.name}"] = getattr(record, f.name)
            reps.append(
                {
                    "seed_index": rep.seed_index,
                    "network": asdict(rep.network),
                    "summary": rep.summary,
                    "learners": rep.learners,
                }
            )
        # numpy's stub reads **arrays as if it could hold allow_pickle (a bool)
        np.savez_compressed(directory / "records.npz", **arrays)  # type: ignore[arg-type]
        info = {
            "scenario": self.scenario.model_dump(mode="json"),
            "seconds": self.seconds,
            "storage": self.storage,
            "replications": reps,
        }
        (directory / "experiment.json").write_text(json.dumps(info, indent=2) + "\n")
        files = [*(f"{name}.parquet" for name in tables), "records.npz", "experiment.json"]
        write_checksums(directory, files)
        known = {"seed": self.scenario.seed, "storage": self.storage, "scenario": info["scenario"]}
        write_manifest(directory, type(self).__name__, known)

    @classmethod
    def load(cls, directory: str | Path) -> ExperimentResult:
        """Reload a result written by :meth:`save` or by ``cosim wholesale``.

        Parameters
        ----------
        directory
            The directory holding ``experiment.json`` and ``records.npz``.

        Raises
        ------
        models.checksums.DamagedFileError
            When one of them is missing, unreadable or differs from its checksum.
        """
        directory = Path(directory)
        verify_checksums(directory, ["experiment.json", "records.npz"])
        info = read_checked(directory / "experiment.json", read_json)
        arrays = read_checked(directory / "records.npz", read_npz)

        def record(index: int, run: str) -> MarketRecord | None:
            prefix = f"{index}/{run}/"
            if prefix + "lmp" not in arrays:
                return None
            return MarketRecord(**{f.name: arrays[prefix + f.name] for f in fields(MarketRecord)})

        reps = []
        for rep in info["replications"]:
            net = rep["network"]
            network = Network(
                **{
                    **net,
                    "buses": tuple(net["buses"]),
                    "lines": tuple(Line(**line) for line in net["lines"]),
                    "generators": tuple(Generator(**gen) for gen in net["generators"]),
                    "demand_mw": tuple(net["demand_mw"]),
                }
            )
            without = record(rep["seed_index"], "without_storage")
            if without is None:
                raise ValueError(f"{directory}: replication {rep['seed_index']} has no records")
            reps.append(
                Replication(
                    rep["seed_index"],
                    network,
                    record(rep["seed_index"], "with_storage"),
                    without,
                    rep["summary"],
                    rep["learners"],
                )
            )
        scenario = WholesaleScenario.model_validate_json(json.dumps(info["scenario"]))
        return cls(scenario, reps, info["seconds"], info["storage"])

    def summary(self) -> dict:
        """Means over seeds and the acceptance checks."""
        reps = self.replications

        def mean(run: str, key: str) -> float:
            return float(np.mean([r.summary[run][key] for r in reps]))

        keys = list(reps[0].summary["without_storage"])
        runs = ["with_storage", "without_storage"] if self.storage else ["without_storage"]
        out: dict = {
            "scenario": self.scenario.scenario.name,
            "learner": self.scenario.learning.learner if self.storage else None,
            "days": self.scenario.time.days,
            "seeds": len(reps),
            "step_h": self.scenario.time.step_h,
            "seconds": round(self.seconds, 2),
            "scarcity": scarcity_definition(self.scenario),
            "mean_over_seeds": {run: {k: mean(run, k) for k in keys} for run in runs},
            "per_seed": [
                {"seed_index": r.seed_index, **{run: r.summary[run] for run in runs}} for r in reps
            ],
        }
        if self.storage:
            means = out["mean_over_seeds"]
            w, wo = means["with_storage"], means["without_storage"]
            values = {k: float(np.mean([r.learners[k] for r in reps])) for k in reps[0].learners}
            out["learners"] = {
                **values,
                "dp_not_below_rl_everywhere": all(
                    r.learners["dp_not_below_rl_everywhere"] for r in reps
                ),
                "per_seed": [r.learners for r in reps],
            }
            out["checks"] = {
                "prices_settle": w["day_change_last"] < w["day_change_first"],
                "storage_lowers_imv": w["imv_last_days"] < wo["imv_last_days"],
                "storage_lowers_ex_post_cost_last_days": (
                    w["ex_post_cost_last_days"] < wo["ex_post_cost_last_days"]
                ),
                "storage_lowers_ex_post_cost_total": (
                    w["ex_post_cost_total"] < wo["ex_post_cost_total"]
                ),
                "dp_at_least_rl": out["learners"]["dp_value"] >= out["learners"]["rl_value"],
            }
        return out


def scarcity_definition(s: WholesaleScenario) -> dict[str, float | str]:
    """What the summary's scarcity figures count and leave out, in words and numbers."""
    voll = s.dispatch.value_of_lost_load
    return {
        "step": (
            f"shed > {SHED_TOLERANCE_MW:g} MW (all buses) or some bus's LMP ≥ "
            f"{voll * (1 - VOLL_RELATIVE_TOLERANCE):g} $/MWh "
            f"(VOLL · (1 − {VOLL_RELATIVE_TOLERANCE:g}))"
        ),
        "excluded": (
            "*_excl_scarcity: steps that are scarcity steps in either run of the seed, in both "
            "runs; IMV drops every increment touching one"
        ),
        "value_of_lost_load": voll,
        "shed_tolerance_mw": SHED_TOLERANCE_MW,
    }


def run_experiment(
    loaded: LoadedWholesale,
    *,
    storage: bool = True,
    on_step: Callable[[int, dict], None] | None = None,
) -> ExperimentResult:
    """Every replication of a scenario; seeds are children of ``SeedSequence(seed)``."""
    s = loaded.scenario
    base = load_network(loaded)
    children = np.random.SeedSequence(s.seed).spawn(s.seeds)
    start = time.perf_counter()
    reps = [
        run_replication(loaded, base, i, child, storage=storage, on_step=on_step)
        for i, child in enumerate(children)
    ]
    return ExperimentResult(s, reps, time.perf_counter() - start, storage)


# ---------------------------------------------------------------------------
# Tables and manifest
# ---------------------------------------------------------------------------
def result_tables(result: ExperimentResult) -> dict[str, pd.DataFrame]:
    """Long tables of every run: steps, LMPs per bus, aggregators, summaries."""
    s = result.scenario
    slots, dt = s.slots, s.time.step_h
    steps, lmps, aggs, summary = [], [], [], []
    for rep in result.replications:
        net = rep.network
        runs = {"without_storage": rep.without_storage}
        if rep.with_storage is not None:
            runs["with_storage"] = rep.with_storage
        for run, rec in runs.items():
            n = rec.hub_price.size
            step = np.arange(n)
            base = {"seed_index": rep.seed_index, "run": run}
            steps.append(
                pd.DataFrame(
                    {
                        **base,
                        "step": step,
                        "day": step // slots,
                        "slot": step % slots,
                        "hub_price": rec.hub_price,
                        "solar_cf": rec.solar_cf,
                        "wind_cf": rec.wind_cf,
                        "shed_mw": rec.shed_mw,
                        "curtailed_mw": rec.surplus_mw,
                        "generation_cost": rec.generation_cost,
                        "ex_post_cost": ex_post_cost(rec.bids_mw, rec.lmp, dt),
                        "scarcity": run_scarcity(rec, s),
                        "storage_mw": rec.storage_mw.sum(axis=1),
                    }
                )
            )
            buses = np.tile(np.arange(net.n_buses), n)
            lmps.append(
                pd.DataFrame(
                    {
                        **base,
                        "step": np.repeat(step, net.n_buses),
                        "bus": buses,
                        "bus_name": np.array(net.buses)[buses],
                        "lmp": rec.lmp.ravel(),
                        "bid_mw": rec.bids_mw.ravel(),
                    }
                )
            )
            if run == "with_storage" and rec.soe.shape[1]:
                n_agg = rec.soe.shape[1]
                slot_belief = rec.belief[:-1, :, :][step, :, step % slots]
                aggs.append(
                    pd.DataFrame(
                        {
                            **base,
                            "step": np.repeat(step, n_agg),
                            "aggregator": np.tile(np.arange(n_agg), n),
                            "soe_before": rec.soe[:-1].ravel(),
                            "action": rec.action.ravel(),
                            "storage_mw": rec.storage_mw.ravel(),
                            "belief": slot_belief.ravel(),
                        }
                    )
                )
            summary.append({**base, **rep.summary[run], **rep.learners})
    tables = {
        "steps": pd.concat(steps, ignore_index=True),
        "lmp": pd.concat(lmps, ignore_index=True),
        "replications": pd.DataFrame(summary),
    }
    if aggs:
        tables["aggregators"] = pd.concat(aggs, ignore_index=True)
    return tables


def wholesale_manifest(loaded: LoadedWholesale, command: str, extra: dict) -> dict:
    """What identifies a result: the GMFG manifest's fields plus the network file."""
    network = loaded.network_file()
    return manifest(
        loaded, command, {"network_file": None if network is None else str(network), **extra}
    )
