"""Scenario files → typed, validated objects.

:func:`load_scenario` reads a scenario of the mean-field game (households,
clusters, prices, solver, simulation, optionally a ``[wholesale]`` coupling);
:func:`load_wholesale_scenario` reads a scenario of seed 003's wholesale
experiment (a ``[network]`` table, storage aggregators and their learning).
Both check every field and every cross-field rule before any work and raise a
:class:`ScenarioError` listing each violation as ``FILE: path: value: rule``.
"""

from cosim.scenario.game import LoadedScenario, Scenario, ScenarioError, load_scenario
from cosim.scenario.wholesale import LoadedWholesale, load_wholesale_scenario

__all__ = [
    "LoadedScenario",
    "LoadedWholesale",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "load_wholesale_scenario",
]
