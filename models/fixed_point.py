"""The fixed-point loop, written once (MFGLib style).

An algorithm is hyper-parameters plus a state transition: it defines
``init_state()`` and ``step_next_state(state) -> (state, residuals)``, and says
when its residuals mean convergence. :func:`run_fixed_point` owns stopping,
the residual history and progress reporting, for the GMFG solver and any
learner that iterates to a fixed point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

S = TypeVar("S")


class FixedPointAlgorithm(Protocol[S]):
    """What :func:`run_fixed_point` needs from an algorithm."""

    def init_state(self) -> S:
        """The iterate before the first step."""
        ...

    def step_next_state(self, state: S) -> tuple[S, dict[str, float]]:
        """One iteration: the next state and the residuals measured on the way."""
        ...

    def is_converged(self, residuals: dict[str, float]) -> bool:
        """Whether one iteration's residuals meet the tolerances."""
        ...


@dataclass
class FixedPointRun(Generic[S]):
    """Outcome of :func:`run_fixed_point`: the last state and every iteration's residuals."""

    state: S
    history: list[dict[str, float]] = field(default_factory=list)
    converged: bool = False

    @property
    def iterations(self) -> int:
        """Number of iterations performed."""
        return len(self.history)


def run_fixed_point(
    algorithm: FixedPointAlgorithm[S],
    max_iterations: int,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
    resume: FixedPointRun[S] | None = None,
) -> FixedPointRun[S]:
    """Iterate ``algorithm`` until its residuals converge or ``max_iterations`` pass.

    Non-convergence is not an error: the run says ``converged=False`` and keeps
    the whole residual history for the caller to report. ``resume`` continues
    an earlier run (its state and history; ``max_iterations`` counts them all).
    """
    if resume is None:
        run: FixedPointRun[S] = FixedPointRun(algorithm.init_state())
    else:
        run = FixedPointRun(resume.state, list(resume.history))
    for n in range(run.iterations, max_iterations):
        run.state, residuals = algorithm.step_next_state(run.state)
        residuals = {"iteration": float(n), **residuals}
        run.history.append(residuals)
        if on_iteration is not None:
            on_iteration(n, residuals)
        if algorithm.is_converged(residuals):
            run.converged = True
            break
    return run
