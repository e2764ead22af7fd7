"""Saving and reloading a solved equilibrium: see :mod:`models.result`, where it is done.

The functions live with :class:`models.result.EquilibriumResult`, whose
``save``/``load``/``to_pandas`` methods call them; this module keeps the
import path ``models.archive`` working.
"""

from __future__ import annotations

from models.result import equilibrium_tables, load_equilibrium, save_equilibrium, summary

__all__ = ["equilibrium_tables", "load_equilibrium", "save_equilibrium", "summary"]
