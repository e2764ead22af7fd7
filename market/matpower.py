"""MATPOWER case files → :class:`~market.network.Network` (DC data, costs, fuels).

Parsed with ``matpowercaseframes``; the ``mpc.genfuel`` cell array, which that
library does not read, is read here. Units as in :mod:`market.network`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from market.network import Generator, Line, Network

if TYPE_CHECKING:
    import pandas as pd
    from matpowercaseframes import CaseFrames

__all__ = ["MATPOWER_FUELS", "load_matpower"]


MATPOWER_FUELS: Mapping[str, str] = {
    "dfo": "oil",
    "rfo": "oil",
    "oil": "oil",
    "jetfuel": "oil",
    "wood": "biomass",
    "biomass": "biomass",
    "refuse": "biomass",
    "solar": "solar",
    "wind": "wind",
}
"""MATPOWER ``mpc.genfuel`` names mapped to our fuel categories. Hawaii40 uses
``dfo`` (distillate fuel oil) → oil, ``wood`` → biomass, ``solar``, ``wind``
and ``coal``; names not listed here (``coal``, ``ng``, …) are kept as read."""

_GENFUEL = re.compile(r"mpc\.genfuel\s*=\s*\{(?P<body>.*?)\}\s*;", re.DOTALL)


def _read_genfuel(text: str) -> list[str] | None:
    """The ``mpc.genfuel`` cell array, which matpowercaseframes does not read."""
    match = _GENFUEL.search(text)
    if match is None:
        return None
    names = []
    for raw in match.group("body").splitlines():
        entry = raw.split("%")[0].strip().rstrip(";").strip().strip("'\"")
        if entry:
            names.append(entry)
    return names


def load_matpower(path: str | PathLike[str], *, name: str | None = None) -> Network:
    """Read a MATPOWER case file into a :class:`Network` (DC data only).

    Parsed with ``matpowercaseframes``; the ``mpc.genfuel`` cell array (not
    read by that library) is read here and mapped through
    :data:`MATPOWER_FUELS` (``"unknown"`` if absent). As in MATPOWER's
    ``ext2int``, isolated buses (type 4) are dropped with the units and
    branches attached to them, and so are out-of-service units and branches.
    A branch's DC reactance is ``x·tap`` (tap 0 read as 1), as in MATPOWER's
    ``makeBdc``; ``RATE_A`` of 0 means unmonitored. A bus's shunt conductance
    ``GS`` is a fixed load of ``GS`` MW (at 1 p.u. voltage, as MATPOWER's DC
    model counts it). Costs must be polynomial (model 2) of degree ≤ 2; the
    constant ``c0`` becomes the unit's ``cost_c``. Lines are named
    ``"FROM-TO #row"`` and units ``"BUS #row"``, ``row`` being the 1-based row
    in the file's ``mpc.branch`` / ``mpc.gen``, the numbering every message
    uses.

    Parameters
    ----------
    path
        Path to a ``.m`` case file, e.g. Hawaii40.
    name
        Case name; defaults to the file's stem.

    Returns
    -------
    Network
        The network, slack at the case's reference bus (type 3).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        On a file that is not a MATPOWER case, a branch or unit at an unknown
        bus, a branch with zero reactance, a negative rating, piecewise-linear
        or cubic costs, or phase-shifting transformers — naming the row.
    """
    file = Path(path)
    cases = _case_frames(file)
    bus = cases.bus
    ids = bus["BUS_I"].to_numpy(dtype=int)
    kept = np.flatnonzero(bus["BUS_TYPE"].to_numpy(dtype=int) != _ISOLATED)
    if "bus_name" in cases.attributes:
        all_names = [str(s) for s in cases.bus_name]
    else:
        all_names = [str(b) for b in ids]
    bus_names = tuple(all_names[k] for k in kept)
    index_of = {int(ids[k]): i for i, k in enumerate(kept)}
    isolated = {int(b) for b in ids} - set(index_of)
    ref = np.flatnonzero(bus["BUS_TYPE"].to_numpy(dtype=int)[kept] == 3)
    where = _Where(file.name, index_of, isolated, bus_names)
    lines = _in_service_lines(cases.branch, where)
    generators = _in_service_generators(cases.gen, cases.gencost, file.read_text(), where)
    return Network(
        buses=bus_names,
        lines=lines,
        generators=generators,
        slack=int(ref[0]) if ref.size else 0,
        demand_mw=tuple(float(x) for x in bus["PD"].to_numpy(dtype=float)[kept]),
        name=name if name is not None else file.stem,
        shunt_mw=tuple(float(x) for x in bus["GS"].to_numpy(dtype=float)[kept]),
    )


_ISOLATED = 4
"""MATPOWER's bus type NONE: an isolated bus, ignored with what is attached to it."""


@dataclass(frozen=True)
class _Where:
    """What the row readers need to know of the case's buses, and the file's name."""

    file_name: str
    index_of: Mapping[int, int]
    """BUS_I → bus index in the network, for the buses kept."""
    isolated: set[int]
    """BUS_I of the buses dropped as isolated (type 4)."""
    bus_names: Sequence[str]

    def bus(self, bus_id: int, row: str) -> int | None:
        """The network index of a bus, None if isolated; an error naming ``row`` if unknown."""
        if bus_id in self.isolated:
            return None
        if bus_id not in self.index_of:
            raise ValueError(f"{self.file_name}: {row}: bus {bus_id} is not in mpc.bus")
        return self.index_of[bus_id]


def _in_service_lines(branch: pd.DataFrame, where: _Where) -> tuple[Line, ...]:
    """The case's in-service branches between non-isolated buses, checked row by row."""
    lines = []
    for k, row in enumerate(branch.itertuples(index=False)):
        if int(row.BR_STATUS) == 0:
            continue
        at = f"branch row {k + 1}"
        f, t = where.bus(int(row.F_BUS), at), where.bus(int(row.T_BUS), at)
        if f is None or t is None:
            continue  # attached to an isolated bus: MATPOWER takes it out of service
        names = f"{where.bus_names[f]}-{where.bus_names[t]}"
        at = f"{where.file_name}: {at} ({names})"
        if float(row.SHIFT) != 0.0:
            raise ValueError(
                f"{at}: phase shift {row.SHIFT}; phase-shifting transformers are not "
                "supported by the DC PTDF model"
            )
        if f == t:
            raise ValueError(f"{at}: joins bus {row.F_BUS} to itself")
        reactance = float(row.BR_X) * (float(row.TAP) or 1.0)
        if not (math.isfinite(reactance) and reactance != 0.0):
            raise ValueError(f"{at}: reactance x·tap = {reactance} must be finite, non-zero")
        rating = float(row.RATE_A)
        if not rating >= 0.0:
            raise ValueError(f"{at}: RATE_A {rating} must be ≥ 0 (0 = unmonitored)")
        lines.append(Line(f, t, reactance, rating or math.inf, f"{names} #{k + 1}"))
    return tuple(lines)


def _in_service_generators(
    gen: pd.DataFrame, gencost: pd.DataFrame, text: str, where: _Where
) -> tuple[Generator, ...]:
    """The case's in-service units at non-isolated buses, their fuels (from the case
    file's ``text``) mapped through :data:`MATPOWER_FUELS`."""
    file_name = where.file_name
    raw_fuels = _read_genfuel(text) or ["unknown"] * len(gen)
    if len(raw_fuels) != len(gen):
        raise ValueError(f"{file_name}: genfuel has {len(raw_fuels)} entries for {len(gen)} gens")
    generators = []
    for k in range(len(gen)):
        g = gen.iloc[k]
        bus_k = where.bus(int(g["GEN_BUS"]), f"gen row {k + 1}")
        if int(g["GEN_STATUS"]) == 0 or bus_k is None:
            continue
        a, b, c = _quadratic_cost(gencost.iloc[k], where=f"{file_name}: gencost row {k + 1}")
        fuel = MATPOWER_FUELS.get(raw_fuels[k].lower(), raw_fuels[k].lower())
        generators.append(
            Generator(
                bus=bus_k,
                fuel=fuel,
                pmax_mw=float(g["PMAX"]),
                pmin_mw=float(g["PMIN"]),
                cost_a=a,
                cost_b=b,
                name=f"{where.bus_names[bus_k]} #{k + 1}",
                cost_c=c,
            )
        )
    return tuple(generators)


def _quadratic_cost(row: object, *, where: str) -> tuple[float, float, float]:
    """(a, b, c) of a MATPOWER polynomial cost row ``c_{n-1} … c_1 c_0``."""
    values = [float(v) for v in row]  # type: ignore[attr-defined]
    model, ncost = int(values[0]), int(values[3])
    if model != 2:
        raise ValueError(f"{where}: cost model {model} (piecewise linear) is not supported")
    coeffs = values[4 : 4 + ncost]  # highest degree first
    higher = coeffs[: max(ncost - 3, 0)]
    if any(c != 0.0 for c in higher):
        raise ValueError(f"{where}: polynomial cost of degree {ncost - 1} > 2 is not supported")
    low = [0.0, 0.0, 0.0, *coeffs][-3:]  # c2, c1, c0
    return low[0], low[1], low[2]


def _case_frames(file: Path) -> CaseFrames:
    """The case's tables, parsed by ``matpowercaseframes``; a clear error for anything else."""
    from matpowercaseframes import CaseFrames

    if not file.is_file():
        raise FileNotFoundError(f"MATPOWER case not found: {file}")
    try:
        cases = CaseFrames(str(file))
        cases.bus, cases.gen, cases.branch, cases.gencost  # noqa: B018 (each must be there)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
        # matpowercaseframes fails with whatever its parser meets first
        raise ValueError(
            f"{file}: not a MATPOWER case (needs 'function mpc = …' with mpc.bus, mpc.gen, "
            "mpc.branch and mpc.gencost)"
        ) from None
    return cases
