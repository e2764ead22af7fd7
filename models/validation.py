"""Rules that tie the fields of a :class:`~models.config.GameConfig` together.

The types and ranges of each field are checked by pydantic when the
configuration is built; the rules here need several fields at once (a list
with one value per cluster, a window inside the day, a matrix of the right
shape, a file that exists). :func:`game_violations` returns every broken rule;
:func:`check_game_config` refuses a configuration that breaks any, and
:func:`models.game.build_game` calls it, so a game is never built from an
inconsistent configuration. The scenario loader reports the same violations
with the file's name (:mod:`cosim.scenario.game`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from market.pricing import PriceConfig
from market.schema import ClusterValue, ConfigError, UniformRange, Violation, timezone_violations
from models.config import (
    GameConfig,
    HouseholdConfig,
    TimeConfig,
    missing_file_rule,
    scenario_path,
)
from models.coupling import read_network
from models.graphon import distance_violations, load_distance_file

#: Length of the game [h]: one day, which the co-simulation repeats.
DAY_H = 24.0
#: Finest control grid accepted: 30-second steps over a day.
MAX_STEPS = 2880


def check_game_config(config: GameConfig, base_dir: Path | None = None) -> None:
    """Refuse a configuration that breaks a rule of :func:`game_violations`.

    Raises
    ------
    market.schema.ConfigError
        Listing every violation, one ``path: value: rule`` per line.
    """
    problems = game_violations(config, base_dir)
    if problems:
        raise ConfigError(problems)


def game_violations(config: GameConfig, base_dir: Path | None = None) -> list[Violation]:
    """Every rule tying fields of ``config`` together that it breaks; empty when consistent.

    Parameters
    ----------
    config
        A configuration whose fields passed their own checks.
    base_dir
        Directory that relative file names in ``config`` refer to.
    """
    m = config.clusters.count
    return [
        *time_violations(config.time),
        *timezone_violations("location.timezone", config.location.timezone),
        *cluster_violations(config),
        *distance_matrix_violations(config, base_dir),
        *wholesale_violations(config, base_dir),
        *household_violations(config.household, m),
        *storage_violations(config.household),
        *ev_violations(config.household),
        *shiftable_violations(config.household, config.time.dt_h),
        *price_violations(config.prices, m),
    ]


def time_violations(t: TimeConfig) -> list[Violation]:
    """One day, cut into a whole number of steps, not too many of them.

    The co-simulation repeats the day on a 24-hour clock (its run length, the
    EV trips drawn per day, the daily bills), so a shorter horizon would let
    a later day's events fall outside the control steps: it is refused.
    """
    if t.horizon_h != DAY_H:
        rule = "the game covers one day: must be 24 h (the co-simulation repeats whole days)"
        return [Violation("time.horizon_h", t.horizon_h, rule)]
    steps = t.horizon_h / t.dt_h
    if not steps <= MAX_STEPS:
        return [Violation("time.dt_h", t.dt_h, f"too small: at most {MAX_STEPS} steps per day")]
    if abs(steps - round(steps)) > 1e-9:
        return [Violation("time.dt_h", t.dt_h, f"must divide time.horizon_h ({t.horizon_h})")]
    return []


def cluster_violations(config: GameConfig) -> list[Violation]:
    """Households per cluster and the generic agent's cluster fit ``clusters.count``."""
    c = config.clusters
    m = c.count
    out = []
    if isinstance(c.households, list):
        if len(c.households) != m:
            rule = f"needs one value per cluster ({m})"
            out.append(Violation("clusters.households", c.households, rule))
        if any(n < 1 for n in c.households):
            rule = "every cluster needs ≥ 1 household"
            out.append(Violation("clusters.households", c.households, rule))
    elif c.households < 1:
        out.append(Violation("clusters.households", c.households, "must be ≥ 1"))
    if c.generic_cluster is not None and c.generic_cluster >= m:
        rule = f"must be < clusters.count ({m})"
        out.append(Violation("clusters.generic_cluster", c.generic_cluster, rule))
    return out


def distance_matrix_violations(config: GameConfig, base_dir: Path | None) -> list[Violation]:
    """A given distance matrix (inline or in a file) is a valid ``M×M`` matrix."""
    d = config.clusters.distances
    unused = [
        Violation(f"clusters.distances.{name}", getattr(d, name), f"only used when kind = '{name}'")
        for name in ("matrix", "file")
        if getattr(d, name) is not None and d.kind != name
    ]
    if unused:
        return unused
    path = f"clusters.distances.{d.kind}"
    if d.kind == "matrix":
        if d.matrix is None:
            return [Violation(path, None, "required when kind = 'matrix'")]
        if len({len(row) for row in d.matrix}) > 1:
            return [Violation(path, d.matrix, "rows must have equal length")]
        e = np.asarray(d.matrix, dtype=float).reshape(len(d.matrix), -1 if d.matrix else 0)
    elif d.kind == "file":
        if d.file is None:
            return [Violation(path, None, "required when kind = 'file'")]
        file = scenario_path(d.file, base_dir)
        if not file.is_file():
            return [Violation(path, d.file, "file not found")]
        try:
            e = load_distance_file(file)
        except ValueError as exc:
            return [Violation(path, d.file, f"not a numeric CSV matrix ({exc})")]
        if e.ndim != 2:
            e = e.reshape(1, -1)
    else:
        return []
    shape = f"{e.shape[0]}×{e.shape[1]} matrix"
    return [Violation(path, shape, rule) for rule in distance_violations(e, config.clusters.count)]


def wholesale_violations(config: GameConfig, base_dir: Path | None) -> list[Violation]:
    """The ``[wholesale]`` table's network file exists and holds its bus."""
    w = config.wholesale
    if w is None:
        return []
    name = w.network_file
    if name is not None and not scenario_path(name, base_dir).is_file():
        return [Violation("wholesale.network_file", name, missing_file_rule(name, base_dir))]
    try:
        network = read_network(w.network_file, base_dir)
    except OSError as exc:
        return [Violation("wholesale.network_file", w.network_file, f"cannot read ({exc})")]
    except ValueError as exc:  # not a case, or one this dispatch cannot use
        return [Violation("wholesale.network_file", w.network_file, str(exc))]
    if w.bus >= network.n_buses:
        rule = f"must be < {network.n_buses} (buses of {network.name})"
        return [Violation("wholesale.bus", w.bus, rule)]
    return []


def cluster_value_violations(
    path: str, value: ClusterValue, count: int, lo: float | None, hi: float | None
) -> list[Violation]:
    """A per-cluster value has one entry per cluster (or a valid range), all in ``[lo, hi]``."""
    out = []
    if isinstance(value, list):
        if len(value) != count:
            out.append(Violation(path, value, f"needs one value per cluster ({count})"))
        values = value
    elif isinstance(value, UniformRange):
        if value.low > value.high:
            out.append(Violation(path, value.model_dump(), "low must not exceed high"))
        values = [value.low, value.high]
    else:
        values = [value]
    for v in values:
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            out.append(Violation(path, v, f"must lie in {bounds}"))
            break
    return out


def household_violations(hh: HouseholdConfig, count: int) -> list[Violation]:
    """The per-cluster household parameters."""
    return [
        *cluster_value_violations(
            "household.pv.capacity_kwp", hh.pv.capacity_kwp, count, 0.0, 1000.0
        ),
        *cluster_value_violations("household.load.scale", hh.load.scale, count, 0.0, 100.0),
        *cluster_value_violations("household.ev.share", hh.ev.share, count, 0.0, 1.0),
    ]


def storage_violations(hh: HouseholdConfig) -> list[Violation]:
    """Each battery has room above its floor and starts between floor and capacity."""
    out = []
    for name, dev in (("ess", hh.ess), ("ev", hh.ev)):
        lo = dev.min_fraction * dev.capacity_kwh
        if dev.min_fraction >= 1.0:
            out.append(Violation(f"household.{name}.min_fraction", dev.min_fraction, "must be < 1"))
        if not lo <= dev.initial_mean_kwh <= dev.capacity_kwh:
            rule = f"must lie in [b_min, capacity] = [{lo:g}, {dev.capacity_kwh:g}] kWh"
            out.append(Violation(f"household.{name}.initial_mean_kwh", dev.initial_mean_kwh, rule))
    return out


def ev_violations(hh: HouseholdConfig) -> list[Violation]:
    """The EV leaves before it comes back, and its departure target fits the battery."""
    ev = hh.ev
    out = [
        Violation(f"household.ev.{field}", list(window), "start must not be after end")
        for field, window in (
            ("departure_window_h", ev.departure_window_h),
            ("arrival_window_h", ev.arrival_window_h),
        )
        if window[0] > window[1]
    ]
    if ev.departure_window_h[1] > ev.arrival_window_h[0]:
        rule = "must start after the departure window ends"
        out.append(Violation("household.ev.arrival_window_h", list(ev.arrival_window_h), rule))
    if ev.departure_target_kwh > ev.capacity_kwh:
        rule = "must not exceed capacity_kwh"
        out.append(Violation("household.ev.departure_target_kwh", ev.departure_target_kwh, rule))
    return out


def shiftable_violations(hh: HouseholdConfig, dt_h: float) -> list[Violation]:
    """The shiftable appliance's window is open long enough, and its energy is at least a step."""
    sh = hh.shiftable
    if sh.window_h[0] >= sh.window_h[1]:
        return [
            Violation("household.shiftable.window_h", list(sh.window_h), "start must be before end")
        ]
    if sh.energy_kwh > sh.power_kw * (sh.window_h[1] - sh.window_h[0]) + 1e-9:
        rule = "cannot run within the window at power_kw"
        return [Violation("household.shiftable.energy_kwh", sh.energy_kwh, rule)]
    if sh.energy_kwh < 0.5 * sh.power_kw * dt_h:
        rule = "is less than half a step at power_kw"
        return [Violation("household.shiftable.energy_kwh", sh.energy_kwh, rule)]
    return []


def price_violations(pr: PriceConfig, count: int) -> list[Violation]:
    """The grid tariff, both price functions and the weights of every mode."""
    out = []
    grid = pr.grid_price if isinstance(pr.grid_price, list) else [pr.grid_price]
    if isinstance(pr.grid_price, list) and len(pr.grid_price) != 24:
        rule = "give one value or 24 hourly values"
        out.append(Violation("prices.grid_price", pr.grid_price, rule))
    if any(not np.isfinite(g) or g <= 0 for g in grid):
        out.append(Violation("prices.grid_price", pr.grid_price, "must be > 0 $/kWh"))
    for name, fn in (("rpc", pr.rpc), ("coc", pr.coc)):
        where = f"prices.{name}"
        out += cluster_value_violations(
            f"{where}.network_charge", fn.network_charge, count, 0.0, 10.0
        )
        out += cluster_value_violations(f"{where}.slope", fn.slope, count, 0.0, 10.0)
        if grid and fn.floor > min(grid):
            out.append(Violation(f"{where}.floor", fn.floor, "must not exceed the grid price"))
    return out + weight_violations(pr)


def weight_violations(pr: PriceConfig) -> list[Violation]:
    """Each mode's weights: one triple or 24, each summing to 1; no CoC share in RPC-only mode."""
    out = []
    for mode in ("rpc", "coc"):
        table = getattr(pr.weights, mode)
        hourly = isinstance(table[0], list)
        triples = table if hourly else [table]
        if hourly and len(table) != 24:
            rule = "give one triple or 24 hourly triples"
            out.append(Violation(f"prices.weights.{mode}", table, rule))
        for i, w in enumerate(triples):
            where = f"prices.weights.{mode}" + (f"[{i}]" if hourly else "")
            if abs(sum(w) - 1.0) > 1e-9:
                out.append(Violation(where, list(w), "weights must sum to 1"))
            if mode == "rpc" and w[1] != 0:
                rule = "RPC-only mode has no inter-cluster weight (w2 = 0)"
                out.append(Violation(where, list(w), rule))
    return out
