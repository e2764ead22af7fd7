"""Building blocks shared by every configuration class of the project.

They live in :mod:`market` because it is the package every other one may
import (``cosim`` → ``models`` → ``market``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base for every configuration block: immutable, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class UniformRange(Frozen):
    """A per-cluster parameter drawn uniformly in ``[low, high]`` with the scenario seed."""

    low: float = Field(allow_inf_nan=False, description="Lower bound of the uniform draw.")
    high: float = Field(allow_inf_nan=False, description="Upper bound of the uniform draw.")


#: A per-cluster parameter: one value for every cluster, one value per cluster, or a draw.
ClusterValue = float | list[float] | UniformRange
