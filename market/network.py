"""Transmission network for the wholesale market: buses, lines, generators, PTDF.

The economic dispatch of seed 003 (He & Liu, eqs. (2)–(5)) needs three things
from the network: the generators with their quadratic costs and limits, the
line flow limits, and the power transfer distribution factors (PTDF) that map
bus injections to line flows under the DC approximation. This module holds
those as a frozen :class:`Network` and builds it three ways: from a MATPOWER
case file (:func:`market.matpower.load_matpower`), as the paper's hub-and-spoke form
(:func:`hub_and_spoke`), or as the built-in PJM 5-bus case (:func:`pjm5bus`).

Units: MW for power, $/MWh for linear cost, $/MW²h for quadratic cost. The
conversion to the household layer's $/kWh happens in :mod:`market.dispatch`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FUEL_COST_RANGES",
    "FuelCostRange",
    "Generator",
    "Line",
    "Network",
    "connected_components",
    "hub_and_spoke",
    "pjm5bus",
    "ptdf",
    "redraw_costs_by_fuel",
]


@dataclass(frozen=True)
class Line:
    """A transmission line (or transformer) between two buses."""

    from_bus: int
    """Index of the sending bus; a positive flow runs from here to ``to_bus``."""
    to_bus: int
    """Index of the receiving bus."""
    reactance: float
    """Series reactance (p.u.; only ratios between lines matter for the PTDF)."""
    limit_mw: float = math.inf
    """Thermal limit on |flow| (MW); ``inf`` for an unmonitored line."""
    name: str = ""
    """Free label, e.g. ``"A-B"``."""


@dataclass(frozen=True)
class Generator:
    """A dispatchable generating unit with cost ``a·p² + b·p`` ($/h)."""

    bus: int
    """Index of the bus the unit injects into."""
    fuel: str
    """Fuel category: ``"oil"``, ``"biomass"``, ``"solar"``, ``"wind"``, or as read."""
    pmax_mw: float
    """Upper output limit (MW)."""
    pmin_mw: float = 0.0
    """Lower output limit (MW)."""
    cost_a: float = 0.0
    """Quadratic cost coefficient a ($/MW²h), ≥ 0."""
    cost_b: float = 0.0
    """Linear cost coefficient b ($/MWh)."""
    name: str = ""
    """Free label, e.g. the plant's name."""
    cost_c: float = 0.0
    """Constant cost c0 ($/h) of the unit while in service, whatever its output
    (MATPOWER's c0); it adds to the dispatch's cost, not to any price."""


@dataclass(frozen=True)
class Network:
    """A DC transmission network with its generators.

    Arrays over buses, lines and generators are exposed as read-only
    properties (``line_limit_mw``, ``gen_cost_a``, …) for vectorised use.
    """

    buses: tuple[str, ...]
    """Bus names, in bus-index order."""
    lines: tuple[Line, ...]
    """Lines; their bus indices refer to ``buses``."""
    generators: tuple[Generator, ...]
    """Generating units; their bus indices refer to ``buses``."""
    slack: int = 0
    """Index of the hub (reference) bus: its PTDF column is zero and its price
    is the hub price λ of seed 003 eq. (6)."""
    demand_mw: tuple[float, ...] = field(default=())
    """Nominal demand per bus (MW) as given by the case; empty means zero. The
    dispatch takes its own demand at each step; this is a default."""
    name: str = ""
    """Case name."""
    shunt_mw: tuple[float, ...] = field(default=())
    """Fixed load per bus of its shunt conductance (MW at 1 p.u. voltage, MATPOWER's
    ``GS``); empty means none. The dispatch adds it to every step's demand."""

    def __post_init__(self) -> None:
        # A round trip through JSON hands back lists; keep the field hashable.
        object.__setattr__(self, "shunt_mw", tuple(float(x) for x in self.shunt_mw))
        n_bus = len(self.buses)
        if n_bus == 0:
            raise ValueError("network: needs at least one bus")
        if not 0 <= self.slack < n_bus:
            raise ValueError(f"network.slack: {self.slack} is not a bus index in [0, {n_bus})")
        if self.demand_mw and len(self.demand_mw) != n_bus:
            raise ValueError(
                f"network.demand_mw: has {len(self.demand_mw)} entries, expected one per bus "
                f"({n_bus})"
            )
        if self.shunt_mw and len(self.shunt_mw) != n_bus:
            raise ValueError(
                f"network.shunt_mw: has {len(self.shunt_mw)} entries, expected one per bus "
                f"({n_bus})"
            )
        if not all(math.isfinite(x) for x in self.shunt_mw):
            raise ValueError(f"network.shunt_mw: {self.shunt_mw} must be finite")
        for k, line in enumerate(self.lines):
            _check_line(k, line, n_bus)
        for k, gen in enumerate(self.generators):
            _check_generator(k, gen, n_bus)

    # -- sizes --------------------------------------------------------------
    @property
    def n_buses(self) -> int:
        """Number of buses."""
        return len(self.buses)

    @property
    def n_lines(self) -> int:
        """Number of lines."""
        return len(self.lines)

    @property
    def n_generators(self) -> int:
        """Number of generating units."""
        return len(self.generators)

    # -- columnar views (read-only) ------------------------------------------
    @cached_property
    def line_from(self) -> NDArray[np.intp]:
        """Sending-bus index per line."""
        return _frozen(np.array([ln.from_bus for ln in self.lines], dtype=np.intp))

    @cached_property
    def line_to(self) -> NDArray[np.intp]:
        """Receiving-bus index per line."""
        return _frozen(np.array([ln.to_bus for ln in self.lines], dtype=np.intp))

    @cached_property
    def line_reactance(self) -> NDArray[np.float64]:
        """Series reactance per line (p.u.)."""
        return _frozen(np.array([ln.reactance for ln in self.lines], dtype=float))

    @cached_property
    def line_limit_mw(self) -> NDArray[np.float64]:
        """Thermal limit per line (MW), ``inf`` where unmonitored."""
        return _frozen(np.array([ln.limit_mw for ln in self.lines], dtype=float))

    @cached_property
    def gen_bus(self) -> NDArray[np.intp]:
        """Bus index per generator."""
        return _frozen(np.array([g.bus for g in self.generators], dtype=np.intp))

    @cached_property
    def gen_pmin_mw(self) -> NDArray[np.float64]:
        """Lower output limit per generator (MW)."""
        return _frozen(np.array([g.pmin_mw for g in self.generators], dtype=float))

    @cached_property
    def gen_pmax_mw(self) -> NDArray[np.float64]:
        """Upper output limit per generator (MW)."""
        return _frozen(np.array([g.pmax_mw for g in self.generators], dtype=float))

    @cached_property
    def gen_cost_a(self) -> NDArray[np.float64]:
        """Quadratic cost coefficient per generator ($/MW²h)."""
        return _frozen(np.array([g.cost_a for g in self.generators], dtype=float))

    @cached_property
    def gen_cost_b(self) -> NDArray[np.float64]:
        """Linear cost coefficient per generator ($/MWh)."""
        return _frozen(np.array([g.cost_b for g in self.generators], dtype=float))

    @cached_property
    def gen_cost_c(self) -> NDArray[np.float64]:
        """Constant cost per generator ($/h)."""
        return _frozen(np.array([g.cost_c for g in self.generators], dtype=float))

    @cached_property
    def shunt_load_mw(self) -> NDArray[np.float64]:
        """Fixed shunt load per bus (MW); zeros if the network has none."""
        d = np.array(self.shunt_mw, dtype=float) if self.shunt_mw else np.zeros(self.n_buses)
        return _frozen(d)

    @cached_property
    def nominal_demand_mw(self) -> NDArray[np.float64]:
        """Nominal demand per bus (MW); zeros if the case gives none."""
        d = np.array(self.demand_mw, dtype=float) if self.demand_mw else np.zeros(self.n_buses)
        return _frozen(d)

    def with_costs(
        self,
        cost_a: Sequence[float],
        cost_b: Sequence[float],
        cost_c: Sequence[float] | None = None,
    ) -> Network:
        """Return a copy with new cost coefficients, one per generator each.

        ``cost_c`` (constant costs, $/h) is kept as it is when omitted.
        """
        c = self.gen_cost_c.tolist() if cost_c is None else list(cost_c)
        if not len(cost_a) == len(cost_b) == len(c) == self.n_generators:
            raise ValueError(
                f"with_costs: got {len(cost_a)} a, {len(cost_b)} b and {len(c)} c "
                f"coefficients for {self.n_generators} generators"
            )
        gens = tuple(
            replace(g, cost_a=float(a), cost_b=float(b), cost_c=float(c0))
            for g, a, b, c0 in zip(self.generators, cost_a, cost_b, c, strict=True)
        )
        return replace(self, generators=gens)


def _check_line(k: int, line: Line, n_bus: int) -> None:
    """Raise naming ``network.lines[k]``, the field, the line's name, value and rule."""
    at, named = f"network.lines[{k}]", f" ({line.name})" if line.name else ""
    for end in (line.from_bus, line.to_bus):
        if not 0 <= end < n_bus:
            raise ValueError(f"{at}{named}: bus index {end} is not in [0, {n_bus})")
    if line.from_bus == line.to_bus:
        raise ValueError(f"{at}{named}: from_bus and to_bus are both {line.from_bus}")
    if not (math.isfinite(line.reactance) and line.reactance != 0.0):
        raise ValueError(f"{at}.reactance{named}: {line.reactance} must be finite, non-zero")
    if not line.limit_mw > 0.0:
        raise ValueError(f"{at}.limit_mw{named}: {line.limit_mw} must be > 0 (inf = none)")


def _check_generator(k: int, gen: Generator, n_bus: int) -> None:
    """Raise naming ``network.generators[k]``, the field, the unit's name, value and rule."""
    at, named = f"network.generators[{k}]", f" ({gen.name})" if gen.name else ""
    if not 0 <= gen.bus < n_bus:
        raise ValueError(f"{at}.bus{named}: {gen.bus} is not in [0, {n_bus})")
    if not (math.isfinite(gen.pmin_mw) and math.isfinite(gen.pmax_mw)):
        raise ValueError(f"{at}{named}: limits ({gen.pmin_mw}, {gen.pmax_mw}) must be finite")
    if gen.pmin_mw > gen.pmax_mw:
        raise ValueError(f"{at}{named}: pmin_mw {gen.pmin_mw} exceeds pmax_mw {gen.pmax_mw}")
    if not gen.cost_a >= 0.0:
        raise ValueError(f"{at}.cost_a{named}: {gen.cost_a} must be ≥ 0 (convex cost)")
    for field_name in ("cost_b", "cost_c"):
        value = getattr(gen, field_name)
        if not math.isfinite(value):
            raise ValueError(f"{at}.{field_name}{named}: {value} must be finite")


def _frozen(a: NDArray) -> NDArray:
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------
# PTDF
# ---------------------------------------------------------------------------
def ptdf(network: Network, slack: int | None = None) -> NDArray[np.float64]:
    """DC power transfer distribution factors from topology and reactances.

    ``PTDF[l, n]`` is the change of flow on line ``l`` (positive from its
    ``from_bus`` to its ``to_bus``) per MW injected at bus ``n`` and withdrawn
    at the slack bus, under the DC approximation (lossless, flat voltages,
    small angles). It is the coefficient of the line-limit constraint, seed 003
    eq. (4). With ``A`` the line–bus incidence matrix and ``b = 1/x``,
    ``B = Aᵀ diag(b) A`` and ``PTDF = diag(b) A B_r⁻¹`` on the non-slack
    columns, zero on the slack column. Parallel lines are allowed.

    Parameters
    ----------
    network
        The network.
    slack
        Reference bus index; defaults to ``network.slack``.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(n_lines, n_buses)``.

    Raises
    ------
    ValueError
        If the network is not connected, naming the buses of each island
        apart from the slack's, or if its reduced susceptance matrix is
        singular.
    """
    ref = network.slack if slack is None else int(slack)
    n, m = network.n_buses, network.n_lines
    if not 0 <= ref < n:
        raise ValueError(f"ptdf: slack {ref} is not a bus index in [0, {n})")
    incidence = np.zeros((m, n))
    rows = np.arange(m)
    incidence[rows, network.line_from] = 1.0
    incidence[rows, network.line_to] = -1.0
    b = 1.0 / network.line_reactance
    susceptance = incidence.T @ (b[:, None] * incidence)
    keep = np.flatnonzero(np.arange(n) != ref)
    reduced = susceptance[np.ix_(keep, keep)]
    islands = [c for c in connected_components(network) if ref not in c]
    if islands:
        named = "; ".join(", ".join(repr(network.buses[k]) for k in c) for c in islands)
        raise ValueError(
            f"ptdf: the network is not connected: {len(islands)} island(s) without the slack "
            f"bus {network.buses[ref]!r}: {named}"
        )
    if n > 1 and np.linalg.matrix_rank(reduced) < n - 1:
        raise ValueError("ptdf: the susceptance matrix is singular (reactances cancel out)")
    out = np.zeros((m, n))
    if n > 1:
        out[:, keep] = (b[:, None] * incidence[:, keep]) @ np.linalg.inv(reduced)
    return out


def connected_components(network: Network) -> list[list[int]]:
    """The network's islands: bus indices joined by lines, each list sorted.

    Parameters
    ----------
    network
        The network.

    Returns
    -------
    list of list of int
        One list per connected component, ordered by their smallest bus.
    """
    parent = list(range(network.n_buses))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for f, t in zip(network.line_from.tolist(), network.line_to.tolist(), strict=True):
        parent[root(f)] = root(t)
    groups: dict[int, list[int]] = {}
    for k in range(network.n_buses):
        groups.setdefault(root(k), []).append(k)
    return sorted(groups.values())


# ---------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------
def hub_and_spoke(
    spoke_limits_mw: Sequence[float],
    generators: Sequence[Generator] = (),
    *,
    spoke_names: Sequence[str] | None = None,
    hub_name: str = "hub",
    demand_mw: Sequence[float] = (),
) -> Network:
    """The hub-and-spoke network of seed 003 §2.

    Bus 0 is the hub; bus ``k`` (1-based) is spoke ``k`` and line ``k-1``
    joins it to the hub. All power between spokes flows through the hub, so
    the PTDF of line ``k-1`` is 1 for an injection at spoke ``k`` and 0
    elsewhere (the form assumed under eq. (4)).

    Parameters
    ----------
    spoke_limits_mw
        Flow limit of each spoke's line (MW); ``inf`` for none.
    generators
        Generating units; bus 0 is the hub, bus k the k-th spoke.
    spoke_names
        Names of the spoke buses; default ``"spoke1"``, ``"spoke2"``, ….
    hub_name
        Name of the hub bus.
    demand_mw
        Nominal demand per bus (hub first); empty for zero.

    Returns
    -------
    Network
        Network with the hub as slack.
    """
    k = len(spoke_limits_mw)
    names = list(spoke_names) if spoke_names is not None else [f"spoke{i + 1}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"hub_and_spoke: {len(names)} spoke names for {k} spokes")
    lines = tuple(
        Line(i + 1, 0, reactance=1.0, limit_mw=float(lim), name=f"{names[i]}-{hub_name}")
        for i, lim in enumerate(spoke_limits_mw)
    )
    return Network(
        buses=(hub_name, *names),
        lines=lines,
        generators=tuple(generators),
        slack=0,
        demand_mw=tuple(float(d) for d in demand_mw),
        name="hub-and-spoke",
    )


def pjm5bus() -> Network:
    """The PJM 5-bus test system, the built-in default network.

    Data from F. Li and R. Bo, "Small test systems for power system economic
    studies", IEEE PES General Meeting 2010 (also MATPOWER's ``case5.m``):
    buses A–E, reactances in p.u. on 100 MVA, limits 400 MW on A–B and
    240 MW on E–D (other lines unmonitored), loads 300/300/400 MW at B/C/D,
    and five units with linear costs: Alta (A, 40 MW, $14/MWh), Park City
    (A, 170 MW, $15), Solitude (C, 520 MW, $30), Sundance (D, 200 MW, $40),
    Brighton (E, 600 MW, $10). The paper gives no fuels (``"unspecified"``).
    Reference bus D, as in ``case5.m``. Its published DC-OPF LMPs are
    A 16.98, B 26.38, C 30.00, D 39.94, E 10.00 $/MWh.

    Returns
    -------
    Network
        The 5-bus network with its nominal load.
    """
    a, b, c, d, e = range(5)
    lines = (
        Line(a, b, 0.0281, 400.0, "A-B"),
        Line(a, d, 0.0304, math.inf, "A-D"),
        Line(a, e, 0.0064, math.inf, "A-E"),
        Line(b, c, 0.0108, math.inf, "B-C"),
        Line(c, d, 0.0297, math.inf, "C-D"),
        Line(d, e, 0.0297, 240.0, "D-E"),
    )
    gens = (
        Generator(a, "unspecified", 40.0, cost_b=14.0, name="Alta"),
        Generator(a, "unspecified", 170.0, cost_b=15.0, name="Park City"),
        Generator(c, "unspecified", 520.0, cost_b=30.0, name="Solitude"),
        Generator(d, "unspecified", 200.0, cost_b=40.0, name="Sundance"),
        Generator(e, "unspecified", 600.0, cost_b=10.0, name="Brighton"),
    )
    return Network(
        buses=("A", "B", "C", "D", "E"),
        lines=lines,
        generators=gens,
        slack=d,
        demand_mw=(0.0, 300.0, 300.0, 400.0, 0.0),
        name="pjm5bus",
    )


# ---------------------------------------------------------------------------
# Costs by fuel (SPEC §6, seed 003 Table 1)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FuelCostRange:
    """Uniform ranges from which a fuel's cost coefficients are drawn."""

    a: tuple[float, float]
    """Range of the quadratic coefficient a ($/MW²h)."""
    b: tuple[float, float]
    """Range of the linear coefficient b ($/MWh)."""


FUEL_COST_RANGES: Mapping[str, FuelCostRange] = {
    "oil": FuelCostRange(a=(0.0059, 0.0342), b=(19.98, 19.98)),
    "biomass": FuelCostRange(a=(0.001, 0.002), b=(28.45, 52.65)),
    "solar": FuelCostRange(a=(0.0, 0.0), b=(0.0, 0.0)),
    "wind": FuelCostRange(a=(0.0, 0.0), b=(0.0, 0.0)),
}
"""Seed 003 Table 1 (oil, biomass) and §5.1 (solar and wind at zero cost)."""


def redraw_costs_by_fuel(
    network: Network,
    rng: np.random.Generator,
    ranges: Mapping[str, FuelCostRange] = FUEL_COST_RANGES,
) -> Network:
    """Re-draw every generator's (a, b) uniformly from its fuel's range.

    Hawaii40's own cost coefficients are simulator placeholders; seed 003
    §5.1 uses oil a ∈ [0.0059, 0.0342] $/MW²h, b = 19.98 $/MWh; biomass
    a ∈ [0.001, 0.002], b ∈ [28.45, 52.65]; solar and wind at zero cost.
    Draws are made in generator order, a then b per unit, so one seed gives
    one set of costs. The drawn cost is the paper's ``a·p² + b·p``: a constant
    cost ``cost_c`` read from the case is set to zero.

    Parameters
    ----------
    network
        The network whose costs are replaced.
    rng
        The run's random generator (handed down, never global state).
    ranges
        Cost ranges per fuel; add entries to price other fuels.

    Returns
    -------
    Network
        A copy with the new costs.

    Raises
    ------
    ValueError
        If a generator's fuel has no range, naming the generator and fuel.
    """
    a_new, b_new = [], []
    for k, g in enumerate(network.generators):
        if g.fuel not in ranges:
            raise ValueError(
                f"redraw_costs_by_fuel: network.generators[{k}] ({g.name or g.bus}) has fuel "
                f"{g.fuel!r} with no cost range; known fuels: {sorted(ranges)}"
            )
        r = ranges[g.fuel]
        a_new.append(float(rng.uniform(*r.a)))
        b_new.append(float(rng.uniform(*r.b)))
    return network.with_costs(a_new, b_new, [0.0] * network.n_generators)
