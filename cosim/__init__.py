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

from cosim.api import EpsilonStudy, estimate_epsilon_nash, run_wholesale
from cosim.scenario.game import LoadedScenario, Scenario, ScenarioError, load_scenario
from cosim.scenario.wholesale import LoadedWholesale, load_wholesale_scenario
from cosim.sim.simulation import SimulationResult, simulate
from cosim.studies.wholesale import ExperimentResult
from market.pricing import Mode
from models.archive import load_equilibrium, save_equilibrium
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.feedback import FeedbackLaw
from models.game import Game, build_game

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
