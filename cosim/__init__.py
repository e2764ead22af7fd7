"""prosumer-cosim: graphon mean-field games and co-simulation of residential prosumers.

The main entry points, importable from the package::

    import cosim

    loaded = cosim.load_scenario("scenarios/default.toml")
    game = cosim.build_game(loaded.scenario, loaded.base_dir)
    equilibrium = cosim.solve_equilibrium(game, "coc")
    run = cosim.simulate(equilibrium, households_per_cluster=200)
"""

from cosim.scenario import LoadedScenario, Scenario, ScenarioError, load_scenario
from cosim.simulation import SimulationResult, simulate
from models.archive import load_equilibrium, save_equilibrium
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.feedback import FeedbackLaw
from models.game import Game, build_game

__all__ = [
    "EquilibriumResult",
    "FeedbackLaw",
    "Game",
    "LoadedScenario",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "build_game",
    "load_equilibrium",
    "load_scenario",
    "save_equilibrium",
    "simulate",
    "solve_equilibrium",
]
