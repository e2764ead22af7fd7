"""The equilibrium cache: solved equilibria kept on disk, keyed by a hash of their game.

A game's hash covers everything that determines its equilibria — its
configuration (not the scenario's name), the network of a wholesale link, and
:data:`MODEL_REVISION` — so a law is reused only for the very game it solves.

An entry is derived data: one that is damaged (a file missing, unreadable or
differing from its checksum) or written before entries had checksums is solved
again and replaced atomically, with one line on standard error naming it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cosim.io.results import atomic_directory
from market.pricing import Mode
from models.archive import load_equilibrium, save_equilibrium
from models.checksums import CHECKSUMS, DamagedFileError
from models.config import GameConfig
from models.equilibrium import EquilibriumResult
from models.game import Game
from models.provenance import MANIFEST
from models.result import EQUILIBRIUM_FILES

#: Revision of the mean-field model and its solver: part of every game's hash, so
#: equilibria cached under an earlier one are never reused (2: EVs leave inside a step;
#: 3: the solver iterates on until the law itself meets the tolerances).
MODEL_REVISION = "3"


def game_hash(game: Game) -> str:
    """Hash of everything that determines a game's equilibria (not the scenario's name).

    Files a scenario names enter by what was read from them, not by their
    names: the cluster distances as built, and with a wholesale link the
    network itself — buses, lines, units and their costs — and the link's
    tables (the other load, the expected LMP), so an edited file is never
    matched to a law solved on the old one, nor one CoC's law of a one-market
    run to another's.
    """
    fields = set(GameConfig.model_fields)
    digest = hashlib.sha256()
    digest.update((MODEL_REVISION + game.config.model_dump_json(include=fields)).encode())
    digest.update(np.ascontiguousarray(game.distances, dtype=float).tobytes())
    link = game.wholesale
    if link is not None:
        digest.update(repr(link.network).encode())
        # what the LMP table was built from (a one-market CoC's link holds the others' flows)
        digest.update(repr((link.bus, link.households, link.retail_adder)).encode())
        digest.update(repr((link.bus_load_std_mw, link.steps_per_interval)).encode())
        if link.dispatch_options is not None:
            digest.update(repr(link.dispatch_options).encode())
        for table in (link.other_load_mw, link.import_grid_mw, link.expected_lmp):
            digest.update(np.ascontiguousarray(table, dtype=float).tobytes())
    return digest.hexdigest()


def cached_equilibrium(
    game: Game, mode: Mode, cache: Path | None, solve: Callable[[Game, Mode], EquilibriumResult]
) -> tuple[EquilibriumResult, bool]:
    """The equilibrium of ``game`` in ``mode``: reloaded from ``cache`` when the hash matches.

    Returns the result and whether it came from the cache. A freshly solved
    equilibrium is saved into the cache (atomically) for the next run. An
    entry that cannot be trusted — damaged, or without checksums — is named on
    standard error in one line and solved again; it is replaced unless it holds
    files the cache did not write (those are left alone, the law is not cached).
    """
    if cache is None:
        return solve(game, mode), False
    directory = cache / f"{game_hash(game)[:16]}-{mode}"
    keep = True  # whether the law solved here replaces the entry
    if directory.is_dir() and any(directory.iterdir()):
        try:
            if (directory / CHECKSUMS).exists():
                return load_equilibrium(directory, game), True
            problem = f"{directory}: no checksums (written by an earlier version)"
        except DamagedFileError as err:
            problem = str(err)
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in _ENTRY_FILES)
        keep = not foreign
        kept = f", not cached (the entry holds {', '.join(foreign)}, not the cache's)"
        print(f"{problem}; solving again{'' if keep else kept}", file=sys.stderr)
    result = solve(game, mode)
    if keep:
        with atomic_directory(directory) as tmp:
            save_equilibrium(result, tmp)
    return result, False


#: Everything a cache entry holds: what :func:`models.result.save_equilibrium` writes.
_ENTRY_FILES = frozenset({*EQUILIBRIUM_FILES, CHECKSUMS, MANIFEST})
