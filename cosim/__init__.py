"""prosumer-cosim: graphon mean-field games and co-simulation of residential prosumers.

The main entry points, importable from the package::

    import cosim

    loaded = cosim.load_scenario("scenarios/default.toml")
    game = cosim.build_game(loaded.scenario, loaded.base_dir)
    equilibrium = cosim.solve_equilibrium(game, "coc")
    run = cosim.simulate(equilibrium, households_per_cluster=200)
    study = cosim.estimate_epsilon_nash(equilibrium, sizes=[2, 20], reps=4)
    market = cosim.run_wholesale("scenarios/oahu37.toml", days=5, seeds=1)

Every result object has ``.to_pandas()`` (its tables, keyed by name),
``.save(directory)`` and ``.load(directory)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cosim.scenario.game import LoadedScenario, Scenario, ScenarioError, load_scenario
from cosim.scenario.wholesale import LoadedWholesale, load_wholesale_scenario
from market.pricing import Mode
from models.archive import load_equilibrium, save_equilibrium
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.feedback import FeedbackLaw
from models.game import Game, build_game

if TYPE_CHECKING:
    from cosim.api import EpsilonStudy, estimate_epsilon_nash, run_wholesale
    from cosim.sim.simulation import SimulationResult, simulate
    from cosim.studies.wholesale import ExperimentResult

#: Names whose modules are heavy — the co-simulation engine (Mesa, SimPy, the compiled
#: HEMS kernels), the ε-Nash machinery, the wholesale market (Pyomo, HiGHS): each module
#: is imported when one of its names is first used, so ``import cosim`` stays quick.
_LAZY = {
    "EpsilonStudy": "cosim.api",
    "ExperimentResult": "cosim.studies.wholesale",
    "SimulationResult": "cosim.sim.simulation",
    "estimate_epsilon_nash": "cosim.api",
    "run_wholesale": "cosim.api",
    "simulate": "cosim.sim.simulation",
}


def __getattr__(name: str) -> object:
    """The public names of :data:`_LAZY`, imported on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "EpsilonStudy",
    "EquilibriumResult",
    "ExperimentResult",
    "FeedbackLaw",
    "Game",
    "LoadedScenario",
    "LoadedWholesale",
    "Mode",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "build_game",
    "estimate_epsilon_nash",
    "load_equilibrium",
    "load_scenario",
    "load_wholesale_scenario",
    "run_wholesale",
    "save_equilibrium",
    "simulate",
    "solve_equilibrium",
]
