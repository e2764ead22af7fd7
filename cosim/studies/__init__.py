"""Studies built on the solver and the co-simulation.

The Monte Carlo runner (:mod:`cosim.studies.montecarlo`), the comparison of
trading modes (:mod:`cosim.studies.modes`), the ε-Nash gap of the mean-field
law in the finite game (:mod:`cosim.studies.epsilon`,
:mod:`cosim.studies.joint_deviation`) and its study over population sizes
(:mod:`cosim.studies.epsilon_study`), and seed 003's wholesale experiment
(:mod:`cosim.studies.wholesale`).
"""
