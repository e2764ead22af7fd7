"""MATPOWER case files → :class:`~market.network.Network` (DC data, costs, fuels).

Parsed with ``matpowercaseframes``; the ``mpc.genfuel`` cell array, which that
library does not read, is read here. Units as in :mod:`market.network`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
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
    :data:`MATPOWER_FUELS` (``"unknown"`` if absent). Out-of-service
    generators and branches are dropped. A branch's DC reactance is
    ``x·tap`` (tap 0 read as 1), as in MATPOWER's ``makeBdc``; ``RATE_A`` of 0
    means unmonitored. Costs must be polynomial (model 2) of degree ≤ 2.

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
        On a file that is not a MATPOWER case, piecewise-linear or cubic
        costs, or phase-shifting transformers.
    """
    file = Path(path)
    cases = _case_frames(file)
    bus = cases.bus
    gen = cases.gen
    branch = cases.branch
    gencost = cases.gencost

    bus_ids = bus["BUS_I"].to_numpy(dtype=int)
    index_of = {int(b): k for k, b in enumerate(bus_ids)}
    if "bus_name" in cases.attributes:
        bus_names = tuple(str(s) for s in cases.bus_name)
    else:
        bus_names = tuple(str(b) for b in bus_ids)
    ref = np.flatnonzero(bus["BUS_TYPE"].to_numpy(dtype=int) == 3)
    slack = int(ref[0]) if ref.size else 0

    lines = []
    for k, row in enumerate(branch.itertuples(index=False)):
        if int(row.BR_STATUS) == 0:
            continue
        if float(row.SHIFT) != 0.0:
            raise ValueError(
                f"{file.name}: branch {k + 1} has phase shift {row.SHIFT}; phase-shifting "
                "transformers are not supported by the DC PTDF model"
            )
        tap = float(row.TAP) or 1.0
        f, t = index_of[int(row.F_BUS)], index_of[int(row.T_BUS)]
        limit = float(row.RATE_A) or math.inf
        lines.append(Line(f, t, float(row.BR_X) * tap, limit, f"{bus_names[f]}-{bus_names[t]}"))

    text = file.read_text()
    generators = _in_service_generators(gen, gencost, text, index_of, bus_names, file.name)
    return Network(
        buses=bus_names,
        lines=tuple(lines),
        generators=generators,
        slack=slack,
        demand_mw=tuple(float(x) for x in bus["PD"].to_numpy(dtype=float)),
        name=name if name is not None else file.stem,
    )


def _in_service_generators(
    gen: pd.DataFrame,
    gencost: pd.DataFrame,
    text: str,
    index_of: Mapping[int, int],
    bus_names: Sequence[str],
    file_name: str,
) -> tuple[Generator, ...]:
    """The case's in-service units, their fuels (from the case file's ``text``) mapped
    through :data:`MATPOWER_FUELS`."""
    raw_fuels = _read_genfuel(text) or ["unknown"] * len(gen)
    if len(raw_fuels) != len(gen):
        raise ValueError(f"{file_name}: genfuel has {len(raw_fuels)} entries for {len(gen)} gens")
    generators = []
    for k in range(len(gen)):
        g = gen.iloc[k]
        if int(g["GEN_STATUS"]) == 0:
            continue
        a, b = _quadratic_cost(gencost.iloc[k], where=f"{file_name}: gencost row {k + 1}")
        fuel = MATPOWER_FUELS.get(raw_fuels[k].lower(), raw_fuels[k].lower())
        bus_k = index_of[int(g["GEN_BUS"])]
        generators.append(
            Generator(
                bus=bus_k,
                fuel=fuel,
                pmax_mw=float(g["PMAX"]),
                pmin_mw=float(g["PMIN"]),
                cost_a=a,
                cost_b=b,
                name=f"{bus_names[bus_k]} #{k + 1}",
            )
        )
    return tuple(generators)


def _quadratic_cost(row: object, *, where: str) -> tuple[float, float]:
    """(a, b) of a MATPOWER polynomial cost row ``c_{n-1} … c_1 c_0``."""
    values = [float(v) for v in row]  # type: ignore[attr-defined]
    model, ncost = int(values[0]), int(values[3])
    if model != 2:
        raise ValueError(f"{where}: cost model {model} (piecewise linear) is not supported")
    coeffs = values[4 : 4 + ncost]  # highest degree first
    higher = coeffs[: max(ncost - 3, 0)]
    if any(c != 0.0 for c in higher):
        raise ValueError(f"{where}: polynomial cost of degree {ncost - 1} > 2 is not supported")
    low = [0.0, 0.0, 0.0, *coeffs][-3:]  # c2, c1, c0
    return low[0], low[1]


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
