"""Typed, frozen configuration of a wholesale-market experiment (seed 003 §5).

A wholesale scenario file (TOML) is validated into :class:`WholesaleScenario`
once, at the edge (``cosim.studies.wholesale.load_wholesale_scenario``); everything
downstream receives these objects. Each field carries its unit; where seed 003
leaves a number open (its extracted text lost the triangular parameters, β and
γ), the default is ours and docs/wholesale.md says why.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from market.schema import Frozen, ResultName

if TYPE_CHECKING:
    from market.dispatch import DispatchOptions

__all__ = [
    "DemandConfig",
    "DispatchConfig",
    "LearningConfig",
    "MetricsConfig",
    "NetworkSource",
    "PPOConfig",
    "ProsumerConfig",
    "QLearningConfig",
    "RenewablesConfig",
    "SiteConfig",
    "StorageConfig",
    "TimeConfig",
    "Triangular",
    "WholesaleInfo",
    "WholesaleScenario",
]

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class WholesaleInfo(Frozen):
    """What the experiment is."""

    name: ResultName = Field(
        "wholesale", description="Short name, used in result folders (letters, digits, . _ -)."
    )
    description: str = Field("", description="One paragraph on what the experiment studies.")


class Triangular(Frozen):
    """A triangular distribution T(low, mode, high) (seed 003 §5.1)."""

    low: NonNegFloat = Field(description="Lower limit.")
    mode: NonNegFloat = Field(description="Mode; low ≤ mode ≤ high.")
    high: NonNegFloat = Field(description="Upper limit.")


class TimeConfig(Frozen):
    """Steps, days and the calendar day whose load and PV shapes are used."""

    step_h: PositiveFloat = Field(2.0, description="Market step [h]; divides 24 (seed 003: 2 h).")
    days: int = Field(50, ge=1, le=3650, description="Days simulated (seed 003: 50).")
    date: _dt.date = Field(
        _dt.date(2024, 6, 15),
        description="Day whose BDEW H0 load shape and clear-sky PV shape are used [ISO date].",
    )


class SiteConfig(Frozen):
    """Where the PV shape is computed (pvlib clear sky); default Honolulu."""

    latitude: float = Field(21.3069, ge=-90, le=90, allow_inf_nan=False, description="[deg N]")
    longitude: float = Field(-157.8583, ge=-180, le=180, allow_inf_nan=False, description="[deg E]")
    altitude_m: float = Field(5.0, ge=-500, le=9000, allow_inf_nan=False, description="[m]")
    timezone: str = Field("Pacific/Honolulu", description="IANA time zone of the site.")


class NetworkSource(Frozen):
    """The transmission network and its generator costs."""

    file: str | None = Field(
        None,
        description="MATPOWER case file, relative to the scenario file (`$COSIM_DATA_DIR`, `~` "
        "expanded); none = the built-in PJM 5-bus case.",
    )
    redraw_costs: bool = Field(
        True,
        description="Re-draw each unit's cost by fuel from seed 003 Table 1 per replication "
        "(case files only; the built-in case keeps its published costs).",
    )


class RenewablesConfig(Frozen):
    """Capacity factors of grid-scale solar and wind units (seed 003 §5.1, SPEC §6)."""

    solar_factor: Triangular = Field(
        default_factory=lambda: Triangular(low=0.4, mode=0.9, high=1.0),
        description="Per-step factor scaling the clear-sky PV shape (kW/kWp) [-].",
    )
    wind_factor: Triangular = Field(
        default_factory=lambda: Triangular(low=0.05, mode=0.35, high=0.8),
        description="Per-step wind capacity factor [-].",
    )


class DemandConfig(Frozen):
    """Gross demand at each bus: the case's nominal demand, part flat, part shaped by BDEW H0."""

    peak_fraction: PositiveFloat = Field(
        0.9, description="Mean daily peak of a bus's demand as a fraction of its nominal demand."
    )
    flat_share: Fraction = Field(
        0.5,
        description="Share of a bus's peak demand that is flat over the day (commercial and "
        "industrial base); the rest follows the household shape [-].",
    )
    factor: Triangular = Field(
        default_factory=lambda: Triangular(low=0.9, mode=1.0, high=1.1),
        description="Per-bus, per-step factor on consumers' and prosumers' gross load [-].",
    )


class ProsumerConfig(Frozen):
    """Prosumers with rooftop PV and storage, one aggregator per bus (seed 003 §3)."""

    per_mw: NonNegFloat = Field(
        30.0, description="Prosumers per MW of the bus's nominal demand [1/MW]."
    )
    daily_kwh: PositiveFloat = Field(17.0, description="A prosumer's mean gross load [kWh/day].")
    pv_kwp: NonNegFloat = Field(5.0, description="Rooftop PV per prosumer [kWp].")


class StorageConfig(Frozen):
    """Each prosumer's storage and the discrete action set (eqs. (9)–(11))."""

    capacity_kwh: NonNegFloat = Field(10.0, description="Capacity per prosumer (seed 003: 10).")
    efficiency: float = Field(
        0.95, gt=0, le=1, allow_inf_nan=False, description="One-way efficiency η of eq. (9)."
    )
    soe_levels: int = Field(10, ge=1, le=200, description="K: SoE grid 0, 1/K, …, 1.")
    max_action_levels: int = Field(
        5, ge=1, le=200, description="m: largest SoE move per step, m/K of capacity."
    )
    initial_soe: Fraction = Field(0.5, description="Every prosumer's SoE at the start [-].")


class QLearningConfig(Frozen):
    """The model-free learner (tabular ε-greedy Q-learning with masking)."""

    training_steps: int = Field(50, ge=0, description="M: steps per training phase and copy.")
    parallel_envs: int = Field(8, ge=1, le=1024, description="Environment copies per aggregator.")
    learning_rate: float = Field(0.5, gt=0, le=1, allow_inf_nan=False, description="α.")
    exploration: Fraction = Field(0.3, description="ε while training.")
    restart: Fraction = Field(0.05, description="Chance per step that a copy restarts at random.")


class PPOConfig(Frozen):
    """PPO with invalid-action masking, one network for all aggregators (``market.ppo``)."""

    training_steps: int = Field(
        64, ge=2, le=100_000, description="M: steps per aggregator in one training phase."
    )
    learning_rate: float = Field(
        3e-3,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Adam step size (higher than stable-baselines3's 3e-4: the beliefs move every "
        "phase; docs/wholesale.md, Learners).",
    )
    epochs: int = Field(4, ge=1, le=100, description="Passes over each phase's samples.")
    batch_size: int = Field(256, ge=2, le=1_000_000, description="Minibatch size.")
    entropy: float = Field(0.01, ge=0, le=1, allow_inf_nan=False, description="Entropy bonus.")
    hidden_units: int = Field(64, ge=1, le=4096, description="Width of the two hidden layers.")


class LearningConfig(Frozen):
    """Algorithm 1 of seed 003: beliefs, learner, play policy."""

    learner: Literal["dp", "rl", "ppo"] = Field(
        "dp",
        description="'dp' exact dynamic programming, 'rl' tabular Q-learning, 'ppo' masked PPO "
        "(stable-baselines3; the optional [rl] extra).",
    )
    belief_rate: float = Field(0.1, gt=0, le=1, allow_inf_nan=False, description="β of eq. (8).")
    discount: float = Field(0.99, ge=0, lt=1, allow_inf_nan=False, description="γ of eq. (13).")
    initial_belief: Literal["flat", "no_storage"] = Field(
        "flat",
        description="'flat': every slot starts at the mean LMP of a storage-free dispatch of "
        "the mean day (aggregators know the price level, not its daily shape); 'no_storage': "
        "each slot starts at that dispatch's LMP.",
    )
    play_temperature: NonNegFloat = Field(
        0.0,
        description="Boltzmann temperature of the play policy [$ per MWh of capacity]; 0 = greedy. "
        "PPO's action values are log-probabilities: 1 samples its policy itself.",
    )
    play_epsilon: Fraction = Field(0.0, description="Share of uniform valid actions in play.")
    rl: QLearningConfig = Field(default_factory=QLearningConfig)
    ppo: PPOConfig = Field(default_factory=PPOConfig)


class DispatchConfig(Frozen):
    """Slack prices of the economic dispatch."""

    value_of_lost_load: PositiveFloat = Field(10_000.0, description="[$/MWh]")
    curtailment_price: PositiveFloat = Field(
        0.01,
        description="Price of dumping surplus [$/MWh]: renewables enter as negative demand, so "
        "this is their curtailment cost.",
    )

    def options(self) -> DispatchOptions:
        """The :class:`~market.dispatch.DispatchOptions` of these prices."""
        from market.dispatch import DispatchOptions  # Pyomo loads with the first dispatch

        return DispatchOptions(
            value_of_lost_load=self.value_of_lost_load, surplus_penalty=self.curtailment_price
        )


class MetricsConfig(Frozen):
    """Windows of the reported metrics."""

    last_days: int = Field(5, ge=1, description="Days at the end for IMV and ex-post cost.")
    settle_days: int = Field(10, ge=1, description="Days compared at start and end (settling).")


class WholesaleScenario(Frozen):
    """A complete wholesale experiment (``cosim wholesale``)."""

    seed: int = Field(0, ge=0, description="Root of the SeedSequence; replications are children.")
    seeds: int = Field(5, ge=1, le=1000, description="Replications (seed 003: 5).")
    scenario: WholesaleInfo = Field(default_factory=WholesaleInfo)
    time: TimeConfig = Field(default_factory=TimeConfig)
    site: SiteConfig = Field(default_factory=SiteConfig)
    network: NetworkSource = Field(default_factory=NetworkSource)
    renewables: RenewablesConfig = Field(default_factory=RenewablesConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    prosumers: ProsumerConfig = Field(default_factory=ProsumerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    @property
    def slots(self) -> int:
        """Steps per day."""
        return round(24.0 / self.time.step_h)


def consistency_rules(s: WholesaleScenario) -> list[tuple[str, object, str]]:
    """Rules tying fields together, as ``(path, value, rule)``; empty when consistent.

    File existence and time zones are checked by the loader, which knows the
    scenario's directory.
    """
    out: list[tuple[str, object, str]] = []
    slots = 24.0 / s.time.step_h
    if abs(slots - round(slots)) > 1e-9:
        out.append(("time.step_h", s.time.step_h, "must divide 24 h"))
    for path, tri in (
        ("renewables.solar_factor", s.renewables.solar_factor),
        ("renewables.wind_factor", s.renewables.wind_factor),
        ("demand.factor", s.demand.factor),
    ):
        if not tri.low <= tri.mode <= tri.high:
            out.append((path, tri.model_dump(), "needs low ≤ mode ≤ high"))
        elif tri.low == tri.high:
            out.append((path, tri.model_dump(), "needs low < high"))
    for path, tri in (
        ("renewables.solar_factor", s.renewables.solar_factor),
        ("renewables.wind_factor", s.renewables.wind_factor),
    ):
        if tri.high > 1.0 + 1e-12:
            out.append((f"{path}.high", tri.high, "a capacity factor must be ≤ 1"))
    st = s.storage
    if st.max_action_levels > st.soe_levels:
        out.append(("storage.max_action_levels", st.max_action_levels, "must be ≤ soe_levels"))
    m = s.metrics
    if m.last_days > s.time.days:
        out.append(("metrics.last_days", m.last_days, f"must be ≤ time.days ({s.time.days})"))
    if m.settle_days > s.time.days - 1:
        out.append(("metrics.settle_days", m.settle_days, f"must be < time.days ({s.time.days})"))
    return out
