"""Running a finite-N co-simulation, reading its results as tables, and saving them.

:func:`simulate` runs the co-simulation and returns its tables;
:func:`simulate_and_save` also writes them with their figures into a directory
and returns the summary ``cosim simulate`` and ``cosim run`` report.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.sim.books import BOOK_FIELDS, WHOLESALE_FIELDS
from cosim.sim.engine import CoSimulation
from market.pricing import Mode
from models.checksums import read_checked, read_json, verify_checksums, write_checksums
from models.equilibrium import EquilibriumResult
from models.feedback import FeedbackLaw
from models.game import Game
from models.provenance import write_manifest

#: The tables of a :class:`SimulationResult`, in the order they are written.
_TABLES = ("aggregates", "households", "events", "trajectories", "market", "wholesale")


@dataclass(frozen=True)
class SimulationResult:
    """Tables of a finished co-simulation and its accounting checks."""

    aggregates: pd.DataFrame
    """Per step and cluster: realised aggregates, prices and the energy/money books."""
    households: pd.DataFrame
    """Per household and day: bill, private costs and total [$]."""
    events: pd.DataFrame
    """EV plug-out / plug-in events at their exact times."""
    trajectories: pd.DataFrame
    """Step-by-step state of the recorded households."""
    market: pd.DataFrame
    """Net demand of the population per market interval."""
    wholesale: pd.DataFrame
    """With a wholesale link, per step: LMP at the households' bus [$/MWh], their
    import, the rest of the system's load, generation, shed and dumped power [MW];
    empty otherwise."""
    checks: dict[str, float]
    """Worst relative residuals of the energy and money books, and the SoE bound excess."""
    seconds: float
    """Wall-clock time of the run [s]."""

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """The result's tables, keyed by name.

        Returns
        -------
        dict of str to pandas.DataFrame
            ``"aggregates"`` (per step and cluster), ``"households"`` (per
            household and day), ``"events"`` (EV plug-out / plug-in),
            ``"trajectories"`` (recorded households, per step), ``"market"``
            (net demand per market interval) and ``"wholesale"`` (the dispatch
            per step, when the game has a wholesale link); the columns are
            documented on the attributes of the same names.
        """
        return {name: getattr(self, name) for name in _TABLES}

    def save(self, directory: str | Path) -> None:
        """Write every table as Parquet, and the checks and run time as JSON, into ``directory``.

        Parameters
        ----------
        directory
            Created if needed; ``NAME.parquet`` per table of :meth:`to_pandas`,
            ``simulation.json``, their checksums (``checksums.sha256``) and
            ``manifest.json`` (versions, git commit, time).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in self.to_pandas().items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
        info = {"checks": self.checks, "seconds": self.seconds}
        (directory / "simulation.json").write_text(json.dumps(info, indent=2) + "\n")
        write_checksums(directory, [*(f"{name}.parquet" for name in _TABLES), "simulation.json"])
        write_manifest(directory, type(self).__name__, {})

    @classmethod
    def load(cls, directory: str | Path) -> SimulationResult:
        """Reload a result written by :meth:`save` (or by ``cosim simulate`` / ``cosim run``).

        Parameters
        ----------
        directory
            The directory holding the Parquet tables and ``simulation.json``.

        Raises
        ------
        models.checksums.DamagedFileError
            When a file is missing, unreadable or differs from its checksum.
        """
        directory = Path(directory)
        files = [*(f"{name}.parquet" for name in _TABLES), "simulation.json"]
        verify_checksums(directory, files)
        info = read_checked(directory / "simulation.json", read_json)
        tables = {
            name: read_checked(directory / f"{name}.parquet", pd.read_parquet)
            if (directory / f"{name}.parquet").exists()
            else pd.DataFrame()  # a table added after the result was saved
            for name in _TABLES
        }
        return cls(**tables, checks=info["checks"], seconds=info["seconds"])


def simulate(
    equilibrium: EquilibriumResult,
    households_per_cluster: int | np.ndarray | None = None,
    days: int = 1,
    seed: int | None = None,
    reference: bool = False,
    record: int = 2,
    mode: Mode | str | None = None,
    market_interval_h: float | None = None,
) -> SimulationResult:
    """Simulate N finite households applying the equilibrium's feedback law.

    Parameters
    ----------
    equilibrium
        A solved equilibrium; its law, game and (unless ``mode`` is given) mode.
    households_per_cluster
        One number for every cluster, or one per cluster (default: the scenario's).
    days
        Days to simulate.
    seed
        Seed of the run (default: the scenario's).
    reference
        Use the per-agent Python path instead of the compiled kernel.
    record
        Households per cluster whose trajectories are recorded.
    mode
        Trading mode that settles the bills (default: the equilibrium's).
    market_interval_h
        Interval of the ``market`` table, the population's net demand per
        market interval [h]: a whole number of control steps (default: the
        scenario's ``simulation.market_interval_h``, 1 h for a bare game).
        Prices, including a wholesale link's LMPs, are cleared every control step.

    Raises
    ------
    ValueError
        When ``market_interval_h`` is not a whole number of control steps.
    """
    game = equilibrium.game
    interval = _market_interval(game, market_interval_h)
    m = game.n_clusters
    if households_per_cluster is None:
        households = game.clusters.households.astype(np.int64)
    else:
        households = np.broadcast_to(np.asarray(households_per_cluster, dtype=np.int64), (m,))
    offsets = np.concatenate([[0], np.cumsum(households)])
    recorded = np.concatenate(
        [np.arange(lo, min(lo + record, hi)) for lo, hi in itertools.pairwise(offsets)]
    )
    sim = CoSimulation(
        game,
        FeedbackLaw.from_equilibrium(equilibrium),
        mode or equilibrium.mode,
        households,
        days=days,
        seed=game.config.seed if seed is None else seed,
        reference=reference,
        record_households=recorded,
        market_interval_h=interval,
    )
    start = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - start
    return collect(sim, seconds)


def _market_interval(game: Game, given: float | None) -> float:
    """``given``, or the scenario's market interval, checked to be whole control steps."""
    scenario = getattr(game.config, "simulation", None)  # a bare GameConfig has none
    interval = given if given is not None else getattr(scenario, "market_interval_h", 1.0)
    ratio = interval / game.dt_h
    if not (ratio >= 1.0 and abs(ratio - round(ratio)) <= 1e-9):
        raise ValueError(
            f"market_interval_h = {interval}: must be a multiple of the control step "
            f"({game.dt_h} h)"
        )
    return float(interval)


def collect(sim: CoSimulation, seconds: float) -> SimulationResult:
    """Turn a finished simulation's records into tables and accounting checks."""
    game, rec, pop = sim.game, sim.rec, sim.population
    steps, m = rec.m.shape
    step = np.repeat(np.arange(steps), m)
    aggregates = pd.DataFrame(
        {
            "step": step,
            "day": step // game.steps,
            "hour": (step % game.steps) * game.dt_h,
            "cluster": np.tile(np.arange(m), steps),
            "m_kw": rec.m.ravel(),
            "a_kw": rec.seen.ravel(),
            "mg_kw": np.repeat(rec.scalar, m),
            "p_rpc": rec.rpc.ravel(),
            "p_coc": rec.coc.ravel(),
            "p_stage": rec.stage.ravel(),
            "p_grid": np.repeat(rec.grid_price, m),
            **{name: rec.books[name].ravel() for name in BOOK_FIELDS},
        }
    )
    days, n = rec.bills.shape
    households = pd.DataFrame(
        {
            "household": np.tile(np.arange(n), days),
            "cluster": np.tile(pop.cluster, days),
            "day": np.repeat(np.arange(days), n),
            "has_ev": np.tile(pop.has_ev, days).astype(bool),
            "bill": rec.bills.ravel(),
            "private_cost": rec.private.ravel(),
            "cost": (rec.bills + rec.private).ravel(),
        }
    )
    events = pd.DataFrame(rec.events, columns=["time_h", "household", "kind", "soe_kwh"])
    trajectories = pd.DataFrame(
        rec.trajectories,
        columns=[
            "household",
            "step",
            "ess_soe_kwh",
            "ev_soe_kwh",
            "ev_u",
            "ev_connected",
            "energy_kwh",
            "ev_energy_kwh",
        ],
    )
    market = pd.DataFrame(rec.market, columns=["time_h", "net_demand_kwh"])
    dispatched = rec.wholesale or {}
    rows = steps if dispatched else 0
    wholesale = pd.DataFrame(
        {
            "step": np.arange(rows),
            "hour": np.arange(rows) * game.dt_h % 24.0,
            **{name: dispatched.get(name, np.zeros(0)) for name in WHOLESALE_FIELDS},
            "p_grid": rec.grid_price[:rows],
        }
    )
    return SimulationResult(
        aggregates=aggregates,
        households=households,
        events=events,
        trajectories=trajectories,
        market=market,
        wholesale=wholesale,
        checks=accounting_checks(sim),
        seconds=seconds,
    )


def accounting_checks(sim: CoSimulation) -> dict[str, float]:
    """Worst relative residuals of the energy and money books, and the SoE bounds.

    * energy: per step and cluster, ``bought = intra + inter_in + grid_import``
      and ``sold = intra + inter_out + grid_export``; inter-cluster flows in
      and out balance across clusters; the households' net exchange equals the
      grid's net import;
    * money: the bills settled household by household add up to what the
      aggregators billed; inter-cluster payments cancel out;
    * wholesale (with a link): every step, generation + shed − dumped =
      the rest of the system's load + the households' net import, relative to
      the system's load; and that import equals the households' metered net
      exchange scaled to the households represented.
    """
    b = sim.rec.books
    scale = max(float(np.max(b["bought_kwh"] + b["sold_kwh"])), 1e-12)
    energy = (
        max(
            float(
                np.max(
                    np.abs(
                        b["bought_kwh"] - b["intra_kwh"] - b["inter_in_kwh"] - b["grid_import_kwh"]
                    )
                )
            ),
            float(
                np.max(
                    np.abs(
                        b["sold_kwh"] - b["intra_kwh"] - b["inter_out_kwh"] - b["grid_export_kwh"]
                    )
                )
            ),
            float(np.max(np.abs(b["inter_in_kwh"].sum(axis=1) - b["inter_out_kwh"].sum(axis=1)))),
            float(
                np.max(
                    np.abs(
                        (b["bought_kwh"] - b["sold_kwh"]).sum(axis=1)
                        - (b["grid_import_kwh"] - b["grid_export_kwh"]).sum(axis=1)
                    )
                )
            ),
        )
        / scale
    )
    billed = float(b["billed"].sum())
    money = max(
        abs(float(sim.rec.bills.sum()) - billed),
        abs(float(b["inter_payment"].sum())),
    ) / max(abs(billed), 1e-12)
    checks = {
        "energy_balance": energy,
        "money_balance": money,
        "soe_bound_excess_kwh": max(sim.rec.bound_excess, 0.0),
    }
    w, link = sim.rec.wholesale, sim.game.wholesale
    if w is not None and link is not None:
        supply = w["generation_mw"] + w["shed_mw"] - w["surplus_mw"]
        demand = w["other_load_mw"] + w["import_mw"]
        metered = (b["bought_kwh"] - b["sold_kwh"]).sum(axis=1) / sim.dt_h
        scaled = link.import_mw(metered / sim.population.size)
        checks["wholesale_balance"] = float(
            np.max(np.abs(supply - demand)) / max(float(np.max(np.abs(demand))), 1e-12)
        )
        checks["import_consistency"] = float(
            np.max(np.abs(scaled - w["import_mw"])) / max(float(np.max(np.abs(scaled))), 1e-12)
        )
    return checks


def price_error(result: SimulationResult, equilibrium: EquilibriumResult) -> float:
    """Mean absolute gap between realised and mean-field stage prices [$/kWh]."""
    game = equilibrium.game
    realised = result.aggregates.pivot(index="step", columns="cluster", values="p_stage").to_numpy()
    k = realised.shape[0]
    reference = np.tile(equilibrium.prices.stage.T, (k // game.steps, 1))
    return float(np.mean(np.abs(realised - reference)))


def simulation_summary(
    result: SimulationResult, equilibrium: EquilibriumResult, reference: bool = False
) -> dict:
    """What a run amounts to: its size, time, price gap to the mean field, costs and checks.

    Parameters
    ----------
    result
        The run, of ``equilibrium``'s law.
    equilibrium
        The equilibrium it is compared with.
    reference
        Whether the run took the per-agent Python path (the summary's ``path``).

    Returns
    -------
    dict
        ``mode``, ``households``, ``days``, ``path``, ``seconds``,
        ``price_error`` (:func:`price_error`), ``realised_mean_cost`` and
        ``mean_field_cost`` [$ per household-day], ``checks`` and, with a
        wholesale link, ``lmp_realised`` (per step [$/MWh]).
    """
    wholesale = {}
    if equilibrium.game.wholesale is not None:
        wholesale = {"lmp_realised": result.wholesale["lmp"].round(4).tolist()}
    return {
        "mode": str(equilibrium.mode),
        "households": int(result.households["household"].nunique()),
        "days": int(result.households["day"].nunique()),
        "path": "reference" if reference else "compiled",
        "seconds": result.seconds,
        "price_error": price_error(result, equilibrium),
        "realised_mean_cost": float(result.households["cost"].mean()),
        "mean_field_cost": equilibrium.mean_cost,
        "checks": result.checks,
        **wholesale,
    }


def simulate_and_save(
    equilibrium: EquilibriumResult,
    directory: str | Path,
    households_per_cluster: int | np.ndarray | None = None,
    days: int = 1,
    seed: int | None = None,
    reference: bool = False,
    record: int = 2,
) -> dict:
    """Simulate as :func:`simulate` does, write the run into ``directory``, and summarise it.

    ``directory`` receives the tables (:meth:`SimulationResult.save`) and, in
    ``figures/``, the realised prices and household costs against the mean
    field (with a wholesale link also the LMP and the system's load) — the
    simulation part of a ``cosim simulate`` or ``cosim run`` result.

    Parameters
    ----------
    equilibrium
        A solved equilibrium; its law, game and mode.
    directory
        Where the run is written (created if needed).
    households_per_cluster, days, seed, reference, record
        As for :func:`simulate`.

    Returns
    -------
    dict
        :func:`simulation_summary` of the run.
    """
    from cosim.io.figures import simulation_figures  # pyplot loads only when a run is drawn

    directory = Path(directory)
    result = simulate(equilibrium, households_per_cluster, days, seed, reference, record)
    result.save(directory)
    simulation_figures(result, equilibrium, directory / "figures")
    return simulation_summary(result, equilibrium, reference)
