"""The discrete-event co-simulation of N finite households.

SimPy owns time (:mod:`cosim.sim.engine`), Mesa holds the agents
(:mod:`cosim.sim.agents`), household state is columnar
(:mod:`cosim.sim.population`) and compiled kernels apply the feedback law to
every household (:mod:`cosim.sim.hems`). :func:`cosim.sim.simulation.simulate`
runs it and returns a :class:`~cosim.sim.simulation.SimulationResult`.
"""
