"""Typed, frozen configuration of the graphon mean-field game.

Every field carries its unit and its source in its description; the scenario
reference in ``docs/`` is generated from these classes. Each field's type and
range is checked when the object is built; the rules that tie fields together
are in :mod:`models.validation`, checked when a scenario file is read (see
:mod:`cosim.scenario.game`) and again by :func:`models.game.build_game`.
Everything downstream receives these objects, never raw dictionaries.

Defaults follow ``SPEC.md`` §1–4 and Aziz et al. (G-2025-80) §4.2; where the
paper leaves a number open the default and its reason are in ``docs/model.md``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path, PurePath
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from market.pricing import PriceConfig
from market.schema import LIST, SCALAR, ClusterValue, Frozen, UniformRange, shape_of

#: Environment variable naming the user's data directory: files a scenario needs that the
#: repository may not ship (Hawaii40), written ``"$COSIM_DATA_DIR/hawaii40.m"`` (docs/data.md).
DATA_DIR_VARIABLE = "COSIM_DATA_DIR"


def scenario_path(name: str, base_dir: Path | None) -> Path:
    """A file named in a scenario: environment variables (``$COSIM_DATA_DIR``), then ``~``
    expanded, a relative name taken from ``base_dir`` (the scenario file's directory)."""
    file = Path(os.path.expandvars(name)).expanduser()
    return base_dir / file if base_dir is not None and not file.is_absolute() else file


def missing_file_rule(name: str, base_dir: Path | None) -> str:
    """The rule a scenario's file ``name`` breaks when it names no file, in one line.

    A name under ``$COSIM_DATA_DIR`` while the variable is unset (or empty) says
    so; any other gives the path looked at. Both point to ``docs/data.md``.
    """
    in_data_dir = re.search(rf"\$\{{?{DATA_DIR_VARIABLE}\b", name) is not None
    if in_data_dir and not os.environ.get(DATA_DIR_VARIABLE):
        return (
            f"{DATA_DIR_VARIABLE} is not set: the directory holding {PurePath(name).name} "
            "(docs/data.md says where to get it)"
        )
    looked_at = scenario_path(name, base_dir)
    return f"file not found ({looked_at}); docs/data.md says where to get Hawaii40"


PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Efficiency = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Hour = Annotated[float, Field(ge=0, le=24, allow_inf_nan=False)]
#: ``[start, end]`` hours of day.
Window = Annotated[list[Hour], Field(min_length=2, max_length=2)]

#: Most households one cluster may hold. The mean-field game reads only the clusters'
#: shares, so a count is a weight as much as a population: 10⁹ is beyond any real cluster
#: (a feeder serves 10²–10⁴ households, the world about 2·10⁹) and keeps every count the
#: code derives from it exact in int64 and float64 — the whole population (≤ 10⁴ clusters ×
#: 10⁹ = 10¹³ < 2⁵³) and its household-days over the longest simulation (< 4·10¹⁶ < 2⁶³).
#: Whether a simulation of that many fits the machine is checked before a command runs
#: (:mod:`cosim.scenario.limits`).
MAX_HOUSEHOLDS = 1_000_000_000
HouseholdCount = Annotated[int, Field(le=MAX_HOUSEHOLDS)]
#: Households per cluster: one count for every cluster, or one per cluster.
HouseholdCounts = Annotated[
    Annotated[HouseholdCount, Tag(SCALAR)] | Annotated[list[HouseholdCount], Tag(LIST)],
    Discriminator(shape_of),
]


class TimeConfig(Frozen):
    """The control grid ``t_k = k·Δt``, ``k = 0..K-1`` (SPEC §1)."""

    dt_h: PositiveFloat = Field(0.25, description="Control step Δt [h].")
    horizon_h: PositiveFloat = Field(
        24.0,
        description="Horizon T = K·Δt [h]: one day, 24 h (the co-simulation repeats it); "
        "a multiple of Δt.",
    )
    date: _dt.date = Field(
        _dt.date(2025, 6, 21),
        description="Calendar day simulated (PV and load profiles) [ISO date].",
    )

    @property
    def steps(self) -> int:
        """Number of control steps K."""
        return round(self.horizon_h / self.dt_h)


class LocationConfig(Frozen):
    """Where the PV profile is computed (pvlib solar position and clear sky)."""

    latitude: float = Field(45.50, ge=-90, le=90, description="Latitude [deg]; default Montréal.")
    longitude: float = Field(-73.57, ge=-180, le=180, description="Longitude [deg].")
    altitude_m: float = Field(50.0, ge=-500, le=9000, description="Altitude [m].")
    timezone: str = Field("America/Montreal", description="IANA time zone of the local clock.")


class PVConfig(Frozen):
    """Rooftop PV, eq. (1): ``θ = cap·s(t)·max(0, 1 + ε_θ ζ)``."""

    capacity_kwp: ClusterValue = Field(
        UniformRange(low=0.0, high=1.0),
        description="Installed PV per household [kWp]; per cluster.",
    )
    noise: NonNegFloat = Field(0.15, description="Relative intensity ε_θ of the AR(1) noise [-].")
    noise_corr: Fraction = Field(0.9, description="AR(1) coefficient of ζ per step [-].")


class LoadConfig(Frozen):
    """Base load ``z = base(t)·max(0, 1 + ε_z ζ')`` from the BDEW H0 profile."""

    daily_kwh: PositiveFloat = Field(12.0, description="Base-load energy per day at scale 1 [kWh].")
    scale: ClusterValue = Field(
        UniformRange(low=0.7, high=1.3), description="Per-cluster multiplier of daily_kwh [-]."
    )
    noise: NonNegFloat = Field(0.1, description="Relative intensity ε_z of the AR(1) noise [-].")
    noise_corr: Fraction = Field(0.9, description="AR(1) coefficient of ζ' per step [-].")


class StorageConfig(Frozen):
    """A battery, eqs. (3)–(12); the defaults are the home ESS's (:class:`EVConfig` for the EV)."""

    capacity_kwh: PositiveFloat = Field(13.5, description="Usable capacity b_max [kWh].")
    min_fraction: Fraction = Field(0.1, description="b_min as a fraction of capacity [-].")
    charge_kw: PositiveFloat = Field(3.0, description="Rated grid-to-battery power P_g2s [kW].")
    discharge_kw: PositiveFloat = Field(3.0, description="Rated battery-to-grid power P_s2g [kW].")
    efficiency: Efficiency = Field(
        0.95, description="One-way efficiency η (charge ×η, discharge ÷η) [-]."
    )
    noise_kwh: NonNegFloat = Field(0.05, description="SoE noise σ: σ√Δt·N(0,1) per step [kWh/√h].")
    degradation: NonNegFloat = Field(
        0.05, description="Degradation cost κ_b: κ_b·u²·Δt per step, u∈[-1,1] [$/h]."
    )
    initial_mean_kwh: PositiveFloat = Field(6.75, description="Mean state of energy at t=0 [kWh].")
    initial_std_kwh: NonNegFloat = Field(
        0.5, description="Std of the state of energy at t=0 [kWh]."
    )
    terminal_linear: NonNegFloat = Field(
        0.08, description="End-of-day penalty c1·(b0 − b)₊ [$/kWh], b0 = initial mean."
    )
    terminal_quadratic: NonNegFloat = Field(
        0.05, description="End-of-day penalty c2·(b0 − b)₊² [$/kWh²]."
    )
    terminal_smoothing_kwh: NonNegFloat = Field(
        0.5, description="Width over which the (b0 − b)₊ ramp of the penalty is smoothed [kWh]."
    )


class EVConfig(StorageConfig):
    """The EV battery, connected or away (SPEC §1); V2G allowed while connected."""

    capacity_kwh: PositiveFloat = Field(60.0, description="Usable capacity b_max [kWh].")
    min_fraction: Fraction = Field(0.2, description="b_min as a fraction of capacity [-].")
    charge_kw: PositiveFloat = Field(7.0, description="Rated grid-to-EV power P_g2e [kW].")
    discharge_kw: PositiveFloat = Field(7.0, description="Rated EV-to-grid power P_e2g [kW].")
    efficiency: Efficiency = Field(0.93, description="One-way efficiency η_e [-].")
    noise_kwh: NonNegFloat = Field(0.1, description="SoE noise σ per step [kWh/√h].")
    initial_mean_kwh: PositiveFloat = Field(36.0, description="Mean state of energy at t=0 [kWh].")
    initial_std_kwh: NonNegFloat = Field(
        3.0, description="Std of the state of energy at t=0 [kWh]."
    )

    share: ClusterValue = Field(
        UniformRange(low=0.2, high=0.8), description="Fraction of households with an EV [-]."
    )
    departure_window_h: Window = Field(
        [7.0, 9.0], description="Departure time ~ U(window) [h of day]."
    )
    arrival_window_h: Window = Field(
        [17.0, 19.0], description="Arrival time ~ U(window) [h of day]; after the departure window."
    )
    trip_kwh_mean: NonNegFloat = Field(8.0, description="Mean trip energy taken from b_e [kWh].")
    trip_kwh_std: NonNegFloat = Field(2.0, description="Std of the trip energy [kWh].")
    departure_target_kwh: NonNegFloat = Field(
        48.0, description="SoE target at departure (the paper's α term) [kWh]."
    )
    departure_penalty: NonNegFloat = Field(
        0.05, description="Departure shortfall penalty c·(target − b)₊² [$/kWh²]."
    )


class ShiftableConfig(Frozen):
    """A shiftable appliance: energy E_s at rated P_s inside a window (SPEC §1)."""

    energy_kwh: PositiveFloat = Field(2.0, description="Daily energy E_s [kWh].")
    power_kw: PositiveFloat = Field(2.0, description="Rated power P_s [kW] (paper §4.2).")
    window_h: Window = Field([8.0, 22.0], description="Window [start, end) [h of day].")
    shortfall_penalty: NonNegFloat = Field(
        0.5, description="Penalty on energy left at the window's end [$/kWh]."
    )


class ControllableConfig(Frozen):
    """A controllable load ``y_c = f_c·P_c·(1 + u_c)``, ``u_c ∈ [-1, 1]`` (SPEC §1)."""

    power_kw: PositiveFloat = Field(2.5, description="Rated power P_c [kW] (paper §4.2).")
    duty: Fraction = Field(0.2, description="Nominal duty f_c: nominal draw f_c·P_c [-].")
    discomfort: PositiveFloat = Field(
        0.05, description="Discomfort κ_c: κ_c·u_c²·Δt per step [$/h]."
    )


class HouseholdConfig(Frozen):
    """The devices of a household; one parameter set per cluster (SPEC §1)."""

    pv: PVConfig = Field(default_factory=PVConfig)
    load: LoadConfig = Field(default_factory=LoadConfig)
    ess: StorageConfig = Field(default_factory=StorageConfig)
    ev: EVConfig = Field(default_factory=EVConfig)
    shiftable: ShiftableConfig = Field(default_factory=ShiftableConfig)
    controllable: ControllableConfig = Field(default_factory=ControllableConfig)


class DistanceConfig(Frozen):
    """Cluster electrical distances ``e ∈ [0,1]^{M×M}`` (seed 000 §3.2)."""

    kind: Literal["radial_feeder", "line", "matrix", "file"] = Field(
        "radial_feeder",
        description=(
            "radial_feeder: normalised path impedance on a seeded radial feeder; line: distances "
            "of random points on [0,1]; matrix: the `matrix` field; file: a CSV M×M matrix."
        ),
    )
    matrix: list[list[float]] | None = Field(None, description="Explicit M×M distances [-].")
    file: str | None = Field(
        None, description="CSV file of M×M distances, relative to the scenario."
    )


class ClustersConfig(Frozen):
    """The cluster-of-clusters (seed 000 §3.1)."""

    count: int = Field(100, ge=1, le=10_000, description="Number of clusters M.")
    households: HouseholdCounts = Field(
        200,
        description="Households per cluster N_p (one value or one per cluster), at most 10⁹ "
        "each; the mean-field game uses their shares, the simulation simulates them.",
    )
    alpha: NonNegFloat = Field(2.0, description="Graphon decay α in W = exp(−α e), eq. (14).")
    distances: DistanceConfig = Field(default_factory=DistanceConfig)
    generic_cluster: int | None = Field(
        None, ge=0, description="Cluster of the generic agent (default: median PV size)."
    )


class SolverConfig(Frozen):
    """Grids and fixed-point settings of the GMFG solver (SPEC §4)."""

    soe_points: int = Field(
        101, ge=2, le=10_001, description="SoE grid points of the home battery."
    )
    ev_soe_points: int | None = Field(
        None,
        ge=2,
        le=10_001,
        description="SoE grid points of the EV (default: the home battery's spacing in kWh).",
    )
    control_levels: int = Field(
        41, ge=2, le=10_001, description="Battery control levels in [-1,1]."
    )
    continuation: Literal["cubic", "linear"] = Field(
        "cubic",
        description=(
            "Interpolation of the next value in the battery HJB step: cubic (a law close to "
            "optimal at every state of energy) or linear (the grid chain's exact program)."
        ),
    )
    noise_nodes: int = Field(3, ge=1, le=21, description="Gauss–Hermite nodes for SoE noise.")
    trip_nodes: int = Field(3, ge=1, le=21, description="Gauss–Hermite nodes for the trip energy.")
    max_iterations: int = Field(400, ge=1, le=100_000, description="Fixed-point iteration cap.")
    price_tolerance: PositiveFloat = Field(
        1e-3, description="ε_con: sup-norm price change relative to the grid price [-]."
    )
    exploitability_tolerance: PositiveFloat = Field(
        1e-3, description="Exploitability tolerance [$ per household-day]."
    )
    step_initial: Annotated[float, Field(gt=0, le=1)] = Field(
        0.3, description="Fictitious-play step r_0 in r_n = max(r_0/(1+n/n_half), r_min)."
    )
    step_half_life: PositiveFloat = Field(20.0, description="n_half in the step schedule.")
    split_tie_cost: NonNegFloat = Field(
        1e-4,
        description="Tie-breaking cost of the shiftable split at full share [$ per quantum].",
    )
    split_samples: int = Field(
        64,
        ge=2,
        le=100_000,
        description="Samples of each step's price curve in the shiftable split.",
    )
    step_min: Annotated[float, Field(gt=0, le=1)] = Field(
        0.05, description="r_min in the step schedule."
    )


class SystemLoadConfig(Frozen):
    """Every bus's other load and the grid-scale renewables (SPEC §6; the coupled run's)."""

    load_peak_fraction: PositiveFloat = Field(
        0.9, description="Daily peak of every bus's other load as a fraction of its nominal demand."
    )
    load_flat_share: Fraction = Field(
        0.5,
        description="Share of that peak that is flat over the day; the rest follows the BDEW H0 "
        "shape [-].",
    )
    bus_load_std_mw: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        10.0,
        description="Std of the rest of the bus's load around its profile, drawn per step [MW]; "
        "the mean field prices the expected LMP over it.",
    )
    solar_factor: NonNegFloat = Field(
        0.9, description="Grid-scale solar output per MW at the clear-sky PV shape's peak [-]."
    )
    wind_factor: Fraction = Field(0.35, description="Wind units' capacity factor [-].")


class WholesaleLinkConfig(SystemLoadConfig):
    """The cluster-of-clusters at one bus of a wholesale network (SPEC §3, §6).

    The grid price becomes ``p_G(k) = LMP_bus(k)/1000 + retail_adder``, the LMP
    of an economic dispatch of the network whose demand is the other load of
    every bus plus the households' net import at ``bus``.
    """

    network_file: str | None = Field(
        None,
        description="MATPOWER case file, relative to the scenario (`$COSIM_DATA_DIR`, `~` "
        "expanded); omitted: the built-in PJM 5-bus case.",
    )
    redraw_costs: bool = Field(
        True,
        description="Draw each unit's cost by fuel from seed 003 Table 1 (case files only; "
        "one draw from the scenario's seed).",
    )
    bus: int = Field(
        0, ge=0, description="Bus the households are attached to (0-based, in the case's order)."
    )
    retail_adder: NonNegFloat = Field(
        0.03, description="Retail adder on the LMP [$/kWh]: p_G = LMP/1000 + adder."
    )
    households: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Real households the cluster-of-clusters stands for at the bus "
        "(default: the sum of clusters.households).",
    )
    import_points: int = Field(
        201,
        ge=11,
        le=10_001,
        description="Points of the households' import at which each step's LMP is tabulated.",
    )


class GameConfig(Frozen):
    """Everything the graphon mean-field game needs (SPEC §1–4)."""

    seed: int = Field(20251122, ge=0, description="Seed of the run's one generator.")
    time: TimeConfig = Field(default_factory=TimeConfig)
    location: LocationConfig = Field(default_factory=LocationConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    household: HouseholdConfig = Field(default_factory=HouseholdConfig)
    prices: PriceConfig = Field(default_factory=PriceConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    wholesale: WholesaleLinkConfig | None = Field(
        None, description="Attach the households to a wholesale network: p_G = LMP + adder."
    )
