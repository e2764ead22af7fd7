"""Typed, frozen configuration of a one-market scenario: both papers in one dispatch.

Several clusters-of-clusters (each a GMFG scenario of its own, seed 000) sit
at buses of one transmission network, seed-003 storage aggregators at others,
and every bus's other load is the coupled run's (:class:`models.config.SystemLoadConfig`).
One economic dispatch per market interval prices them all. The file is
validated into :class:`OneMarketScenario` by :mod:`cosim.scenario.one_market`,
which also checks what ties the fields to the network and to the clusters'
own scenario files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from market.schema import Frozen, ResultName
from market.wholesale_config import DispatchConfig, LearningConfig, NetworkSource, StorageConfig
from models.config import NonNegFloat, PositiveFloat, SystemLoadConfig

__all__ = [
    "AggregatorsConfig",
    "CoCConfig",
    "CompareConfig",
    "OneMarketInfo",
    "OneMarketScenario",
    "OneMarketTime",
    "OuterConfig",
]

#: A bus of the network: its 0-based index in the case's order, or its name.
Bus = int | str


class OneMarketInfo(Frozen):
    """What the run is."""

    name: ResultName = Field(
        "one_market", description="Short name, used in result folders (letters, digits, . _ -)."
    )
    description: str = Field("", description="One paragraph on what the run studies.")


class OneMarketTime(Frozen):
    """Days simulated and the market interval; the control step is the clusters' ``dt_h``."""

    days: int = Field(30, ge=1, le=3650, description="Days of the finite-N run.")
    market_interval_h: PositiveFloat = Field(
        1.0,
        description="The dispatch clears every market interval [h] (seed 003: 2 h); a multiple "
        "of the clusters' control step that divides 24 h.",
    )


class CoCConfig(Frozen):
    """One cluster-of-clusters at one bus."""

    bus: Bus = Field(description='Its bus: 0-based index or name (e.g. "WAIPAHU69").')
    game_file: str = Field(
        description="GMFG scenario file of its households (clusters, devices, prices, solver), "
        "relative to this file; it has no [wholesale] table of its own."
    )
    households: int = Field(
        ge=1, le=100_000_000, description="Real households the cluster-of-clusters stands for."
    )
    retail_adder: NonNegFloat = Field(
        0.03, description="Retail adder on the LMP [$/kWh]: p_G = LMP/1000 + adder."
    )
    flexible: bool = Field(
        True,
        description="false: its households' devices are left to themselves (home battery idle, "
        "EV charged at rated power until full, shiftable appliance started when its window "
        "opens, controllable load nominal), so its import responds to no price.",
    )


class AggregatorsConfig(Frozen):
    """Seed 003's storage aggregators (pooled prosumer storage, LMP beliefs, a learner)."""

    buses: list[Bus] | Literal["rest"] = Field(
        "rest",
        description='Their buses (indices or names); "rest": every bus with nominal demand '
        "that holds no cluster-of-clusters.",
    )
    prosumers_per_mw: NonNegFloat = Field(
        30.0, description="Prosumers with storage per MW of the bus's nominal demand [1/MW]."
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)


class OuterConfig(Frozen):
    """The fixed point across the clusters-of-clusters and the aggregators."""

    max_iterations: int = Field(60, ge=1, le=10_000, description="Outer iterations at most.")
    tolerance_mw: PositiveFloat = Field(
        1.0,
        description="Converged when no cluster-of-clusters' import and no aggregator's storage "
        "power would move by more than this in any market interval [MW] (and every CoC's law "
        "converged); an inner equilibrium fixes 20 000 households' import to about 0.5 MW.",
    )
    damping: float = Field(
        0.5,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="θ_0: share of the responses taken in the first iteration.",
    )
    damping_half_life: PositiveFloat = Field(
        4.0,
        description="Iterations after which the share has halved: θ_n = θ_0 / (1 + n / this).",
    )
    averaging_window: int = Field(
        8,
        ge=2,
        le=1000,
        description="Iterations of the averaged criterion: converged also when the mean of "
        "the last this-many responses is within tolerance_mw of the flows and the flows moved "
        "by less than it meanwhile (a mixed fixed point, where a response jumps: storage "
        "against a price at the value of lost load).",
    )
    noise_draws: int = Field(
        32,
        ge=1,
        le=10_000,
        description="Draws of the CoC buses' load (σ = rest.bus_load_std_mw) over which the "
        "aggregators' LMP and the price residual are averaged.",
    )
    import_points: int = Field(
        81,
        ge=11,
        le=10_001,
        description="Points of a cluster-of-clusters' import at which each interval's LMP "
        "is tabulated.",
    )


class CompareConfig(Frozen):
    """Counterfactual runs beside the scenario's own, on the same seed (paired)."""

    flexibility: bool = Field(
        False,
        description="Also run with every cluster-of-clusters' households inflexible "
        "(coc.flexible = false).",
    )
    storage: bool = Field(False, description="Also run without the storage aggregators.")


class OneMarketScenario(Frozen):
    """A complete one-market run: a file with ``[[coc]]`` tables (``cosim validate``)."""

    seed: int = Field(0, ge=0, description="Seed of the run's one generator.")
    scenario: OneMarketInfo = Field(default_factory=OneMarketInfo)
    time: OneMarketTime = Field(default_factory=OneMarketTime)
    network: NetworkSource = Field(default_factory=NetworkSource)
    rest: SystemLoadConfig = Field(default_factory=SystemLoadConfig)
    coc: list[CoCConfig] = Field(
        min_length=1,
        max_length=1000,
        description="The clusters-of-clusters, one [[coc]] table each (at least one).",
    )
    aggregators: AggregatorsConfig | None = Field(
        None, description="Storage aggregators; omitted: none."
    )
    outer: OuterConfig = Field(default_factory=OuterConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    compare: CompareConfig = Field(
        default_factory=CompareConfig,
        description="With/without comparisons run beside this one (both true: all four).",
    )

    @property
    def intervals(self) -> int:
        """Market intervals per day."""
        return round(24.0 / self.time.market_interval_h)

    def variants(self) -> dict[str, OneMarketScenario]:
        """The scenario (``"as_given"``) and the counterfactuals ``compare`` asks for.

        ``"no_flexibility"``: every CoC inflexible; ``"no_storage"``: no aggregators;
        ``"neither"``: both, when both are asked. Each is this scenario otherwise —
        the same seed, so the same draws (paired) — and compares nothing itself.
        """
        plain = self.model_copy(update={"compare": CompareConfig()})
        rigid = [c.model_copy(update={"flexible": False}) for c in self.coc]
        out = {"as_given": plain}
        if self.compare.flexibility:
            out["no_flexibility"] = plain.model_copy(update={"coc": rigid})
        if self.compare.storage:
            out["no_storage"] = plain.model_copy(update={"aggregators": None})
        if self.compare.flexibility and self.compare.storage:
            out["neither"] = plain.model_copy(update={"coc": rigid, "aggregators": None})
        return out
