"""Scenario files: TOML → a typed, frozen :class:`Scenario`, validated before any work.

A scenario file holds everything a run needs. Validation happens once, here,
in two passes: the types and ranges of every field (pydantic, from the
configuration classes), then the rules that tie fields together (shapes,
windows, sums). Every violation is reported — not just the first — as
``FILE: path.to.field: value: rule``, and :class:`ScenarioError` carries them
all; the command line prints them and exits with status 2.
"""

from __future__ import annotations

import hashlib
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from market.schema import UNION_TAGS, ClusterValue, Frozen, UniformRange
from models.config import GameConfig, PositiveFloat, scenario_path
from models.coupling import read_network
from models.game import build_distances, game_rng
from models.graphon import distance_violations

#: Finest control grid accepted: 30-second steps over a day.
MAX_STEPS = 2880


class ScenarioInfo(Frozen):
    """What the scenario is."""

    name: str = Field("scenario", min_length=1, description="Short name, used in result folders.")
    description: str = Field("", description="One paragraph on what the scenario studies.")


class SimulationConfig(Frozen):
    """The finite-N co-simulation (SPEC §5)."""

    mode: Literal["standalone", "rpc", "coc"] = Field(
        "coc", description="Trading mode whose law the households apply and whose prices settle."
    )
    days: int = Field(1, ge=1, le=3650, description="Days simulated.")
    households_per_cluster: int | None = Field(
        None, ge=1, le=10_000_000, description="Override of clusters.households for the simulation."
    )
    record_households: int = Field(
        2, ge=0, le=1000, description="Households per cluster whose trajectories are recorded."
    )
    market_interval_h: PositiveFloat = Field(
        1.0, description="Market interval [h]; a multiple of time.dt_h."
    )


class Scenario(GameConfig):
    """A complete scenario: the game, the simulation, and what identifies the run."""

    scenario: ScenarioInfo = Field(default_factory=ScenarioInfo)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, what value, which rule."""

    path: str
    value: object
    rule: str

    def format(self, file: str) -> str:
        """``FILE: path.to.field: value: rule`` (``FILE: line L, column C: …`` for bad TOML)."""
        if self.path == "(toml)":
            return f"{file}: {self.rule}"
        return f"{file}: {self.path}: {_show(self.value)}: {self.rule}"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``violations`` lists every reason."""

    def __init__(self, file: str, violations: list[Violation]) -> None:
        self.file = file
        self.violations = violations
        super().__init__("\n".join(v.format(file) for v in violations))


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with where it came from."""

    scenario: Scenario
    path: Path | None
    sha256: str
    """Hash of the file's bytes (or of the canonical JSON for in-memory scenarios)."""

    @property
    def base_dir(self) -> Path | None:
        """Directory that relative paths in the scenario refer to."""
        return None if self.path is None else self.path.parent


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _loc(parts: tuple) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def pydantic_violations(error: ValidationError) -> list[Violation]:
    found: dict[tuple[str, str], Violation] = {}
    for item in error.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if p not in UNION_TAGS)
        rule = item["msg"]
        if item["type"] == "extra_forbidden":
            rule = "unknown field (not part of the scenario format)"
        elif item["type"] == "missing":
            rule = "required field is missing"
        elif item["type"] == "union_tag_invalid":
            rule = "unexpected shape"
        value = None if item["type"] == "missing" else item.get("input")
        found.setdefault((_loc(loc), rule), Violation(_loc(loc), value, rule))
    return list(found.values())


def timezone_violations(path: str, name: str) -> list[Violation]:
    """``[]`` for a known IANA time zone, else one violation at ``path``."""
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # zoneinfo raises several kinds: not found, a folder, a bad key
        return [Violation(path, name, "unknown IANA time zone")]
    return []


def _cluster_value_violations(
    path: str, value: ClusterValue, count: int, lo: float | None, hi: float | None
) -> list[Violation]:
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


def consistency_violations(s: Scenario, base_dir: Path | None) -> list[Violation]:
    """Rules that tie fields together; empty when the scenario is consistent."""
    out: list[Violation] = []
    t = s.time
    steps = t.horizon_h / t.dt_h
    if t.horizon_h > 24.0:
        out.append(
            Violation("time.horizon_h", t.horizon_h, "the game covers one day (at most 24 h)")
        )
    elif not steps <= MAX_STEPS:
        out.append(Violation("time.dt_h", t.dt_h, f"too small: at most {MAX_STEPS} steps per day"))
    elif abs(steps - round(steps)) > 1e-9:
        out.append(Violation("time.dt_h", t.dt_h, f"must divide time.horizon_h ({t.horizon_h})"))
    ratio = s.simulation.market_interval_h / t.dt_h
    time_ok = not out  # the interval rule only makes sense on a valid control grid
    if time_ok and (abs(ratio - round(ratio)) > 1e-9 or ratio < 1):
        out.append(
            Violation(
                "simulation.market_interval_h",
                s.simulation.market_interval_h,
                f"must be a multiple of time.dt_h ({t.dt_h})",
            )
        )
    out += timezone_violations("location.timezone", s.location.timezone)

    c = s.clusters
    m = c.count
    if isinstance(c.households, list):
        if len(c.households) != m:
            out.append(
                Violation("clusters.households", c.households, f"needs one value per cluster ({m})")
            )
        if any(n < 1 for n in c.households):
            out.append(
                Violation("clusters.households", c.households, "every cluster needs ≥ 1 household")
            )
    elif c.households < 1:
        out.append(Violation("clusters.households", c.households, "must be ≥ 1"))
    if c.generic_cluster is not None and c.generic_cluster >= m:
        out.append(
            Violation(
                "clusters.generic_cluster", c.generic_cluster, f"must be < clusters.count ({m})"
            )
        )
    out += _distance_violations(s, base_dir)
    out += _wholesale_violations(s, base_dir)

    hh = s.household
    out += _cluster_value_violations(
        "household.pv.capacity_kwp", hh.pv.capacity_kwp, m, 0.0, 1000.0
    )
    out += _cluster_value_violations("household.load.scale", hh.load.scale, m, 0.0, 100.0)
    out += _cluster_value_violations("household.ev.share", hh.ev.share, m, 0.0, 1.0)
    for name, dev in (("ess", hh.ess), ("ev", hh.ev)):
        lo = dev.min_fraction * dev.capacity_kwh
        if dev.min_fraction >= 1.0:
            out.append(Violation(f"household.{name}.min_fraction", dev.min_fraction, "must be < 1"))
        if not lo <= dev.initial_mean_kwh <= dev.capacity_kwh:
            out.append(
                Violation(
                    f"household.{name}.initial_mean_kwh",
                    dev.initial_mean_kwh,
                    f"must lie in [b_min, capacity] = [{lo:g}, {dev.capacity_kwh:g}] kWh",
                )
            )
    ev = hh.ev
    for field, window in (
        ("departure_window_h", ev.departure_window_h),
        ("arrival_window_h", ev.arrival_window_h),
    ):
        if window[0] > window[1]:
            out.append(
                Violation(f"household.ev.{field}", list(window), "start must not be after end")
            )
    if ev.departure_window_h[1] > ev.arrival_window_h[0]:
        out.append(
            Violation(
                "household.ev.arrival_window_h",
                list(ev.arrival_window_h),
                "must start after the departure window ends",
            )
        )
    if ev.departure_target_kwh > ev.capacity_kwh:
        out.append(
            Violation(
                "household.ev.departure_target_kwh",
                ev.departure_target_kwh,
                "must not exceed capacity_kwh",
            )
        )
    sh = hh.shiftable
    if sh.window_h[0] >= sh.window_h[1]:
        out.append(
            Violation("household.shiftable.window_h", list(sh.window_h), "start must be before end")
        )
    elif sh.energy_kwh > sh.power_kw * (sh.window_h[1] - sh.window_h[0]) + 1e-9:
        out.append(
            Violation(
                "household.shiftable.energy_kwh",
                sh.energy_kwh,
                "cannot run within the window at power_kw",
            )
        )
    elif sh.energy_kwh < 0.5 * sh.power_kw * t.dt_h:
        out.append(
            Violation(
                "household.shiftable.energy_kwh",
                sh.energy_kwh,
                "is less than half a step at power_kw",
            )
        )
    out += _price_violations(s)
    return out


def _distance_violations(s: Scenario, base_dir: Path | None) -> list[Violation]:
    d = s.clusters.distances
    m = s.clusters.count
    unused = [
        Violation(f"clusters.distances.{name}", getattr(d, name), f"only used when kind = '{name}'")
        for name in ("matrix", "file")
        if getattr(d, name) is not None and d.kind != name
    ]
    if unused:
        return unused
    if d.kind == "matrix":
        if d.matrix is None:
            return [Violation("clusters.distances.matrix", None, "required when kind = 'matrix'")]
        rows = {len(r) for r in d.matrix}
        if len(rows) > 1:
            return [Violation("clusters.distances.matrix", d.matrix, "rows must have equal length")]
        e = np.asarray(d.matrix, dtype=float).reshape(len(d.matrix), -1 if d.matrix else 0)
        path = "clusters.distances.matrix"
    elif d.kind == "file":
        if d.file is None:
            return [Violation("clusters.distances.file", None, "required when kind = 'file'")]
        file = scenario_path(d.file, base_dir)
        if not file.is_file():
            return [Violation("clusters.distances.file", d.file, "file not found")]
        try:
            e = build_distances(s, game_rng(s.seed, 0), base_dir)
        except ValueError as exc:
            return [
                Violation("clusters.distances.file", d.file, f"not a numeric CSV matrix ({exc})")
            ]
        if e.ndim != 2:
            e = e.reshape(1, -1)
        path = "clusters.distances.file"
    else:
        return []
    return [
        Violation(path, f"{e.shape[0]}×{e.shape[1]} matrix", rule)
        for rule in distance_violations(e, m)
    ]


def _wholesale_violations(s: Scenario, base_dir: Path | None) -> list[Violation]:
    """The ``[wholesale]`` table's network file exists and holds its bus."""
    w = s.wholesale
    if w is None:
        return []
    file = None if w.network_file is None else scenario_path(w.network_file, base_dir)
    if file is not None and not file.is_file():
        return [
            Violation(
                "wholesale.network_file",
                w.network_file,
                f"file not found ({file}); docs/wholesale.md says where to get Hawaii40",
            )
        ]
    try:
        network = read_network(w.network_file, base_dir)
    except (OSError, ValueError) as exc:
        return [Violation("wholesale.network_file", w.network_file, f"not a MATPOWER case ({exc})")]
    if w.bus >= network.n_buses:
        return [
            Violation(
                "wholesale.bus", w.bus, f"must be < {network.n_buses} (buses of {network.name})"
            )
        ]
    return []


def _price_violations(s: Scenario) -> list[Violation]:
    out = []
    pr = s.prices
    m = s.clusters.count
    grid = pr.grid_price if isinstance(pr.grid_price, list) else [pr.grid_price]
    if isinstance(pr.grid_price, list) and len(pr.grid_price) != 24:
        out.append(
            Violation("prices.grid_price", pr.grid_price, "give one value or 24 hourly values")
        )
    if any(not np.isfinite(g) or g <= 0 for g in grid):
        out.append(Violation("prices.grid_price", pr.grid_price, "must be > 0 $/kWh"))
    for name, fn in (("rpc", pr.rpc), ("coc", pr.coc)):
        out += _cluster_value_violations(
            f"prices.{name}.network_charge", fn.network_charge, m, 0.0, 10.0
        )
        out += _cluster_value_violations(f"prices.{name}.slope", fn.slope, m, 0.0, 10.0)
        if grid and fn.floor > min(grid):
            out.append(
                Violation(f"prices.{name}.floor", fn.floor, "must not exceed the grid price")
            )
    for mode in ("rpc", "coc"):
        table = getattr(pr.weights, mode)
        hourly = isinstance(table[0], list)
        triples = table if hourly else [table]
        if hourly and len(table) != 24:
            out.append(
                Violation(f"prices.weights.{mode}", table, "give one triple or 24 hourly triples")
            )
        for i, w in enumerate(triples):
            where = f"prices.weights.{mode}" + (f"[{i}]" if hourly else "")
            if abs(sum(w) - 1.0) > 1e-9:
                out.append(Violation(where, list(w), "weights must sum to 1"))
            if mode == "rpc" and w[1] != 0:
                out.append(
                    Violation(where, list(w), "RPC-only mode has no inter-cluster weight (w2 = 0)")
                )
    return out


def parse_scenario(data: dict, file: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario given as a dictionary (as read from TOML).

    Raises
    ------
    ScenarioError
        With every violation found.
    """
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(file, pydantic_violations(exc)) from None
    problems = consistency_violations(scenario, base_dir)
    if problems:
        raise ScenarioError(file, problems)
    return scenario


def load_scenario(path: str | Path) -> LoadedScenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path
        A TOML scenario file.

    Raises
    ------
    ScenarioError
        For a missing or malformed file (with line and column) or any invalid field.
    """
    path = Path(path)
    data, raw = read_toml(path)
    scenario = parse_scenario(data, str(path), path.parent)
    return LoadedScenario(scenario, path.resolve(), hashlib.sha256(raw).hexdigest())


def read_toml(path: Path) -> tuple[dict, bytes]:
    """The parsed TOML file and its bytes (for hashing).

    Raises
    ------
    ScenarioError
        When the file cannot be read, is not UTF-8, or is malformed TOML (with
        the line and column of the first error).
    """
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(
            file, [Violation("(file)", file, f"cannot read: {exc.strerror}")]
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError:
        raise ScenarioError(file, [Violation("(file)", "bytes", "not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, [Violation("(toml)", "", _toml_message(str(exc)))]) from None


def _toml_message(message: str) -> str:
    """``Expected ... (at line 3, column 5)`` → ``line 3, column 5: expected ...``."""
    if "(at line" in message:
        text, _, where = message.rpartition("(at ")
        return f"{where.rstrip(')')}: malformed TOML: {text.strip()}"
    return f"malformed TOML: {message}"
