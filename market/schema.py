"""Building blocks shared by every configuration class of the project.

They live in :mod:`market` because it is the package every other one may
import (``cosim`` → ``models`` → ``market``).

Configuration is strict: a string is not a number, ``true`` is not ``1.0``,
and NaN or infinity is never a valid value. Fields that take one of several
shapes (a number, a list, a ``{low, high}`` table) are *tagged* unions: the
shape of the input picks the one branch that validates it, so a mistake is
reported once, against that branch.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

#: Tags of the union branches; they appear in pydantic's error locations and are
#: removed from the paths shown to users (they cannot be TOML keys by accident).
SCALAR, LIST, TABLE = "<number>", "<list>", "<table>"
UNION_TAGS = frozenset({SCALAR, LIST, TABLE})


class Frozen(BaseModel):
    """Base for every configuration block: immutable, strict, no unknown keys."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, strict=True, allow_inf_nan=False
    )


class UniformRange(Frozen):
    """A per-cluster parameter drawn uniformly in ``[low, high]`` with the scenario seed."""

    low: float = Field(description="Lower bound of the uniform draw.")
    high: float = Field(description="Upper bound of the uniform draw.")


def shape_of(value: Any) -> str:
    """The union branch an input belongs to: a table, a list, or a single value."""
    if isinstance(value, dict | BaseModel):
        return TABLE
    if isinstance(value, list | tuple):
        return LIST
    return SCALAR


Finite = Annotated[float, Field(allow_inf_nan=False)]

#: A per-cluster parameter: one value for every cluster, one value per cluster, or a draw.
ClusterValue = Annotated[
    Annotated[float, Tag(SCALAR)]
    | Annotated[list[Finite], Tag(LIST)]
    | Annotated[UniformRange, Tag(TABLE)],
    Discriminator(shape_of),
]

#: A single value, or one value per cluster.
CountOrList = Annotated[
    Annotated[int, Tag(SCALAR)] | Annotated[list[int], Tag(LIST)],
    Discriminator(shape_of),
]

#: A single value, or 24 hourly values.
ValueOrHourly = Annotated[
    Annotated[float, Tag(SCALAR)] | Annotated[list[Finite], Tag(LIST)],
    Discriminator(shape_of),
]
