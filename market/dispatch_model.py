"""The economic dispatch as a Pyomo model, one ``define_*`` function per part (PyPSA style).

Seed 003 eqs. (2)–(5) in PTDF form. :func:`create_model` calls the
``define_*`` functions in order; :mod:`market.dispatch` solves the model (or
its ``highspy`` twin) and computes the LMPs. See :mod:`market.dispatch` for
the formulation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from numpy.typing import ArrayLike, NDArray

from market.network import Network, ptdf

__all__ = ["DispatchOptions", "clean_ptdf", "create_model", "monitored_lines", "set_demand"]


@dataclass(frozen=True)
class DispatchOptions:
    """Prices of the two slack terms and numerical settings of the dispatch."""

    value_of_lost_load: float = 10_000.0
    """VOLL: price of shed load ($/MWh); caps the LMP where load is shed."""
    surplus_penalty: float = 1_000.0
    """Price of dumped surplus ($/MWh); the LMP is −this where surplus is dumped."""
    ptdf_tolerance: float = 1e-10
    """PTDF entries with smaller magnitude are treated as zero."""
    qp_iteration_limit: int = 5_000
    """Iterations allowed to one HiGHS QP solve (a dispatch needs a few hundred).
    A solve that cycles into this limit, or ends in any other non-optimal state
    but a time limit, is retried with the next of :data:`market.dispatch.QP_ATTEMPTS`."""
    highs_options: Mapping[str, bool | int | float | str] = field(default_factory=dict, hash=False)
    """Extra HiGHS options (e.g. ``{"time_limit": 1.0}``), passed to both paths."""

    def __post_init__(self) -> None:
        if not self.value_of_lost_load > 0.0:
            raise ValueError(f"value_of_lost_load: {self.value_of_lost_load} must be > 0")
        if not self.surplus_penalty > 0.0:
            raise ValueError(f"surplus_penalty: {self.surplus_penalty} must be > 0")
        if not self.qp_iteration_limit > 0:
            raise ValueError(f"qp_iteration_limit: {self.qp_iteration_limit} must be > 0")
        if not self.ptdf_tolerance >= 0.0:
            raise ValueError(f"ptdf_tolerance: {self.ptdf_tolerance} must be ≥ 0")


def create_model(
    network: Network,
    ptdf_matrix: NDArray[np.float64] | None = None,
    options: DispatchOptions | None = None,
) -> pyo.ConcreteModel:
    """Build the economic dispatch, eqs. (2)–(5), as a Pyomo model.

    Parameters
    ----------
    network
        The network.
    ptdf_matrix
        PTDF (lines × buses); computed from the network if omitted.
    options
        Slack prices; defaults if omitted.

    Returns
    -------
    pyomo.environ.ConcreteModel
        The model, with mutable ``demand[n]`` set to the nominal demand.
    """
    options = options or DispatchOptions()
    matrix = clean_ptdf(network, ptdf_matrix, options)
    model = pyo.ConcreteModel(name=f"economic dispatch ({network.name or 'network'})")
    define_sets(model, network, monitored_lines(network))
    define_demand(model, network, matrix)
    define_generation(model, network)
    define_shedding_and_surplus(model)
    define_supply(model, network)
    define_power_balance(model)
    define_line_limits(model, network, matrix)
    define_objective(model, network, options)
    return model


def monitored_lines(network: Network) -> NDArray[np.intp]:
    """Indices of the lines with a finite limit: the only ones with a flow row."""
    return np.flatnonzero(np.isfinite(network.line_limit_mw))


def clean_ptdf(network: Network, matrix: NDArray | None, options: DispatchOptions) -> NDArray:
    """The PTDF (lines × buses), computed if not given, entries below the tolerance zeroed."""
    out = ptdf(network) if matrix is None else np.array(matrix, dtype=float)
    if out.shape != (network.n_lines, network.n_buses):
        raise ValueError(f"ptdf_matrix: shape {out.shape}, expected lines × buses")
    out[np.abs(out) < options.ptdf_tolerance] = 0.0
    return out


def define_sets(model: pyo.ConcreteModel, network: Network, monitored: NDArray[np.intp]) -> None:
    """Buses, generators and the monitored lines (finite limit)."""
    model.buses = pyo.Set(initialize=range(network.n_buses), ordered=True)
    model.generators = pyo.Set(initialize=range(network.n_generators), ordered=True)
    model.lines = pyo.Set(initialize=[int(k) for k in monitored], ordered=True)


def define_demand(model: pyo.ConcreteModel, network: Network, ptdf_matrix: NDArray) -> None:
    """Demand as mutable Params: one per bus, plus what each row bound needs.

    ``demand[n]`` is d_n (MW). The derived ``shed_limit[n] = max(d_n, 0)`` and
    ``demand_flow[l] = Σ_n PTDF_{l,n} d_n`` (the flow the demand alone would
    cause on line l) are kept as Params too, so that a persistent solver
    updates one number per bound instead of re-evaluating a sum over buses.
    :func:`set_demand` keeps the three consistent.
    """
    model.demand = pyo.Param(model.buses, initialize=0.0, mutable=True)
    model.shed_limit = pyo.Param(model.buses, initialize=0.0, mutable=True)
    model.demand_flow = pyo.Param(model.lines, initialize=0.0, mutable=True)
    set_demand(model, network.nominal_demand_mw, ptdf_matrix)


def set_demand(model: pyo.ConcreteModel, demand_mw: ArrayLike, ptdf_matrix: NDArray) -> None:
    """Set a step's demand (MW per bus) on a model from :func:`create_model`."""
    d = np.asarray(demand_mw, dtype=float)
    flow = ptdf_matrix @ d
    for n in model.buses:
        model.demand[n] = float(d[n])
        model.shed_limit[n] = max(float(d[n]), 0.0)
    for line in model.lines:
        model.demand_flow[line] = float(flow[line])


def define_generation(model: pyo.ConcreteModel, network: Network) -> None:
    """Generator outputs p_g (MW) within their limits, eq. (5)."""
    lo, hi = network.gen_pmin_mw, network.gen_pmax_mw
    model.p = pyo.Var(model.generators, bounds=lambda m, g: (float(lo[g]), float(hi[g])))


def define_shedding_and_surplus(model: pyo.ConcreteModel) -> None:
    """Shed load 0 ≤ s_n ≤ max(d_n, 0) and dumped surplus u_n ≥ 0 (MW)."""
    model.shed = pyo.Var(model.buses, bounds=lambda m, n: (0.0, m.shed_limit[n]))
    model.surplus = pyo.Var(model.buses, domain=pyo.NonNegativeReals)


def define_supply(model: pyo.ConcreteModel, network: Network) -> None:
    """Supply per bus: P_n + s_n − u_n (MW); the injection is this minus d_n."""
    units_at: list[list[int]] = [[] for _ in range(network.n_buses)]
    for g, n in enumerate(network.gen_bus):
        units_at[int(n)].append(g)

    def supply(m: pyo.ConcreteModel, n: int) -> pyo.Expression:
        return pyo.quicksum(m.p[g] for g in units_at[n]) + m.shed[n] - m.surplus[n]

    model.supply = pyo.Expression(model.buses, rule=supply)


def define_power_balance(model: pyo.ConcreteModel) -> None:
    """System balance, eq. (3); its dual is the hub price λ."""
    model.balance = pyo.Constraint(
        expr=pyo.quicksum(model.supply[n] for n in model.buses)
        == pyo.quicksum(model.demand[n] for n in model.buses)
    )


def define_line_limits(model: pyo.ConcreteModel, network: Network, ptdf_matrix: NDArray) -> None:
    """PTDF flow limits on monitored lines, eq. (4).

    Flow_l = Σ_n PTDF_{l,n} (supply_n − d_n) = Σ_n PTDF_{l,n} supply_n − demand_flow_l.
    """
    limit = network.line_limit_mw

    def flow_limit(m: pyo.ConcreteModel, line: int) -> tuple:
        row = ptdf_matrix[line]
        flow = pyo.quicksum(float(row[n]) * m.supply[n] for n in np.flatnonzero(row))
        return (-float(limit[line]), flow - m.demand_flow[line], float(limit[line]))

    model.line_limit = pyo.Constraint(model.lines, rule=flow_limit)


def define_objective(model: pyo.ConcreteModel, network: Network, options: DispatchOptions) -> None:
    """Generation cost Σ a p² + b p plus priced shedding and surplus, eq. (2)."""
    a, b = network.gen_cost_a, network.gen_cost_b
    generation = pyo.quicksum(
        float(a[g]) * model.p[g] ** 2 + float(b[g]) * model.p[g]
        if a[g] > 0.0
        else float(b[g]) * model.p[g]
        for g in model.generators
    )
    slack_terms = options.value_of_lost_load * pyo.quicksum(model.shed[n] for n in model.buses)
    slack_terms += options.surplus_penalty * pyo.quicksum(model.surplus[n] for n in model.buses)
    model.cost = pyo.Objective(expr=generation + slack_terms, sense=pyo.minimize)
