"""DC economic dispatch with locational marginal prices (seed 003 §2).

The dispatch of He & Liu, eqs. (2)–(5), in PTDF form::

    min   Σ_g (a_g p_g² + b_g p_g + c_g) + VOLL·Σ_n s_n + π·Σ_n u_n        (2)
    s.t.  Σ_g p_g + Σ_n (s_n − u_n) = Σ_n ℓ_n                  [λ]         (3)
          −F_l ≤ Σ_n PTDF_{l,n} (P_n + s_n − u_n − ℓ_n) ≤ F_l  [μ̲_l, μ̄_l]  (4)
          p_g^min ≤ p_g ≤ p_g^max                                          (5)
          0 ≤ s_n ≤ max(ℓ_n, 0),   0 ≤ u_n ≤ Σ_{g at n} p_g^min + max(−ℓ_n, r_n, 0)

with P_n the output of the units at bus n, ℓ_n the step's demand plus the
bus's shunt load and r_n the output netted out of it that the caller declares
curtailable. Load shed ``s_n`` (at the value of lost load) and dumped surplus
``u_n`` (at a penalty π) extend the paper so that every demand has a
solution; a HiGHS failure is then a solver failure, raised as
:class:`DispatchError` naming the time step. Surplus is dumped only where
something can be curtailed, so no bus takes more than its own load.

The LMP is the derivative of the Lagrangian (7) with respect to d_n, eq. (6)::

    LMP_n = λ − Σ_l PTDF_{l,n} (μ̄_l − μ̲_l)

λ is the hub (slack-bus) price, whose PTDF column is zero. HiGHS reports row
duals as ∂cost/∂(row bound); with the demand terms moved into the row bounds,
the dual of a line row is μ_l = μ̲_l − μ̄_l and LMP_n = λ + Σ_l PTDF_{l,n} μ_l.

:func:`market.dispatch_model.create_model` is the readable definition (it and
:class:`DispatchOptions`, the dispatch's settings, are importable from here).
:class:`EconomicDispatch` builds once and re-solves, through Pyomo's persistent
HiGHS interface or — the fast path — a ``highspy.Highs`` object updated in
place. Units: MW and $/MWh; :func:`to_dollars_per_kwh` converts at the
boundary. See docs/wholesale.md.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import pyomo.environ as pyo
from numpy.typing import ArrayLike, NDArray

from market.dispatch_model import (
    Corridors,
    DispatchOptions,
    clean_ptdf,
    create_model,
    must_run_mw,
    set_demand,
    slack_limits,
)
from market.network import Network

__all__ = [
    "QP_ATTEMPTS",
    "DispatchError",
    "DispatchOptions",
    "DispatchResult",
    "EconomicDispatch",
    "create_model",
    "set_demand",
    "to_dollars_per_kwh",
]

Method = Literal["highspy", "pyomo", "pyomo-rebuild"]

_FLAG_TOLERANCE_MW = 1e-6

QP_ATTEMPTS: tuple[Mapping[str, float], ...] = (
    {"qp_regularization_value": 1e-9},
    {"qp_regularization_value": 1e-10},
    {"qp_regularization_value": 1e-11},
    {"qp_regularization_value": 1e-7},  # HiGHS's default
)
"""HiGHS settings tried in turn until a QP solve ends optimal. With the default
1e-7 HiGHS's QP solver cycled or failed on 180 of 450 stressed Hawaii40
dispatches; with 1e-9 or 1e-10 it solved all 450 (docs/wholesale.md). The
value acts in the solver's factorisation, not in the model."""

_FINAL_STATUSES = (
    highspy.HighsModelStatus.kOptimal,
    highspy.HighsModelStatus.kTimeLimit,
    highspy.HighsModelStatus.kInterrupt,
)


@contextlib.contextmanager
def c_stdout_silenced() -> Iterator[None]:
    """Send what C code writes to standard output (file descriptor 1) to ``/dev/null``.

    HiGHS prints a banner from C when a solver object is made, past Python's
    ``sys.stdout``: a command's ``--json`` output must stay JSON and nothing
    else, so every HiGHS object is made inside this block.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class DispatchError(RuntimeError):
    """The solver failed on a dispatch that should always be feasible."""


@dataclass(frozen=True)
class DispatchResult:
    """Outcome of one economic dispatch (MW, $/MWh, $/h)."""

    time_step: int | None
    """The step this dispatch belongs to, if given."""
    demand_mw: NDArray[np.float64]
    """Demand per bus (MW), as given."""
    shunt_mw: NDArray[np.float64]
    """The network's fixed shunt load per bus (MW), dispatched with the demand:
    generation + shed − surplus = demand + shunt."""
    generation_mw: NDArray[np.float64]
    """Output per generator (MW)."""
    flow_mw: NDArray[np.float64]
    """Flow per line (MW), positive from ``from_bus`` to ``to_bus``; all lines."""
    lmp: NDArray[np.float64]
    """Locational marginal price per bus ($/MWh), eq. (6)."""
    hub_price: float
    """λ: the price at the hub (slack) bus ($/MWh), dual of eq. (3)."""
    line_shadow_price: NDArray[np.float64]
    """μ̄_l − μ̲_l per line ($/MWh per MW of limit), dual of eq. (4); zero
    where a line is unmonitored or not at its limit. Parallel circuits at their
    limit together carry equal shares of their corridor's price
    (:meth:`market.dispatch_model.Corridors.canonical`)."""
    shed_mw: NDArray[np.float64]
    """Load shed per bus (MW), priced at the value of lost load."""
    surplus_mw: NDArray[np.float64]
    """Surplus dumped per bus (MW), priced at the surplus penalty."""
    cost: float
    """Optimal objective ($/h): generation cost (constant terms c0 included) plus
    shedding and surplus."""

    @property
    def load_shed(self) -> bool:
        """True if any load was shed (demand could not be met)."""
        return bool(np.any(self.shed_mw > _FLAG_TOLERANCE_MW))

    @property
    def surplus_dumped(self) -> bool:
        """True if any surplus was dumped (supply could not be absorbed)."""
        return bool(np.any(self.surplus_mw > _FLAG_TOLERANCE_MW))

    @property
    def congestion_component(self) -> NDArray[np.float64]:
        """LMP minus hub price per bus ($/MWh): the congestion terms of eq. (6)."""
        return self.lmp - self.hub_price

    @property
    def lmp_per_kwh(self) -> NDArray[np.float64]:
        """LMPs in $/kWh, the household layer's unit."""
        return to_dollars_per_kwh(self.lmp)


def to_dollars_per_kwh(price_per_mwh: ArrayLike) -> NDArray[np.float64]:
    """Convert prices from $/MWh (wholesale layer) to $/kWh (household layer)."""
    return np.asarray(price_per_mwh, dtype=float) / 1000.0


# ---------------------------------------------------------------------------
# Solver paths. Each returns the raw solution in one layout.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Raw:
    generation: NDArray[np.float64]
    shed: NDArray[np.float64]
    surplus: NDArray[np.float64]
    balance_dual: float
    line_duals: NDArray[np.float64]  # μ_l = ∂cost/∂bound per line, 0 where no row
    objective: float


class _HighspyPath:
    """The dispatch held in one ``highspy.Highs`` object, updated in place.

    Columns: p (G), s (N), u (N). Row 0 is the balance (3), the others line
    limits (4); a new demand changes the balance's bound and the caps on
    shedding and surplus. Dense PTDF rows dominate the QP time and few lines
    bind, so a step starts from the balance row alone and re-solves, adding
    a row for each line whose flow exceeds its limit (one per corridor of
    parallel circuits), until none does: the result is optimal for the full
    model (which the Pyomo path solves; the tests compare them), and a line
    without a row has zero dual, as it has there when not binding. Rows are
    not kept from one step to the next: where the duals are not unique
    (linear costs at a breakpoint) the rows present choose among them, so a
    step's prices would otherwise depend on the steps before it.
    """

    def __init__(self, network: Network, matrix: NDArray, options: DispatchOptions) -> None:
        n_gen, n_bus = network.n_generators, network.n_buses
        self._n_gen, self._n_bus = n_gen, n_bus
        self._n_lines = network.n_lines
        self._lines = Corridors.of(network).tightest  # candidates for a row
        self._ptdf = np.ascontiguousarray(matrix[self._lines])  # candidates × buses
        self._limit = network.line_limit_mw[self._lines]
        self._tolerance = 1e-6 * np.maximum(self._limit, 1.0)  # MW
        self._gen_bus = network.gen_bus
        self._must_run = must_run_mw(network)
        self._active: list[int] = []  # positions among the candidates, in row order
        n_col = n_gen + 2 * n_bus
        # A unit at bus n and a shed at bus n share the column [1; PTDF[:, n]];
        # a surplus at bus n has its negative.
        self._row_coeffs = np.hstack([self._ptdf[:, network.gen_bus], self._ptdf, -self._ptdf])

        with c_stdout_silenced():  # highspy ≥ 1.16 prints its banner from the constructor
            h = self.highs = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("qp_iteration_limit", options.qp_iteration_limit)
        for key, val in options.highs_options.items():
            _check(h.setOptionValue(key, val), f"setOptionValue({key!r})")
        voll, penalty = options.value_of_lost_load, options.surplus_penalty
        cost = np.concatenate([network.gen_cost_b, np.full(n_bus, voll), np.full(n_bus, penalty)])
        lower = np.concatenate([network.gen_pmin_mw, np.zeros(2 * n_bus)])
        upper = np.concatenate([network.gen_pmax_mw, np.zeros(n_bus), np.full(n_bus, np.inf)])
        _check(h.addCols(n_col, cost, lower, upper, 0, [], [], []), "addCols")
        _check(h.changeObjectiveOffset(float(network.gen_cost_c.sum())), "changeObjectiveOffset")
        balance = np.concatenate([np.ones(n_gen + n_bus), -np.ones(n_bus)])
        cols = np.arange(n_col, dtype=np.int32)
        _check(h.addRows(1, [0.0], [0.0], n_col, [0], cols, balance), "addRows")
        # HiGHS minimises ½ xᵀQx + cᵀx, so a·p² needs Q_gg = 2a.
        if np.any(network.gen_cost_a > 0.0):
            diag = np.concatenate([2.0 * network.gen_cost_a, np.zeros(2 * n_bus)])
            triangular = int(highspy.HessianFormat.kTriangular)  # the binding takes an int
            starts = np.arange(n_col + 1, dtype=np.int32)
            status = h.passHessian(n_col, n_col, triangular, starts, cols, diag)
            _check(status, "passHessian")
        self._slack_cols = np.arange(n_gen, n_gen + 2 * n_bus, dtype=np.int32)
        self._zeros = np.zeros(2 * n_bus)

    def _add_rows(self, new: NDArray[np.intp], shift: NDArray) -> None:
        coeffs = self._row_coeffs[new]
        rows, cols = np.nonzero(coeffs)  # row-major: grouped by new row
        cols = cols.astype(np.int32)
        starts = np.searchsorted(rows, np.arange(new.size)).astype(np.int32)
        lower, upper = shift[new] - self._limit[new], shift[new] + self._limit[new]
        values = coeffs[rows, cols]
        status = self.highs.addRows(new.size, lower, upper, rows.size, starts, cols, values)
        _check(status, "addRows")
        self._active.extend(int(k) for k in new)

    def _run(self) -> str | None:
        """Run HiGHS through :data:`QP_ATTEMPTS`; None if optimal, else the status."""
        h = self.highs
        for attempt in QP_ATTEMPTS:
            for key, val in attempt.items():
                h.setOptionValue(key, val)
            h.clearSolver()  # a cold start each time: the QP solver does not warm-start
            h.run()
            status = h.getModelStatus()
            if status in _FINAL_STATUSES:
                break
        for key, val in QP_ATTEMPTS[0].items():
            h.setOptionValue(key, val)
        return (
            None if status == highspy.HighsModelStatus.kOptimal else h.modelStatusToString(status)
        )

    def solve(self, load: NDArray[np.float64], curtailable: NDArray | None) -> _Raw | str:
        h = self.highs
        if self._active:  # start from the balance row alone: see the class's docstring
            stale = np.arange(1, 1 + len(self._active), dtype=np.int32)
            _check(h.deleteRows(stale.size, stale), "deleteRows")
            self._active = []
        shift = self._ptdf @ load  # load-driven flow per monitored line
        total = load.sum()
        _check(h.changeRowBounds(0, total, total), "changeRowBounds")
        caps = np.concatenate(slack_limits(load, self._must_run, curtailable))
        h.changeColsBounds(caps.size, self._slack_cols, self._zeros, caps)
        g, n = self._n_gen, self._n_bus
        while True:
            failure = self._run()
            if failure is not None:
                return failure
            x = np.asarray(h.getSolution().col_value)
            supply = np.bincount(self._gen_bus, weights=x[:g], minlength=n) + x[g : g + n]
            flow = self._ptdf @ (supply - x[g + n :]) - shift
            violated = np.flatnonzero(np.abs(flow) > self._limit + self._tolerance)
            if violated.size == 0:
                break
            self._add_rows(violated, shift)  # none of them has a row yet
        y = np.asarray(h.getSolution().row_dual)
        line_duals = np.zeros(self._n_lines)
        line_duals[self._lines[np.array(self._active, dtype=np.intp)]] = y[1:]
        return _Raw(
            generation=x[:g],
            shed=x[g : g + n],
            surplus=x[g + n :],
            balance_dual=float(y[0]),
            line_duals=line_duals,
            objective=float(h.getInfo().objective_function_value),
        )


class _PyomoPath:
    """The Pyomo model solved through Pyomo's persistent HiGHS interface."""

    def __init__(
        self, network: Network, matrix: NDArray, options: DispatchOptions, *, rebuild: bool
    ) -> None:
        self._network, self._matrix, self._options = network, matrix, options
        self._rebuild = rebuild
        self.model = create_model(network, matrix, options)
        self._solver = None if rebuild else self._new_solver(options)

    @staticmethod
    def _new_solver(options: DispatchOptions):  # Pyomo's contrib solver, imported when needed
        from pyomo.contrib.solver.solvers.highs import Highs

        solver = Highs()
        solver.config.solver_options["qp_iteration_limit"] = options.qp_iteration_limit
        solver.config.solver_options.update(options.highs_options)
        solver.config.load_solutions = False
        solver.config.raise_exception_on_nonoptimal_result = False
        # The model's structure never changes: only the demand Params do.
        for name in solver.config.auto_updates:
            setattr(solver.config.auto_updates, name, name == "update_parameters")
        return solver

    def solve(self, load: NDArray[np.float64], curtailable: NDArray | None) -> _Raw | str:
        from pyomo.contrib.solver.common.results import TerminationCondition

        if self._rebuild:
            self.model = create_model(self._network, self._matrix, self._options)
            solver = self._new_solver(self._options)
        else:
            solver = self._solver
        m = self.model
        set_demand(m, load - self._network.shunt_load_mw, self._matrix, curtailable)
        final = (
            TerminationCondition.convergenceCriteriaSatisfied,
            TerminationCondition.maxTimeLimit,
            TerminationCondition.interrupted,
        )
        for attempt in QP_ATTEMPTS:  # see QP_ATTEMPTS: retry a failed QP
            _cold_start(solver)
            options = {**solver.config.solver_options, **attempt}
            with c_stdout_silenced():  # the interface makes its HiGHS object here
                results = solver.solve(m, solver_options=options)
            if results.termination_condition in final:
                break
        if results.termination_condition != TerminationCondition.convergenceCriteriaSatisfied:
            return str(results.termination_condition)
        loader = results.solution_loader
        primal = loader.get_vars()
        constraints = [m.balance, *(m.line_limit[k] for k in m.lines)]
        duals = loader.get_duals(constraints)
        return _Raw(
            generation=np.array([primal[m.p[g]] for g in m.generators]),
            shed=np.array([primal[m.shed[n]] for n in m.buses]),
            surplus=np.array([primal[m.surplus[n]] for n in m.buses]),
            balance_dual=float(duals[m.balance]),
            line_duals=_scatter(
                self._network.n_lines, list(m.lines), [duals[m.line_limit[k]] for k in m.lines]
            ),
            objective=float(results.incumbent_objective),
        )


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------
class EconomicDispatch:
    """Economic dispatch of one network, built once and re-solved per step.

    Parameters
    ----------
    network
        The network (generators, lines, PTDF).
    options
        Value of lost load, surplus penalty, PTDF tolerance.
    method
        ``"highspy"`` (fast path, default), ``"pyomo"`` (persistent Pyomo
        model) or ``"pyomo-rebuild"`` (a fresh Pyomo model per step; for
        reference and benchmarks). All give the same LMPs.

    Examples
    --------
    >>> from market.network import pjm5bus
    >>> ed = EconomicDispatch(pjm5bus())
    >>> result = ed.solve(pjm5bus().nominal_demand_mw, time_step=0)
    >>> round(float(result.lmp[4]), 2)  # Brighton's bus E
    10.0
    """

    def __init__(
        self,
        network: Network,
        options: DispatchOptions | None = None,
        *,
        method: Method = "highspy",
    ) -> None:
        self.network = network
        self.options = options or DispatchOptions()
        self.method = method
        self.ptdf = clean_ptdf(network, None, self.options)
        self.ptdf.setflags(write=False)
        self._corridors = Corridors.of(network)
        if method == "highspy":
            self._path: _HighspyPath | _PyomoPath = _HighspyPath(network, self.ptdf, self.options)
        elif method in ("pyomo", "pyomo-rebuild"):
            self._path = _PyomoPath(
                network, self.ptdf, self.options, rebuild=method == "pyomo-rebuild"
            )
        else:
            raise ValueError(f"method: {method!r} is not 'highspy', 'pyomo' or 'pyomo-rebuild'")

    @property
    def model(self) -> pyo.ConcreteModel | None:
        """The Pyomo model behind the ``"pyomo"`` paths (None for ``"highspy"``)."""
        return self._path.model if isinstance(self._path, _PyomoPath) else None

    def solve(
        self,
        demand_mw: ArrayLike,
        *,
        curtailable_mw: ArrayLike | None = None,
        time_step: int | None = None,
    ) -> DispatchResult:
        """Dispatch for one step's demand.

        Parameters
        ----------
        demand_mw
            Net demand per bus (MW); negative where prosumers or renewables
            supply the bus. The network's shunt load is added to it.
        curtailable_mw
            Supply netted out of ``demand_mw`` that may be curtailed, per bus
            (MW, ≥ 0), e.g. renewable output entered as negative demand. A
            bus's dumped surplus is at most its units' must-run output plus
            the larger of this and its net export
            (:func:`market.dispatch_model.slack_limits`). None: the net
            export only.
        time_step
            The step's index, carried into the result and any error.

        Returns
        -------
        DispatchResult
            Generation, flows, LMPs (eq. (6)), shedding and cost.

        Raises
        ------
        ValueError
            If the demand has the wrong shape or is not finite.
        DispatchError
            If HiGHS does not reach an optimum, naming the time step.
        """
        step = "unspecified" if time_step is None else time_step
        demand = np.array(demand_mw, dtype=float)
        if demand.shape != (self.network.n_buses,):
            raise ValueError(
                f"demand_mw at time step {step}: shape {demand.shape}, expected "
                f"({self.network.n_buses},) — one value per bus"
            )
        if not np.all(np.isfinite(demand)):
            raise ValueError(f"demand_mw at time step {step}: contains non-finite values")
        curtailable = None
        if curtailable_mw is not None:
            curtailable = np.array(curtailable_mw, dtype=float)
            valid = np.isfinite(curtailable) & (curtailable >= 0.0)
            if curtailable.shape != demand.shape or not np.all(valid):
                raise ValueError(
                    f"curtailable_mw at time step {step}: {curtailable.shape} values, expected "
                    f"{demand.shape} finite values ≥ 0 — one per bus"
                )
        raw = self._path.solve(demand + self.network.shunt_load_mw, curtailable)
        if isinstance(raw, str):
            raise DispatchError(
                f"economic dispatch failed at time step {step}: HiGHS ended with '{raw}' "
                f"({self.method} path, network {self.network.name!r})"
            )
        return self._result(raw, demand, time_step)

    def _result(self, raw: _Raw, demand: NDArray, time_step: int | None) -> DispatchResult:
        net = self.network
        injection = np.bincount(net.gen_bus, weights=raw.generation, minlength=net.n_buses)
        injection += raw.shed - raw.surplus - demand - net.shunt_load_mw
        mu = self._corridors.canonical(raw.line_duals)
        # Eq. (6): LMP_n = λ + Σ_l PTDF_{l,n} μ_l with μ_l = ∂cost/∂bound = μ̲_l − μ̄_l.
        lmp = raw.balance_dual + self.ptdf.T @ mu
        return DispatchResult(
            time_step=time_step,
            demand_mw=_ro(demand),
            shunt_mw=_ro(net.shunt_load_mw),
            generation_mw=_ro(raw.generation),
            flow_mw=_ro(self.ptdf @ injection),
            lmp=_ro(lmp),
            hub_price=raw.balance_dual,
            line_shadow_price=_ro(0.0 - mu),
            shed_mw=_ro(raw.shed),
            surplus_mw=_ro(raw.surplus),
            cost=raw.objective,
        )


def _cold_start(solver: object) -> None:
    """Drop the basis Pyomo's persistent HiGHS interface would warm-start the next solve from.

    Where the duals are not unique (linear costs at a breakpoint) a warm start
    picks prices that depend on the steps solved before; from a cold start a
    step's prices depend on its demand alone, as on the fast path. The
    interface has no public way to do this: its ``highspy.Highs`` object is
    ``_solver_model`` (Pyomo 6.10), absent before the first solve.
    """
    highs = getattr(solver, "_solver_model", None)
    if highs is not None:
        highs.clearSolver()


def _scatter(size: int, index: list[int], values: list[float]) -> NDArray[np.float64]:
    out = np.zeros(size)
    out[np.array(index, dtype=np.intp)] = values
    return out


def _ro(a: NDArray) -> NDArray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _check(status: highspy.HighsStatus, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise DispatchError(f"HiGHS rejected the dispatch model in {what}")
