"""The equilibrium cache: solved equilibria kept on disk, keyed by a hash of their game.

A game's hash covers everything that determines its equilibria — its
configuration (not the scenario's name), the network of a wholesale link, and
:data:`MODEL_REVISION` — so a law is reused only for the very game it solves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cosim.io.results import atomic_directory
from market.pricing import Mode
from models.archive import load_equilibrium, save_equilibrium
from models.config import GameConfig
from models.equilibrium import EquilibriumResult
from models.game import Game

#: Revision of the mean-field model and its solver: part of every game's hash, so
#: equilibria cached under an earlier one are never reused (2: EVs leave inside a step;
#: 3: the solver iterates on until the law itself meets the tolerances).
MODEL_REVISION = "3"


def game_hash(game: Game) -> str:
    """Hash of everything that determines a game's equilibria (not the scenario's name).

    Files a scenario names enter by what was read from them, not by their
    names: the cluster distances as built, and with a wholesale link the
    network itself — buses, lines, units and their costs — so an edited file
    is never matched to a law solved on the old one.
    """
    fields = set(GameConfig.model_fields)
    digest = hashlib.sha256()
    digest.update((MODEL_REVISION + game.config.model_dump_json(include=fields)).encode())
    digest.update(np.ascontiguousarray(game.distances, dtype=float).tobytes())
    if game.wholesale is not None:
        digest.update(repr(game.wholesale.network).encode())
    return digest.hexdigest()


def cached_equilibrium(
    game: Game, mode: Mode, cache: Path | None, solve: Callable[[Game, Mode], EquilibriumResult]
) -> tuple[EquilibriumResult, bool]:
    """The equilibrium of ``game`` in ``mode``: reloaded from ``cache`` when the hash matches.

    Returns the result and whether it came from the cache. A freshly solved
    equilibrium is saved into the cache (atomically) for the next run.
    """
    if cache is None:
        return solve(game, mode), False
    directory = cache / f"{game_hash(game)[:16]}-{mode}"
    if (directory / "equilibrium.npz").exists():
        return load_equilibrium(directory, game), True
    result = solve(game, mode)
    with atomic_directory(directory) as tmp:
        save_equilibrium(result, tmp)
    return result, False
