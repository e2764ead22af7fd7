"""The mean-field game as arrays: everything the solver needs, built once from a scenario.

:func:`build_game` resolves the per-cluster parameters (drawn with the
scenario's seed where the scenario gives a range), computes the profiles,
distances and graphon, and discretises the devices. The result depends on the
scenario only — in particular not on the trading mode, which enters through
:func:`stage_prices`, and not on the number of households beyond their shares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from market.clearing import ClearingParameters, PriceFunction, clear_prices
from market.pricing import Mode, hourly_to_steps, mode_weights
from market.schema import ClusterValue, UniformRange
from models import devices, graphon, profiles
from models.config import GameConfig, ShiftableConfig, scenario_path
from models.coupling import COST_STREAM, WholesaleLink, build_link
from models.grids import BatteryGrid, build_battery_grid
from models.validation import check_game_config


def game_rng(seed: int, stream: int) -> np.random.Generator:
    """Generator of one stream of a run: child ``stream`` of ``SeedSequence(seed)``.

    Stream 0 draws the scenario (cluster parameters, distances); the finite-N
    simulation and the Monte Carlo experiments take later streams.
    """
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(stream + 1)[stream])


def resolve_cluster_value(
    value: ClusterValue, n_clusters: int, rng: np.random.Generator
) -> np.ndarray:
    """One value per cluster from a scalar, a list of ``M`` values, or a uniform range."""
    if isinstance(value, UniformRange):
        return rng.uniform(value.low, value.high, size=n_clusters)
    if isinstance(value, list):
        return np.asarray(value, dtype=float)
    return np.full(n_clusters, float(value))


@dataclass(frozen=True)
class ClusterParameters:
    """Per-cluster parameters (clusters are internally uniform, SPEC §1)."""

    households: np.ndarray
    """``N_p`` (only their shares enter the mean-field game)."""
    pv_kwp: np.ndarray
    load_kwh: np.ndarray
    """Base-load energy per household per day [kWh]."""
    ev_share: np.ndarray
    rpc_network_charge: np.ndarray
    rpc_slope: np.ndarray
    coc_network_charge: np.ndarray
    coc_slope: np.ndarray

    @property
    def shares(self) -> np.ndarray:
        """``λ_p = N_p / N``."""
        return self.households / self.households.sum()


@dataclass(frozen=True)
class Game:
    """A graphon mean-field game on the control grid, ready to solve."""

    config: GameConfig
    dt_h: float
    step_hours: np.ndarray
    clusters: ClusterParameters
    distances: np.ndarray
    weights: np.ndarray
    """Graphon ``W = exp(−α e)``, shape ``(M, M)``."""
    grid_price: np.ndarray
    """``p_G`` per step [$/kWh]."""
    pv_per_kwp: np.ndarray
    base_per_kwh: np.ndarray
    exogenous_kw: np.ndarray
    """Expected ``z − θ`` per household [kW], shape ``(M, K)``."""
    ess: BatteryGrid
    ev: BatteryGrid
    shiftable_quanta: int
    shiftable_window: tuple[int, int]
    wholesale: WholesaleLink | None = None
    """The households' bus in the wholesale market; ``None``: ``p_G`` is the scenario's."""
    base_dir: Path | None = None
    """Absolute directory the scenario's relative file names point to (``None``: the
    working directory); saved with an equilibrium so that it reloads from anywhere."""

    @property
    def n_clusters(self) -> int:
        """Number of clusters M."""
        return len(self.clusters.households)

    @property
    def steps(self) -> int:
        """Number of control steps K."""
        return len(self.step_hours)

    def with_grid_price(self, grid_price: np.ndarray) -> Game:
        """The same game with ``p_G`` replaced (``(K,)`` [$/kWh])."""
        return replace(self, grid_price=np.asarray(grid_price, dtype=float))

    def priced_by(self, net_kw: np.ndarray) -> Game:
        """The game with ``p_G`` from the wholesale market for cluster means ``(M, K)`` [kW].

        Without a wholesale link, the game itself: ``p_G`` does not depend on the
        households.
        """
        if self.wholesale is None:
            return self
        return self.with_grid_price(self.wholesale.grid_price(self.clusters.shares @ net_kw))

    @property
    def clearing(self) -> ClearingParameters:
        """Parameters of the clearing rule of eqs. (16)–(20) (:mod:`market.clearing`)."""
        cp, pr = self.clusters, self.config.prices
        return ClearingParameters(
            local=PriceFunction(
                cp.rpc_network_charge, cp.rpc_slope, pr.rpc.floor, pr.rpc.smoothing
            ),
            inter=PriceFunction(
                cp.coc_network_charge, cp.coc_slope, pr.coc.floor, pr.coc.smoothing
            ),
            shares=cp.shares,
            graphon=self.weights,
            aggregate=pr.coc_aggregate,
        )

    @property
    def generic_cluster(self) -> int:
        """Cluster of the generic agent: the scenario's choice, else the median PV size."""
        chosen = self.config.clusters.generic_cluster
        if chosen is not None:
            return chosen
        order = np.argsort(self.clusters.pv_kwp, kind="stable")
        return int(order[(len(order) - 1) // 2])


def _households(config: GameConfig) -> np.ndarray:
    n = config.clusters.households
    m = config.clusters.count
    return np.asarray(n if isinstance(n, list) else [n] * m, dtype=float)


def build_distances(
    config: GameConfig, rng: np.random.Generator, base_dir: Path | None
) -> np.ndarray:
    """The scenario's cluster distance matrix ``e`` (seed 000 §3.2)."""
    spec = config.clusters.distances
    m = config.clusters.count
    if spec.kind == "radial_feeder":
        return graphon.radial_feeder_distances(m, rng)
    if spec.kind == "line":
        return graphon.line_distances(m, rng)
    if spec.kind == "matrix":
        return np.asarray(spec.matrix, dtype=float)
    return graphon.load_distance_file(scenario_path(spec.file or "", base_dir))


def import_range(
    config: GameConfig, clusters: ClusterParameters, pv: np.ndarray, base: np.ndarray
) -> tuple[float, float]:
    """Lowest and highest mean net exchange per household the devices allow [kW]."""
    hh = config.household
    cc = hh.controllable
    factor = 1.0 + 3.0 * max(hh.pv.noise, hh.load.noise)
    lo = -(factor * clusters.pv_kwp.max() * pv.max() + hh.ess.discharge_kw + hh.ev.discharge_kw)
    hi = factor * clusters.load_kwh.max() * base.max()
    hi += hh.ess.charge_kw + hh.ev.charge_kw + hh.shiftable.power_kw + 2.0 * cc.duty * cc.power_kw
    return float(lo), float(hi)


def _cluster_parameters(config: GameConfig, rng: np.random.Generator) -> ClusterParameters:
    """Per-cluster parameters, drawn in this order from ``rng`` where the scenario gives a range."""
    m = config.clusters.count
    hh = config.household
    pr = config.prices
    return ClusterParameters(
        households=_households(config),
        pv_kwp=resolve_cluster_value(hh.pv.capacity_kwp, m, rng),
        load_kwh=hh.load.daily_kwh * resolve_cluster_value(hh.load.scale, m, rng),
        ev_share=resolve_cluster_value(hh.ev.share, m, rng),
        rpc_network_charge=resolve_cluster_value(pr.rpc.network_charge, m, rng),
        rpc_slope=resolve_cluster_value(pr.rpc.slope, m, rng),
        coc_network_charge=resolve_cluster_value(pr.coc.network_charge, m, rng),
        coc_slope=resolve_cluster_value(pr.coc.slope, m, rng),
    )


def _shiftable_steps(sh: ShiftableConfig, dt_h: float, steps: int) -> tuple[int, tuple[int, int]]:
    """Quanta ``R`` of ``P_s·Δt`` to run, and the window ``[start, end)`` in steps."""
    quanta = max(1, round(sh.energy_kwh / (sh.power_kw * dt_h)))
    start = int(np.ceil(sh.window_h[0] / dt_h - 1e-9))
    end = int(np.floor(sh.window_h[1] / dt_h + 1e-9))
    return quanta, (min(start, steps), min(end, steps))


def ev_grid_points(config: GameConfig) -> int:
    """SoE grid points of the EV: ``solver.ev_soe_points``, or the home battery's spacing.

    By default both batteries are resolved equally finely in kWh: the EV's
    range over the home battery's grid spacing, rounded up.
    """
    solver, hh = config.solver, config.household
    if solver.ev_soe_points is not None:
        return solver.ev_soe_points
    ess_range = hh.ess.capacity_kwh * (1.0 - hh.ess.min_fraction)
    ev_range = hh.ev.capacity_kwh * (1.0 - hh.ev.min_fraction)
    spacing = ess_range / (solver.soe_points - 1)
    return max(int(np.ceil(ev_range / spacing - 1e-9)) + 1, 3)


def build_game(config: GameConfig, base_dir: Path | None = None) -> Game:
    """Build the arrays of the game described by ``config``.

    Parameters
    ----------
    config
        A game configuration; its cross-field rules are checked first.
    base_dir
        Directory that relative file paths in the scenario refer to.

    Raises
    ------
    market.schema.ConfigError
        When ``config`` breaks a rule of :func:`models.validation.game_violations`
        (every one listed, one ``path: value: rule`` per line).
    """
    check_game_config(config, base_dir)
    rng = game_rng(config.seed, 0)
    clusters = _cluster_parameters(config, rng)
    distances = build_distances(config, rng, base_dir)
    hh = config.household
    time = config.time
    dt_h, k = time.dt_h, time.steps
    step_hours = np.arange(k) * dt_h
    loc = config.location
    pv = profiles.pv_per_kwp(
        loc.latitude, loc.longitude, loc.altitude_m, loc.timezone, time.date, dt_h, k
    )
    base = profiles.base_load_per_kwh(time.date, dt_h, k)
    pv_mean = clusters.pv_kwp[:, None] * pv[None, :] * devices.positive_part_mean(hh.pv.noise)
    load_mean = (
        clusters.load_kwh[:, None] * base[None, :] * devices.positive_part_mean(hh.load.noise)
    )

    solver = config.solver
    ess = build_battery_grid(hh.ess, solver.soe_points, solver.noise_nodes, dt_h, step_hours)
    ev = build_battery_grid(
        hh.ev,
        ev_grid_points(config),
        solver.noise_nodes,
        dt_h,
        step_hours,
        trip_nodes=solver.trip_nodes,
    )
    quanta, window = _shiftable_steps(hh.shiftable, dt_h, k)
    return Game(
        config=config,
        dt_h=dt_h,
        step_hours=step_hours,
        clusters=clusters,
        distances=distances,
        weights=graphon.graphon_weights(distances, config.clusters.alpha),
        grid_price=hourly_to_steps(config.prices.grid_price, step_hours),
        pv_per_kwp=pv,
        base_per_kwh=base,
        exogenous_kw=load_mean - pv_mean,
        ess=ess,
        ev=ev,
        shiftable_quanta=quanta,
        shiftable_window=window,
        wholesale=None
        if config.wholesale is None
        else build_link(
            config.wholesale,
            base,
            pv,
            int(clusters.households.sum()),
            import_range(config, clusters, pv, base),
            game_rng(config.seed, COST_STREAM),
            base_dir,
        ),
        base_dir=None if base_dir is None else Path(base_dir).resolve(),
    )


@dataclass(frozen=True)
class Prices:
    """Prices of one aggregate path (eqs. (13), (19)–(20)), all in $/kWh."""

    rpc: np.ndarray
    """``p_RPC,p(k)``, shape ``(M, K)``."""
    coc: np.ndarray
    """``p_CoC(k)``, shape ``(M, K)`` (identical rows unless network-aware)."""
    stage: np.ndarray
    """``π_p(k) = w1 p_RPC + w2 p_CoC + w3 p_G``, shape ``(M, K)``."""


def stage_prices(game: Game, mode: Mode, cluster_mean: np.ndarray) -> Prices:
    """Prices seen by each cluster for the mean net exchange ``m_p(k)`` [kW/household].

    Eqs. (16)–(20) of Aziz et al.: ``A_p = Σ_q W_pq λ_q m_q``, ``M_g = Σ λ_p A_p``,
    ``p_RPC,p = P_loc(m_p)``, ``p_CoC = P_glob(M_g)`` (or ``P_glob(A_p)``), and the
    stage price ``π_p`` of eq. (13) with the mode's weights.
    """
    w = mode_weights(mode, game.config.prices.weights, game.step_hours)
    cleared = clear_prices(game.clearing, cluster_mean, game.grid_price, w)
    return Prices(rpc=cleared.rpc, coc=cleared.coc, stage=cleared.stage)
