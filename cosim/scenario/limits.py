"""What a run will cost — memory and time — estimated from a scenario's sizes before any work.

A scenario can be valid field by field and still not fit the machine: ten
thousand clusters, ten thousand SoE points or a hundred million households
ask for more memory than a workstation has, and the ``MemoryError`` used to
come after the whole solve. :func:`solve_cost` and :func:`simulation_cost`
price the parts of a run from the scenario alone (no game is built, nothing
is allocated); :func:`limit_violations` turns each part whose memory exceeds
:func:`memory_limit` into one :class:`~market.schema.Violation` naming the
field (or option) that drives it, its value, the estimate and the limit. Time
is never refused — an estimate is rough, and a long run may be wanted —
:func:`time_note` gives one line when a run will take long.

Memory, from the peak resident size measured on scenarios of 2–3000 clusters,
11–401 SoE points and 10⁴–4·10⁵ households (the models lie 0–50 % above the
measurements):

* the solver's largest arrays are those of the continuous-game check
  (:func:`models.exploitability.continuous_exploitability`): about five
  float64 per cluster, step and point of its grids, which are
  :data:`~models.exploitability.CONTINUOUS_REFINE` times finer than the law's;
  each equilibrium kept (three for ``compare-modes`` and ``run``) holds about
  four per point of the law's own grids; the distances, graphon and their
  products four per pair of clusters;
* the simulation keeps, per household, its columnar state, its Mesa agent
  and its share of the tables (1.75 KiB, plus 8 B per step of the day), per
  household-day its bills and EV schedule (224 B), and per step of the run
  the records of every cluster and the engine's events (8 KiB plus 1 KiB per
  cluster);
* the interpreter and the libraries, 300 MiB.

Time, on an idle 2-core machine: the level from ``docs/performance.md``
(``paper_gmfg``'s solve, the simulation benchmarks), the shape fitted to solves
of 1–3000 clusters, 24–96 steps and 11–3201 SoE points. A fixed-point iteration
costs ``3.8·10⁻⁸ s`` per cluster, step and SoE point (both batteries) plus
``2·10⁻⁸ s`` per cluster and *squared* point — a step's best response scans
the points a battery can reach in a step, so that part does not grow with the
number of steps but with ``√Δt`` (from ``Δt = 15 min``) — and a solve takes
about :data:`TYPICAL_ITERATIONS` of them, each also ``4·10⁻⁴ s`` per cluster
whatever its grids; the continuous-game check costs ``9.1·10⁻⁹ s`` per
cluster and squared point of its fine grids, also times ``√(Δt / 15 min)``;
the graphon's monotonicity check ``5·10⁻¹⁰ s`` per cubed cluster. The
simulation: 15 µs to set up each household, 22 M household-steps per second
in the compiled kernel (56 000 on the per-agent reference path), and 1 ms per
step plus 50 µs per cluster and step in the event engine. Measured under load
the solver's figures were 2–3× these; an estimate is good to a factor of two.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from market.schema import Violation
from models.config import GameConfig
from models.exploitability import CONTINUOUS_REFINE
from models.game import ev_grid_points

__all__ = [
    "MEMORY_VARIABLE",
    "NOTE_SECONDS",
    "Cost",
    "MemoryLimit",
    "format_bytes",
    "format_seconds",
    "limit_violations",
    "memory_limit",
    "parse_bytes",
    "simulation_cost",
    "solve_cost",
    "time_note",
]

KIB = 1024
MIB = KIB**2
GIB = KIB**3

#: Environment variable holding the memory the checks compare with (``64GiB``, ``500MB``);
#: unset, the machine's physical memory (or its cgroup's limit, when lower).
MEMORY_VARIABLE = "COSIM_MEMORY_LIMIT"
#: A run estimated to take longer than this [s] gets a note on standard error.
NOTE_SECONDS = 600.0

#: The interpreter and the libraries (NumPy, numba, pandas, Mesa, SimPy) [B].
BASE_BYTES = 300 * MIB
#: The solver's working arrays per cluster, step and point of the check's fine grids [B].
SOLVER_BYTES_PER_CELL = 5 * 8
#: An equilibrium kept, per cluster, step and point of the law's grids [B].
RESULT_BYTES_PER_CELL = 4 * 8
#: Distances, graphon and their products per pair of clusters [B].
BYTES_PER_CLUSTER_PAIR = 4 * 8
#: Per simulated household: columns, Mesa agent, share of the tables [B] ...
HOUSEHOLD_BYTES = 1792
#: ... plus this per step of the day [B] ...
HOUSEHOLD_STEP_BYTES = 8
#: ... and this per household-day: bills, private costs, EV schedule, rows [B].
HOUSEHOLD_DAY_BYTES = 224
#: Per step of a simulation: the engine's events and scalar records [B] ...
STEP_BYTES = 8 * KIB
#: ... plus this per cluster: interval books, prices, recorded trajectories [B].
CLUSTER_STEP_BYTES = KIB

#: Fixed-point iterations a solve is taken to need (converged solves take 20–100).
TYPICAL_ITERATIONS = 40
#: A fixed-point iteration, per cluster, step and SoE point of both batteries [s] ...
ITERATION_SECONDS_PER_POINT = 3.8e-8
#: ... plus this per cluster and squared SoE point, at :data:`REFERENCE_STEP_H` [s].
ITERATION_SECONDS_PER_POINT_SQUARED = 2e-8
#: The continuous-game check, per cluster and squared point of its fine grids, at
#: :data:`REFERENCE_STEP_H` [s].
CHECK_SECONDS_PER_POINT_SQUARED = 9.1e-9
#: The control step the squared terms were measured at; they grow as its square root [h].
REFERENCE_STEP_H = 0.25
#: A fixed-point iteration's own work per cluster, whatever its grids [s].
ITERATION_SECONDS_PER_CLUSTER = 4e-4
#: The graphon's monotonicity check, an eigendecomposition, per cubed cluster [s].
EIGEN_SECONDS_PER_CLUSTER_CUBED = 5e-10
#: Setting up one household of a simulation: its state, its Mesa agent [s].
HOUSEHOLD_SECONDS = 1.5e-5
#: A household-step of the compiled kernel, and of the per-agent reference path [s].
KERNEL_SECONDS = 1 / 22.3e6
REFERENCE_SECONDS = 1 / 56_300
#: A step of the event engine, and its part per cluster [s].
STEP_SECONDS = 1e-3
CLUSTER_STEP_SECONDS = 5e-5


@dataclass(frozen=True)
class Cost:
    """What one part of a run needs, and the setting that drives it most."""

    what: str
    """The part, as a sentence's subject: ``"solving 3 equilibria"``, ``"simulating"``."""
    path: str
    """Field of the scenario (``clusters.count``) or command-line option (``--days``)."""
    value: object
    """Its value."""
    bytes: float
    """Memory the part needs beyond the interpreter's [B]."""
    seconds: float
    """Time it takes [s]; 0 when not estimated."""
    sizes: str
    """The sizes the memory follows, for the message."""
    work: str = ""
    """The work the time follows, for the note."""


@dataclass(frozen=True)
class MemoryLimit:
    """The memory a run may use, and where that figure comes from."""

    bytes: float
    source: str
    """``"this machine has"``, ``"this machine's cgroup allows"`` or ``"COSIM_MEMORY_LIMIT is"``."""

    def __str__(self) -> str:
        return f"{self.source} {format_bytes(self.bytes)}"


def _ev_points(config: GameConfig) -> float:
    """:func:`models.game.ev_grid_points`, infinite where its range overflows."""
    try:
        return float(ev_grid_points(config))
    except (OverflowError, ValueError):  # an EV range over a subnormal spacing
        return math.inf


def _fine(points: float) -> float:
    """Points of the continuous-game check's grid for a law grid of ``points``."""
    return CONTINUOUS_REFINE * (points - 1) + 1


# Products, not powers, below: a float power that overflows raises where a product is inf.


def solve_cost(
    config: GameConfig,
    solves: int = 1,
    clusters: int | None = None,
    clusters_path: str = "clusters.count",
) -> Cost:
    """Memory and time of ``solves`` equilibria of ``config``'s game, solved one after another.

    Parameters
    ----------
    config
        A valid configuration (its fields passed their checks).
    solves
        Equilibria solved and kept (three for ``compare-modes`` and ``run``).
    clusters
        The number of clusters, when the command sets it (``epsilon --clusters``).
    clusters_path
        Where that number comes from, for the message.
    """
    m = float(clusters or config.clusters.count)
    k = float(config.time.steps)
    s, s_ev = float(config.solver.soe_points), _ev_points(config)
    fine, fine_ev = _fine(s), _fine(s_ev)
    working = (
        SOLVER_BYTES_PER_CELL * m * (k + 1) * (fine + fine_ev) + BYTES_PER_CLUSTER_PAIR * m * m
    )
    kept = RESULT_BYTES_PER_CELL * m * (k + 1) * (s + s_ev) * solves
    reach = math.sqrt(config.time.dt_h / REFERENCE_STEP_H)  # how far a step's scan goes
    iteration = m * (
        ITERATION_SECONDS_PER_CLUSTER
        + ITERATION_SECONDS_PER_POINT * k * (s + s_ev)
        + ITERATION_SECONDS_PER_POINT_SQUARED * reach * (s * s + s_ev * s_ev)
    )
    check = CHECK_SECONDS_PER_POINT_SQUARED * reach * m * (fine * fine + fine_ev * fine_ev)
    eigen = EIGEN_SECONDS_PER_CLUSTER_CUBED * m * m * m
    path, value = _solve_driver(config, clusters, clusters_path, s_ev)
    return Cost(
        what="solving the equilibrium" if solves == 1 else f"solving {solves} equilibria",
        path=path,
        value=value,
        bytes=working + kept,
        seconds=solves * (TYPICAL_ITERATIONS * iteration + check + eigen),
        sizes=f"{m:.0f} clusters × {k:.0f} steps × {_count(fine + fine_ev)} SoE points "
        f"on the {CONTINUOUS_REFINE}× finer grids of the continuous-game check",
        work=f"{'each ' if solves > 1 else ''}~{TYPICAL_ITERATIONS} fixed-point iterations of "
        f"{format_seconds(iteration)} and {format_seconds(check)} for the continuous-game check",
    )


def _solve_driver(
    config: GameConfig, clusters: int | None, clusters_path: str, s_ev: float
) -> tuple[str, object]:
    """The setting furthest above the default scenario's, as a factor of the solve's size."""
    default = GameConfig()
    s, d_s, d_ev = config.solver.soe_points, default.solver.soe_points, ev_grid_points(default)
    m = clusters or config.clusters.count
    factors: list[tuple[float, str, object]] = [  # on a tie the first is named
        (m / default.clusters.count, clusters_path, m),
        (s / d_s, "solver.soe_points", s),
    ]
    if config.solver.ev_soe_points is not None:
        factors.append((s_ev / d_ev, "solver.ev_soe_points", config.solver.ev_soe_points))
    else:  # the EV's points follow its range on the home battery's spacing
        capacity = config.household.ev.capacity_kwh
        factors.append(((s_ev / s) / (d_ev / d_s), "household.ev.capacity_kwh", capacity))
    factors.append((config.time.steps / default.time.steps, "time.dt_h", config.time.dt_h))
    _, path, value = max(factors, key=lambda factor: factor[0])
    return path, value


def simulation_cost(
    config: GameConfig,
    households: int | Sequence[int],
    days: int,
    reference: bool = False,
    households_path: str = "clusters.households",
    days_path: str = "simulation.days",
    copies: int = 1,
) -> Cost:
    """Memory and time of a co-simulation of ``households`` per cluster over ``days``.

    Parameters
    ----------
    config
        A valid configuration (its fields passed their checks).
    households
        Households per cluster: one number for each of the scenario's clusters, or
        one per cluster (as many clusters as numbers).
    days
        Days simulated.
    reference
        Whether the households step as Python agents (the reference path).
    households_path, days_path
        Where ``households`` and ``days`` come from, for the message.
    copies
        Simulations held at once (parallel workers).
    """
    if isinstance(households, int):
        per_cluster = [households] * config.clusters.count
    else:
        per_cluster = list(households)
    m = len(per_cluster)
    n, k = float(sum(per_cluster)), float(config.time.steps)
    steps = float(days) * k
    by_household = n * (HOUSEHOLD_BYTES + HOUSEHOLD_STEP_BYTES * k + HOUSEHOLD_DAY_BYTES * days)
    by_step = steps * (STEP_BYTES + CLUSTER_STEP_BYTES * m)
    kernel = REFERENCE_SECONDS if reference else KERNEL_SECONDS
    engine = steps * (STEP_SECONDS + CLUSTER_STEP_SECONDS * m)
    path, value = (households_path, households) if by_household >= by_step else (days_path, days)
    return Cost(
        what="simulating",
        path=path,
        value=value,
        bytes=copies * (by_household + by_step),
        seconds=n * (HOUSEHOLD_SECONDS + steps * kernel) + engine,
        sizes=f"{n:.0f} households × {days} day{'s' if days != 1 else ''} of {k:.0f} steps"
        + (f", {copies} at once" if copies > 1 else ""),
        work=f"{_count(n * steps)} household-steps, {_count(steps)} steps of the event engine",
    )


def limit_violations(costs: Sequence[Cost], limit: MemoryLimit | None) -> list[Violation]:
    """One violation per part of a run that cannot fit in ``limit``; ``[]`` when all fit.

    A part is refused when it alone, with the interpreter, exceeds the limit;
    when none does but the whole run does, the largest part is, with the
    whole run's figure.
    """
    if limit is None:
        return []

    def violation(cost: Cost, whole: str = "") -> Violation:
        need = format_bytes(BASE_BYTES + cost.bytes)
        rule = f"{cost.what} needs about {need} ({cost.sizes}){whole}; {limit}"
        return Violation(cost.path, cost.value, rule)

    out = [violation(c) for c in costs if not BASE_BYTES + c.bytes <= limit.bytes]
    total = BASE_BYTES + sum(c.bytes for c in costs)
    if costs and not out and not total <= limit.bytes:
        largest = max(costs, key=lambda c: c.bytes)
        out.append(violation(largest, f", the whole run about {format_bytes(total)}"))
    return out


def time_note(costs: Sequence[Cost], threshold: float = NOTE_SECONDS) -> str | None:
    """One line on a run that will take longer than ``threshold`` seconds; ``None`` otherwise."""
    timed = [c for c in costs if c.seconds > 0]
    total = sum(c.seconds for c in timed)
    if not total > threshold:
        return None
    parts = "; ".join(f"{c.what} {format_seconds(c.seconds)} ({c.work})" for c in timed)
    return f"about {format_seconds(total)} of computing: {parts}"


def memory_limit(environ: Mapping[str, str] | None = None) -> MemoryLimit | None:
    """The memory a run may use: :data:`MEMORY_VARIABLE` if set, else the machine's.

    The machine's is its physical memory, or its cgroup's limit when that is
    lower; ``None`` when neither can be read (no check is made then).

    Raises
    ------
    ValueError
        When :data:`MEMORY_VARIABLE` is set to something that is not an amount.
    """
    given = (os.environ if environ is None else environ).get(MEMORY_VARIABLE, "").strip()
    if given:
        return MemoryLimit(parse_bytes(given), f"{MEMORY_VARIABLE} is")
    try:
        physical = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        physical = math.inf
    cgroup = _cgroup_limit()
    if cgroup < physical:
        return MemoryLimit(cgroup, "this machine's cgroup allows")
    return MemoryLimit(physical, "this machine has") if math.isfinite(physical) else None


def _cgroup_limit() -> float:
    """The memory limit of this process's cgroup (v2 or v1) [B]; infinite when none is set."""
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():
            return float(text)
    return math.inf


_AMOUNT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(i?)(b?)", re.IGNORECASE)


def parse_bytes(text: str) -> float:
    """An amount of memory: ``64GiB``, ``64G`` (both 2³⁰-based), ``500MB`` (10⁶-based), ``1e9``.

    Raises
    ------
    ValueError
        When ``text`` is not a positive amount.
    """
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if value > 0 and math.isfinite(value):
            return value
        raise ValueError("not an amount of memory (like 64GiB or 500MB)")
    number, prefix, binary, unit = match.groups()
    power = "kmgtp".find(prefix.lower()) + 1
    base = 1000 if unit and not binary and prefix else 1024
    value = float(number) * base**power
    if not value > 0:
        raise ValueError("must be more than nothing")
    return value


def format_bytes(amount: float) -> str:
    """``21.8 TiB``: an amount of memory in binary units."""
    if not math.isfinite(amount):
        return "more than can be counted"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if amount < 1024 or unit == "PiB":
            break
        amount /= 1024
    return f"{amount:.0f} B" if unit == "B" else f"{amount:.3g} {unit}"


def format_seconds(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.2 h``, ``5.1 days``: a duration, to two or three digits."""
    if not math.isfinite(seconds):
        return "forever"
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h"
    return f"{seconds / 86400:.3g} days"


def _count(number: float) -> str:
    """A count as people read it: ``3962``, ``2.4e+09``."""
    return f"{number:.0f}" if number < 1e7 else f"{number:.2g}"
