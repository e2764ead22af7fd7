"""Building blocks shared by every configuration class of the project.

They live in :mod:`market` because it is the package every other one may
import (``cosim`` → ``models`` → ``market``).

Configuration is strict: a string is not a number, ``true`` is not ``1.0``,
and NaN or infinity is never a valid value. Fields that take one of several
shapes (a number, a list, a ``{low, high}`` table) are *tagged* unions: the
shape of the input picks the one branch that validates it, so a mistake is
reported once, against that branch.

Rules that tie fields together are checked after the types; each broken rule
is a :class:`Violation` (where, what value, which rule), and a configuration
that breaks any is refused with a :class:`ConfigError` listing all of them.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

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


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, what value, which rule."""

    path: str
    """Dotted path of the field (``clusters.households``), or ``(toml)``/``(file)``."""
    value: object
    rule: str

    def format(self, file: str | None = None) -> str:
        """``path.to.field: value: rule``, after ``FILE: `` when a file is given.

        For bad TOML (path ``(toml)``) the rule already says where: ``FILE: line
        L, column C: …``.
        """
        if self.path == "(toml)":
            return self.rule if file is None else f"{file}: {self.rule}"
        line = f"{self.path}: {_show(self.value)}: {self.rule}"
        return line if file is None else f"{file}: {line}"


class ConfigError(ValueError):
    """A configuration that cannot be used; ``violations`` lists every reason, one per line."""

    def __init__(self, violations: list[Violation], file: str | None = None) -> None:
        self.violations = violations
        self.file = file
        super().__init__("\n".join(v.format(file) for v in violations))

    def __reduce__(self) -> tuple:
        """Pickle with the violations (a worker process's error reaches its parent whole)."""
        return _config_error, (type(self), self.violations, self.file)


def _config_error(cls: type[ConfigError], violations: list[Violation], file: str | None):
    error = cls.__new__(cls)
    ConfigError.__init__(error, violations, file)
    return error


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def timezone_violations(path: str, name: str) -> list[Violation]:
    """``[]`` for a known IANA time zone, else one violation at ``path``."""
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # zoneinfo raises several kinds: not found, a folder, a bad key
        return [Violation(path, name, "unknown IANA time zone")]
    return []


#: A result name: one path component of letters, digits, ``.``, ``_`` and ``-``.
_RESULT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _result_name(value: str) -> str:
    if not _RESULT_NAME.fullmatch(value):
        raise PydanticCustomError(
            "result_name",
            "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it names the result folder)",
        )
    return value


#: A scenario's name, safe as the name of its result folder (never ``..`` nor a path).
ResultName = Annotated[str, AfterValidator(_result_name)]
