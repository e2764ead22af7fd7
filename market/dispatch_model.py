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

__all__ = [
    "Corridors",
    "DispatchOptions",
    "clean_ptdf",
    "create_model",
    "monitored_lines",
    "must_run_mw",
    "set_demand",
    "slack_limits",
]


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


@dataclass(frozen=True)
class Corridors:
    """Monitored lines grouped into corridors: the parallel circuits joining two buses.

    Circuits in parallel split their corridor's flow in proportion to their
    susceptance, so their PTDF rows are proportional: the circuits with the
    smallest ``limit / share`` reach their limits together, the others never.
    A corridor's effect on prices is fixed, but how a solver spreads its dual
    over those circuits is not; :meth:`canonical` fixes it.
    """

    corridor: NDArray[np.intp]
    """Corridor of each line (−1 where unmonitored)."""
    sign: NDArray[np.float64]
    """+1 where the line runs from its corridor's lower-index bus, −1 otherwise."""
    share: NDArray[np.float64]
    """Share of its corridor's flow the line carries: b_l / Σ b over the corridor's
    circuits (unmonitored ones included)."""
    tight: NDArray[np.bool_]
    """The line is monitored and among its corridor's tightest circuits (those that
    reach their limits first, all together)."""
    tightest: NDArray[np.intp]
    """One tightest line per corridor (the first in line order), in line order."""

    @classmethod
    def of(cls, network: Network) -> Corridors:
        """Group the network's monitored lines into corridors."""
        low = np.minimum(network.line_from, network.line_to)
        high = np.maximum(network.line_from, network.line_to)
        pairs, pair_of = np.unique(np.stack([low, high], axis=1), axis=0, return_inverse=True)
        pair_of = pair_of.reshape(-1)
        b = 1.0 / network.line_reactance
        share = b / np.bincount(pair_of, weights=b, minlength=len(pairs))[pair_of]
        sign = np.where(network.line_from == low, 1.0, -1.0)
        monitored = np.isfinite(network.line_limit_mw)
        corridor = np.where(monitored, pair_of, -1)
        reach = np.full(network.n_lines, np.inf)  # corridor flow at which the line binds
        reach[monitored] = network.line_limit_mw[monitored] / np.abs(share[monitored])
        least = np.full(len(pairs), np.inf)
        np.minimum.at(least, pair_of[monitored], reach[monitored])
        tight = monitored & (reach <= least[pair_of] * (1.0 + 1e-9))
        first = {int(pair_of[k]): int(k) for k in np.flatnonzero(tight)[::-1]}
        tightest = np.array(sorted(first.values()), dtype=np.intp)
        return cls(corridor, sign, share, tight, tightest)

    def canonical(self, line_duals: NDArray[np.float64]) -> NDArray[np.float64]:
        """Spread each corridor's dual equally over its tightest circuits.

        The duals ``μ_l`` enter prices only through the corridor's total
        ``μ_c = Σ_l sign_l share_l μ_l``; each tightest circuit gets
        ``sign_l μ_c / Σ share`` (the same shadow price on every one), the
        others zero. Prices (``PTDFᵀ μ``) are unchanged.
        """
        monitored = self.corridor >= 0
        count = int(self.corridor.max(initial=-1)) + 1
        weighted = (self.sign * self.share * line_duals)[monitored]
        total = np.bincount(self.corridor[monitored], weights=weighted, minlength=count)
        at = self.corridor[self.tight]
        shares = np.bincount(at, weights=self.share[self.tight], minlength=count)
        out = np.zeros_like(line_duals)
        out[self.tight] = self.sign[self.tight] * total[at] / shares[at]
        return out


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
    """Demand as mutable Params: one per bus, plus what each bound needs.

    ``demand[n]`` is the step's d_n (MW) and ``shunt[n]`` the bus's fixed shunt
    load; the load is their sum. ``must_run[n]`` is the minimum output of the
    units at bus n. The derived ``shed_limit[n]``, ``surplus_limit[n]`` and
    ``demand_flow[l] = Σ_n PTDF_{l,n} (d_n + shunt_n)`` (the flow the load alone
    would cause on line l) are kept as Params too, so that a persistent solver
    updates one number per bound instead of re-evaluating a sum over buses.
    :func:`set_demand` keeps them consistent.
    """
    model.shunt = pyo.Param(model.buses, initialize=dict(enumerate(network.shunt_load_mw)))
    model.must_run = pyo.Param(model.buses, initialize=dict(enumerate(must_run_mw(network))))
    model.demand = pyo.Param(model.buses, initialize=0.0, mutable=True)
    model.shed_limit = pyo.Param(model.buses, initialize=0.0, mutable=True)
    model.surplus_limit = pyo.Param(model.buses, initialize=0.0, mutable=True)
    model.demand_flow = pyo.Param(model.lines, initialize=0.0, mutable=True)
    set_demand(model, network.nominal_demand_mw, ptdf_matrix)


def set_demand(
    model: pyo.ConcreteModel,
    demand_mw: ArrayLike,
    ptdf_matrix: NDArray,
    curtailable_mw: ArrayLike | None = None,
) -> None:
    """Set a step's demand on a model from :func:`create_model`.

    Parameters
    ----------
    model
        The model.
    demand_mw
        Net demand per bus (MW), without the network's shunt load.
    ptdf_matrix
        The PTDF the model was built with (lines × buses).
    curtailable_mw
        Output netted out of the demand that may be curtailed, per bus (MW);
        see :func:`slack_limits`.
    """
    d = np.asarray(demand_mw, dtype=float)
    shunt = np.array([pyo.value(model.shunt[n]) for n in model.buses])
    must_run = np.array([pyo.value(model.must_run[n]) for n in model.buses])
    shed, surplus = slack_limits(d + shunt, must_run, curtailable_mw)
    flow = ptdf_matrix @ (d + shunt)
    for n in model.buses:
        model.demand[n] = float(d[n])
        model.shed_limit[n] = float(shed[n])
        model.surplus_limit[n] = float(surplus[n])
    for line in model.lines:
        model.demand_flow[line] = float(flow[line])


def must_run_mw(network: Network) -> NDArray[np.float64]:
    """Minimum output of the units at each bus (MW): Σ_g at n of p_g^min."""
    out = np.bincount(network.gen_bus, weights=network.gen_pmin_mw, minlength=network.n_buses)
    return out.astype(float)


def slack_limits(
    load_mw: NDArray[np.float64],
    must_run: NDArray[np.float64],
    curtailable_mw: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Upper bounds of shed load and dumped surplus per bus (MW).

    A bus sheds at most its load, ``max(ℓ_n, 0)``. It dumps at most what can be
    curtailed there: the must-run output of its units (a unit's output above
    ``pmin`` is cheaper to lower than to dump while its marginal cost exceeds
    −surplus penalty) plus the supply netted out of its load — its net export
    ``max(−ℓ_n, 0)``, or ``curtailable_mw[n]`` if larger (renewable output
    that a positive net load hides). So no bus absorbs more than its own load:
    a transit bus cannot act as a phantom sink.

    Parameters
    ----------
    load_mw
        Net load per bus (MW): the step's demand plus the shunt load.
    must_run
        Minimum output of the units at each bus (MW).
    curtailable_mw
        Supply netted out of the load that may be curtailed, per bus (MW, ≥ 0);
        None for none beyond the net export.

    Returns
    -------
    tuple of numpy.ndarray
        ``(shed_limit, surplus_limit)``.
    """
    export = np.maximum(-load_mw, 0.0)
    if curtailable_mw is not None:
        export = np.maximum(export, np.asarray(curtailable_mw, dtype=float))
    return np.maximum(load_mw, 0.0), must_run + export


def define_generation(model: pyo.ConcreteModel, network: Network) -> None:
    """Generator outputs p_g (MW) within their limits, eq. (5)."""
    lo, hi = network.gen_pmin_mw, network.gen_pmax_mw
    model.p = pyo.Var(model.generators, bounds=lambda m, g: (float(lo[g]), float(hi[g])))


def define_shedding_and_surplus(model: pyo.ConcreteModel) -> None:
    """Shed load 0 ≤ s_n ≤ shed_limit[n] and dumped surplus 0 ≤ u_n ≤ surplus_limit[n] (MW)."""
    model.shed = pyo.Var(model.buses, bounds=lambda m, n: (0.0, m.shed_limit[n]))
    model.surplus = pyo.Var(model.buses, bounds=lambda m, n: (0.0, m.surplus_limit[n]))


def define_supply(model: pyo.ConcreteModel, network: Network) -> None:
    """Supply per bus: P_n + s_n − u_n (MW); the injection is this minus the load."""
    units_at: list[list[int]] = [[] for _ in range(network.n_buses)]
    for g, n in enumerate(network.gen_bus):
        units_at[int(n)].append(g)

    def supply(m: pyo.ConcreteModel, n: int) -> pyo.Expression:
        return pyo.quicksum(m.p[g] for g in units_at[n]) + m.shed[n] - m.surplus[n]

    model.supply = pyo.Expression(model.buses, rule=supply)


def define_power_balance(model: pyo.ConcreteModel) -> None:
    """System balance, eq. (3), with the shunt load; its dual is the hub price λ."""
    model.balance = pyo.Constraint(
        expr=pyo.quicksum(model.supply[n] for n in model.buses)
        == pyo.quicksum(model.demand[n] + model.shunt[n] for n in model.buses)
    )


def define_line_limits(model: pyo.ConcreteModel, network: Network, ptdf_matrix: NDArray) -> None:
    """PTDF flow limits on monitored lines, eq. (4).

    Flow_l = Σ_n PTDF_{l,n} (supply_n − load_n) = Σ_n PTDF_{l,n} supply_n − demand_flow_l.
    """
    limit = network.line_limit_mw

    def flow_limit(m: pyo.ConcreteModel, line: int) -> tuple:
        row = ptdf_matrix[line]
        flow = pyo.quicksum(float(row[n]) * m.supply[n] for n in np.flatnonzero(row))
        return (-float(limit[line]), flow - m.demand_flow[line], float(limit[line]))

    model.line_limit = pyo.Constraint(model.lines, rule=flow_limit)


def define_objective(model: pyo.ConcreteModel, network: Network, options: DispatchOptions) -> None:
    """Generation cost Σ a p² + b p + c plus priced shedding and surplus, eq. (2).

    The constant costs c (MATPOWER's c0) shift the cost, not any price.
    """
    a, b = network.gen_cost_a, network.gen_cost_b
    generation = pyo.quicksum(
        float(a[g]) * model.p[g] ** 2 + float(b[g]) * model.p[g]
        if a[g] > 0.0
        else float(b[g]) * model.p[g]
        for g in model.generators
    )
    slack_terms = options.value_of_lost_load * pyo.quicksum(model.shed[n] for n in model.buses)
    slack_terms += options.surplus_penalty * pyo.quicksum(model.surplus[n] for n in model.buses)
    constant = float(network.gen_cost_c.sum())
    model.cost = pyo.Objective(expr=generation + slack_terms + constant, sense=pyo.minimize)
