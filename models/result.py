"""A solved equilibrium: the result object, its tables, and its directory on disk.

:class:`EquilibriumResult` is what :func:`models.equilibrium.solve_equilibrium`
returns. A saved equilibrium is a directory with

* ``game.json`` — the game configuration, from which the game is rebuilt;
* ``paths.json`` — where the scenario's relative file names point (an absolute
  ``base_dir``), if known when saving;
* ``equilibrium.npz`` — every array of the result (policy, flow, prices, …);
* ``summary.json`` — scalar diagnostics;
* ``prices.parquet`` — one row per cluster and step: prices and aggregates;
* ``clusters.parquet`` — one row per cluster: parameters, cost, exploitability;
* ``history.parquet`` — the fixed point's residuals per iteration;
* ``checksums.sha256`` — the SHA-256 of each file above
  (:mod:`models.checksums`), checked on reloading;
* ``manifest.json`` — what was saved, the seed and game configuration, package
  versions, git commit and time (:mod:`models.provenance`); a ``cosim``
  command writes its own, richer one over it.

Reloading rebuilds the game from ``game.json`` — a distances file or a
``[wholesale] network_file`` named relative to the scenario is read from the
saved ``base_dir``, whatever the working directory — and takes every array
from the NPZ file unchanged, so a reloaded result is bit-identical to the
saved one. A file that is missing, unreadable or differs from its checksum
raises :class:`~models.checksums.DamagedFileError` naming it; a result saved
before checksums were written is read unchecked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from market.pricing import Mode
from models.checksums import (
    DamagedFileError,
    read_checked,
    read_json,
    read_npz,
    verify_checksums,
    write_checksums,
)
from models.config import GameConfig
from models.game import Game, Prices, build_game
from models.graphon import graphon_aggregates
from models.provenance import write_manifest
from models.response import Flow, Policy

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Part = TypeVar("_Part", bound="DataclassInstance")

__all__ = [
    "EquilibriumResult",
    "equilibrium_tables",
    "load_equilibrium",
    "save_equilibrium",
    "summary",
]


@dataclass(frozen=True)
class EquilibriumResult:
    """The solved GMFG for one mode: law, prices, densities, aggregates and diagnostics."""

    mode: Mode
    game: Game
    """The game at the law's grid price (with a wholesale link: the law's own LMPs + adder)."""
    policy: Policy
    flow: Flow
    prices: Prices
    cost: np.ndarray
    """Expected daily cost per household of each cluster under the law at its prices [$]."""
    exploitability_by_cluster: np.ndarray
    history: list[dict[str, float]]
    converged: bool
    price_residual: float
    """Relative sup-norm gap between the law's prices and the last fixed-point prices."""
    exploitability: float
    """Largest exploitability over clusters, on the law's own grid [$ per household-day]."""
    exploitability_continuous: float
    """Largest exploitability over clusters in the continuous game [$ per household-day]
    (:func:`models.exploitability.continuous_exploitability`); NaN for a result saved
    before it was measured."""
    exploitability_continuous_by_cluster: np.ndarray
    """Per cluster, ``(M,)`` [$ per household-day]."""
    continuous_seconds: float
    """Seconds spent measuring the continuous-game exploitability (part of ``seconds``)."""
    mass_error: float
    min_density: float
    monotonicity: float
    seconds: float

    @property
    def iterations(self) -> int:
        """Fixed-point iterations performed."""
        return len(self.history)

    @property
    def aggregates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(m_p(k), A_p(k), M_g(k))`` of the law — eqs. (16)–(18)."""
        seen, scalar = graphon_aggregates(
            self.game.weights, self.game.clusters.shares, self.flow.net_kw
        )
        return self.flow.net_kw, seen, scalar

    @property
    def mean_cost(self) -> float:
        """Population mean of the daily cost per household [$]."""
        return float(self.game.clusters.shares @ self.cost)

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """The result's tables, as written by :meth:`save`.

        Returns
        -------
        dict of str to pandas.DataFrame
            ``"prices"``: one row per cluster and step (prices, aggregates and
            the mean flows of every device); ``"clusters"``: one row per
            cluster (parameters, expected daily cost, exploitability);
            ``"history"``: the fixed point's residuals per iteration.
        """
        return equilibrium_tables(self)

    def save(self, directory: str | Path) -> None:
        """Write the result into ``directory`` (see :func:`save_equilibrium`)."""
        save_equilibrium(self, directory)

    @classmethod
    def load(
        cls, directory: str | Path, game: Game | None = None, base_dir: str | Path | None = None
    ) -> EquilibriumResult:
        """Reload a result written by :meth:`save` or ``cosim solve``, bit-identical.

        Parameters
        ----------
        directory
            The result directory (``game.json``, ``equilibrium.npz``, …).
        game
            The game, if already built (rebuilt from ``game.json`` otherwise).
        base_dir
            Where the scenario's relative file names point, if not saved with
            the result (see :func:`load_equilibrium`).
        """
        return load_equilibrium(directory, game, base_dir)


_SCALARS = (
    "converged",
    "price_residual",
    "exploitability",
    "exploitability_continuous",
    "mass_error",
    "min_density",
    "monotonicity",
    "seconds",
    "continuous_seconds",
)

#: The files :func:`save_equilibrium` writes and :func:`load_equilibrium` reads
#: (``paths.json`` only when the game knows its ``base_dir``).
EQUILIBRIUM_FILES = (
    "game.json",
    "paths.json",
    "equilibrium.npz",
    "summary.json",
    "prices.parquet",
    "clusters.parquet",
    "history.parquet",
)

#: Scalars a result saved before they were measured reloads with.
_UNMEASURED = {"exploitability_continuous": float("nan"), "continuous_seconds": float("nan")}


def equilibrium_tables(result: EquilibriumResult) -> dict[str, pd.DataFrame]:
    """The result's tables: prices per cluster and step, clusters, residual history."""
    game = result.game
    m, k = result.prices.stage.shape
    net, seen, scalar = result.aggregates
    prices = pd.DataFrame(
        {
            "cluster": np.repeat(np.arange(m), k),
            "step": np.tile(np.arange(k), m),
            "hour": np.tile(game.step_hours, m),
            "p_rpc": result.prices.rpc.ravel(),
            "p_coc": result.prices.coc.ravel(),
            "p_stage": result.prices.stage.ravel(),
            "p_grid": np.tile(game.grid_price, m),
            "m_kw": net.ravel(),
            "a_kw": seen.ravel(),
            "mg_kw": np.tile(scalar, m),
            "ess_kw": result.flow.ess_kw.ravel(),
            "ev_kw": result.flow.ev_kw.ravel(),
            "shiftable_kw": result.flow.shiftable_kw.ravel(),
            "controllable_kw": result.flow.controllable_kw.ravel(),
            "exogenous_kw": result.flow.exogenous_kw.ravel(),
        }
    )
    cp = game.clusters
    clusters = pd.DataFrame(
        {
            "cluster": np.arange(m),
            "households": cp.households.astype(np.int64),
            "share": cp.shares,
            "pv_kwp": cp.pv_kwp,
            "load_kwh": cp.load_kwh,
            "ev_share": cp.ev_share,
            "rpc_network_charge": cp.rpc_network_charge,
            "rpc_slope": cp.rpc_slope,
            "coc_network_charge": cp.coc_network_charge,
            "coc_slope": cp.coc_slope,
            "cost": result.cost,
            "exploitability": result.exploitability_by_cluster,
            "exploitability_continuous": result.exploitability_continuous_by_cluster,
            "net_kwh": game.dt_h * net.sum(axis=1),
            "generic": np.arange(m) == game.generic_cluster,
        }
    )
    history = pd.DataFrame(result.history)
    return {"prices": prices, "clusters": clusters, "history": history}


def summary(result: EquilibriumResult) -> dict:
    """Scalar diagnostics of a result, JSON-ready."""
    out = {"mode": str(result.mode), "iterations": result.iterations}
    for name in _SCALARS:
        value = getattr(result, name)
        out[name] = bool(value) if isinstance(value, bool | np.bool_) else float(value)
    out["mean_cost"] = result.mean_cost
    out["generic_cluster"] = result.game.generic_cluster
    out["generic_cost"] = float(result.cost[result.game.generic_cluster])
    return out


def save_equilibrium(result: EquilibriumResult, directory: str | Path) -> None:
    """Write ``result`` into ``directory`` (created if needed).

    Parameters
    ----------
    result
        The equilibrium.
    directory
        The result directory.

    The game's ``base_dir`` (where the scenario's relative file names point,
    as given to :func:`~models.game.build_game`) is saved as an absolute path,
    so that :func:`load_equilibrium` rebuilds the same game from any working
    directory. The files' checksums go into ``checksums.sha256`` and what
    identifies the result into ``manifest.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "paths.json"
    base_dir = result.game.base_dir
    if base_dir is not None:
        paths.write_text(json.dumps({"base_dir": str(base_dir)}, indent=2))
    else:
        paths.unlink(missing_ok=True)  # no stale base_dir from an earlier save
    game_fields = set(GameConfig.model_fields)  # a scenario adds what identifies the run
    (directory / "game.json").write_text(
        result.game.config.model_dump_json(indent=2, include=game_fields)
    )
    arrays = {
        "cost": result.cost,
        "exploitability_by_cluster": result.exploitability_by_cluster,
        "exploitability_continuous_by_cluster": result.exploitability_continuous_by_cluster,
        "grid_price": result.game.grid_price,
    }
    for prefix, obj in (
        ("policy", result.policy),
        ("flow", result.flow),
        ("prices", result.prices),
    ):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if value is not None:
                arrays[f"{prefix}.{f.name}"] = value
    # numpy's stub reads **arrays as if it could hold allow_pickle (a bool)
    np.savez_compressed(directory / "equilibrium.npz", **arrays)  # type: ignore[arg-type]
    (directory / "summary.json").write_text(json.dumps(summary(result), indent=2))
    for name, table in equilibrium_tables(result).items():
        table.to_parquet(directory / f"{name}.parquet", index=False)
    written = [name for name in EQUILIBRIUM_FILES if (directory / name).exists()]
    write_checksums(directory, written)
    config = result.game.config
    known = {
        "mode": str(result.mode),
        "seed": config.seed,
        "converged": bool(result.converged),
        "config": json.loads(config.model_dump_json()),
    }
    write_manifest(directory, type(result).__name__, known)


def load_equilibrium(
    directory: str | Path, game: Game | None = None, base_dir: str | Path | None = None
) -> EquilibriumResult:
    """Reload a result written by :func:`save_equilibrium`.

    Parameters
    ----------
    directory
        The result directory.
    game
        The game, if already built (it is rebuilt from ``game.json`` otherwise).
    base_dir
        Where the scenario's relative file names point when the game is
        rebuilt. Omitted: the ``base_dir`` saved with the result, or, for a
        result saved without one, the working directory.

    Raises
    ------
    models.checksums.DamagedFileError
        When a file read is missing, unreadable or differs from its checksum.
    """
    directory = Path(directory)
    reads = ["equilibrium.npz", "summary.json", "history.parquet"]
    verify_checksums(directory, reads if game is not None else ["game.json", "paths.json", *reads])
    if game is None:
        config = GameConfig.model_validate_json(read_checked(directory / "game.json", _json_text))
        game = build_game(config, _base_dir(directory) if base_dir is None else Path(base_dir))
    info = _UNMEASURED | read_checked(directory / "summary.json", read_json)
    arrays = read_checked(directory / "equilibrium.npz", read_npz)

    if "grid_price" in arrays:  # with a wholesale link, p_G is part of the equilibrium
        game = game.with_grid_price(arrays["grid_price"])

    def part(cls: type[_Part], prefix: str) -> _Part:
        values: dict[str, Any] = {f.name: arrays.get(f"{prefix}.{f.name}") for f in fields(cls)}
        return cls(**values)

    return EquilibriumResult(
        mode=Mode(info["mode"]),
        game=game,
        policy=part(Policy, "policy"),
        flow=part(Flow, "flow"),
        prices=part(Prices, "prices"),
        cost=arrays["cost"],
        exploitability_by_cluster=arrays["exploitability_by_cluster"],
        exploitability_continuous_by_cluster=arrays.get(
            "exploitability_continuous_by_cluster",
            np.full_like(arrays["exploitability_by_cluster"], np.nan),
        ),
        history=read_checked(directory / "history.parquet", _history),
        **{name: info[name] for name in _SCALARS},
    )


def _history(path: Path) -> list[dict[str, float]]:
    """The residual history; a residual not measured at an iteration (NaN) is left out."""
    rows = pd.read_parquet(path).to_dict("records")
    return [
        {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))} for row in rows
    ]


def _base_dir(directory: Path) -> Path | None:
    """The ``base_dir`` saved with a result; None for a result saved without one."""
    paths = directory / "paths.json"
    if not paths.is_file():
        return None
    saved = read_checked(paths, read_json)
    if not isinstance(saved, dict) or not isinstance(saved.get("base_dir"), str):
        raise DamagedFileError(paths, "damaged (no base_dir)")
    return Path(saved["base_dir"])


def _json_text(path: Path) -> str:
    """The text of a JSON file, checked to parse."""
    text = path.read_text(encoding="utf-8")
    json.loads(text)
    return text
