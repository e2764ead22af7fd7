"""Reference pages generated from the code: the ``cosim`` command and the scenario formats.

The documentation site (``make docs``) renders these at build time, so the
options of the command and the fields of a scenario file are documented once,
where they are defined: in the argparse parser of :mod:`cosim_cli.main` and in the
pydantic configuration classes (their descriptions, defaults and rules).
"""

from __future__ import annotations

import argparse
import builtins
import datetime as dt
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from market.schema import UniformRange

__all__ = [
    "FieldDoc",
    "cli_reference",
    "config_classes",
    "document_fields",
    "scenario_formats",
    "scenario_reference",
]


# --------------------------------------------------------------------------- the command


def _option_names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.dest.upper()}`"
    names = ", ".join(f"`{name}`" for name in action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    return f"{names} `{metavar}`"


def _option_default(action: argparse.Action) -> str:
    if not action.option_strings:
        return "required"
    if action.nargs == 0:
        return "off"
    if action.default is None or action.default is argparse.SUPPRESS:
        return "—"
    return f"`{action.default}`"


def _option_values(action: argparse.Action) -> str:
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    kind = action.type
    if kind is int:
        return "integer"
    if kind is None:
        return "flag" if action.nargs == 0 else "text"
    name = getattr(kind, "__qualname__", "")
    return "integer" if name.startswith("counted.") else "text"


def _sentence(text: str | None) -> str:
    text = _cell(text)
    first = text[:1].upper() if text[:1].isascii() else text[:1]
    return f"{first}{text[1:]}." if text else ""


def _cell(text: str | None) -> str:
    """``text`` for a Markdown table cell: one line, ``|`` escaped, and outside code spans
    ``<``, ``>`` (not HTML) and brackets (not links, e.g. ``[-1,1] [$/h]``) escaped."""
    parts = (text or "").replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = (
            parts[i]
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("[", "\\[")
            .replace("]", "\\]")
        )
    return "`".join(parts).strip()


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """Markdown reference of the ``cosim`` command: every sub-command and option.

    Parameters
    ----------
    parser
        The parser to document (default: :func:`cosim_cli.main.build_parser`).
    """
    if parser is None:
        from cosim_cli.main import build_parser

        parser = build_parser()
    out = [
        "# CLI reference",
        "",
        "<!-- generated from cosim/cli.py's argument parser by cosim/reference.py; do not edit -->",
        "",
        f"{parser.description}",
        "",
        "```text",
        parser.format_usage().strip(),
        "```",
        "",
        "Every sub-command validates its scenario before any work (an invalid one prints one",
        "line per violation and exits with status 2), writes its results atomically into",
        "`--out`, and prints a machine-readable summary on standard output with `--json`.",
        "Exit status: 0 success, 1 a fixed point that did not converge (or a failed",
        "experiment), 2 bad input, 3 a worker process died (e.g. killed for memory; finished",
        "replications are kept and the same command resumes), 130 Ctrl-C, 143 SIGTERM.",
        "Progress goes to standard error (whole lines when it is not a terminal); `--quiet`",
        "silences it.",
        "",
    ]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        out += [f"## `cosim {name}`", "", f"{_sentence(helps.get(name))}", ""]
        out += ["```text", sub.format_usage().strip(), "```", ""]
        out += ["| argument | values | default | what it does |", "|---|---|---|---|"]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            out.append(
                f"| {_option_names(action)} | {_option_values(action)} | "
                f"{_option_default(action)} | {_cell(action.help)} |"
            )
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- scenario files


@dataclass(frozen=True)
class FieldDoc:
    """One documented field of a scenario file."""

    path: str
    """Dotted TOML path, e.g. ``household.ev.capacity_kwh``."""
    type: str
    """Accepted values, in words."""
    default: str
    """Default, as it would be written in TOML (``required`` when there is none)."""
    rule: str
    """Constraints beyond the type (bounds, lengths); empty when none."""
    description: str
    """The field's description, with its unit."""
    owner: builtins.type[BaseModel]  # ``type`` alone would name the field above
    """The configuration class that declares the field."""
    name: str
    """The field's name in ``owner``."""


_ATOMS = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    dt.date: "date (`YYYY-MM-DD`)",
    type(None): "omitted",
}


def _number(value: float) -> str:
    return f"{value:,}".replace(",", " ") if isinstance(value, int) else f"{value:g}"


def _constraints(metadata: list[Any]) -> list[str]:
    rules = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            rules += _constraints(item.metadata)
        for cls, sign, attr in (
            (at.Gt, ">", "gt"),
            (at.Ge, "≥", "ge"),
            (at.Lt, "<", "lt"),
            (at.Le, "≤", "le"),
        ):
            if isinstance(item, cls):
                rules.append(f"{sign} {_number(getattr(item, attr))}")
        if isinstance(item, at.MinLen):
            rules.append(f"at least {item.min_length} items")
        if isinstance(item, at.MaxLen):
            rules.append(f"at most {item.max_length} items")
        if isinstance(item, at.Len):
            rules.append(f"{item.min_length}–{item.max_length} items")
    return rules


def _lengths(rules: list[str]) -> list[str]:
    """``at least 2 items``, ``at most 2 items`` → ``exactly 2 items``."""
    lo = [r for r in rules if r.startswith("at least ")]
    hi = [r for r in rules if r.startswith("at most ")]
    if len(lo) == 1 and len(hi) == 1 and lo[0][9:] == hi[0][8:]:
        rules = [r for r in rules if r not in (lo[0], hi[0])] + [f"exactly {lo[0][9:]}"]
    return rules


def _describe(annotation: Any) -> tuple[str, list[str]]:
    """Words for the values an annotation accepts, and its rules."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *meta = typing.get_args(annotation)
        words, rules = _describe(base)
        return words, rules + _constraints(meta)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(arg) for arg in typing.get_args(annotation)]
        words = " \\| ".join(w for w, _ in parts)
        rules = [r for _, rs in parts for r in rs]
        return words, rules
    if origin is Literal:
        return " \\| ".join(f'`"{v}"`' for v in typing.get_args(annotation)), []
    if origin is list:
        (item,) = typing.get_args(annotation)
        words, rules = _describe(item)
        each = f" (each {', '.join(rules)})" if rules else ""
        return f"list of {words}{each}", []
    if isinstance(annotation, type) and issubclass(annotation, UniformRange):
        return "`{low, high}` table (uniform draw per cluster)", []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"table `{annotation.__name__}`", []
    return _ATOMS.get(annotation, getattr(annotation, "__name__", str(annotation))), []


def _toml(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if value is None:
        return "omitted"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return _toml(info.default_factory())  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return "required"
    return _toml(info.default)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The configuration class of a table field (or of an array of tables, ``[[name]]``),
    and whether the table is optional."""
    if _is_table_array(annotation):
        return typing.get_args(annotation)[0], False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (None, False) if issubclass(annotation, UniformRange) else (annotation, False)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0], True
    return None, False


def _is_table_array(annotation: Any) -> bool:
    """``list[SomeConfig]``: an array of tables, written ``[[name]]`` in TOML."""
    args = typing.get_args(annotation)
    return (
        typing.get_origin(annotation) is list
        and len(args) == 1
        and isinstance(args[0], type)
        and issubclass(args[0], BaseModel)
    )


def _table_default(info: FieldInfo, parent: BaseModel | None, name: str) -> BaseModel | None:
    """The default value of a table field: from its parent's default, or its own."""
    if parent is not None:
        value = getattr(parent, name)
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        value = None if info.default is PydanticUndefined else info.default
    return value if isinstance(value, BaseModel) else None


def document_fields(
    model: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None
) -> Iterator[FieldDoc]:
    """Every leaf field of ``model`` and of the tables nested in it, depth first.

    Tables (nested configuration classes) are not leaves: their fields are
    yielded under the table's dotted path, with the defaults the enclosing
    table gives them.

    Parameters
    ----------
    model
        A configuration class.
    prefix
        Dotted path of ``model``'s table, with a trailing dot (``""`` at the top).
    defaults
        The default instance of ``model`` where it is a table of another class.
    """
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested, _ = _nested_model(info.annotation)
        if nested is not None:
            inner = _table_default(info, defaults, name)
            yield from document_fields(nested, f"{path}.", inner)
            continue
        words, rules = _describe(info.annotation)
        rules += _constraints(info.metadata)
        yield FieldDoc(
            path=path,
            type=words,
            default=_default(info) if defaults is None else _toml(getattr(defaults, name)),
            rule=", ".join(dict.fromkeys(_lengths(rules))),
            description=(info.description or "").strip(),
            owner=model,
            name=name,
        )


@dataclass(frozen=True)
class _Table:
    path: str
    cls: type[BaseModel]
    optional: bool
    text: str
    defaults: BaseModel | None
    array: bool = False
    """An array of tables (``[[path]]``), one per entry."""


def _tables(
    model: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None
) -> Iterator[_Table]:
    """``model``'s table and every table nested in it, depth first."""
    yield _Table(prefix.rstrip("."), model, False, "", defaults)
    for name, info in model.model_fields.items():
        nested, optional = _nested_model(info.annotation)
        if nested is None:
            continue
        inner = _table_default(info, defaults, name)
        for i, table in enumerate(_tables(nested, f"{prefix}{name}.", inner)):
            if i == 0:
                table = _Table(
                    table.path,
                    table.cls,
                    optional,
                    info.description or "",
                    table.defaults,
                    _is_table_array(info.annotation),
                )
            yield table


def scenario_formats() -> dict[str, type[BaseModel]]:
    """The scenario formats, by the command that reads them."""
    from cosim.scenario.game import Scenario
    from market.wholesale_config import WholesaleScenario
    from models.one_market_config import OneMarketScenario

    return {
        "GMFG scenario (`cosim validate | solve | compare-modes | simulate | run | epsilon`)": (
            Scenario
        ),
        "Wholesale scenario (`cosim wholesale`)": WholesaleScenario,
        "One-market scenario (`cosim validate`; `[[coc]]` tables)": OneMarketScenario,
    }


def config_classes() -> list[type[BaseModel]]:
    """Every configuration class reachable from the scenario formats."""
    seen: dict[type[BaseModel], None] = {}
    for root in scenario_formats().values():
        for table in _tables(root):
            seen.setdefault(table.cls, None)
    return list(seen)


def _doc(cls: type) -> str:
    """The first paragraph of a class's docstring, with Sphinx roles as code."""
    text = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)


def scenario_reference() -> str:
    """Markdown reference of every scenario file format: each table and each field."""
    out = [
        "# Scenario-file reference",
        "",
        "<!-- generated from the pydantic configuration classes by cosim/reference.py; "
        "do not edit -->",
        "",
        "A scenario file is TOML. Every field is optional unless its default reads",
        "*required*; unknown fields are errors. Values are strict: a string is not a",
        "number and `true` is not `1`; NaN and infinity are never valid. A file is",
        "validated before any work: `cosim validate FILE` prints `OK` or one line per",
        "violation (`FILE: path.to.field: value: rule`) and exits with status 2.",
        "Besides the per-field rules listed here, rules that tie fields together",
        "(shapes per cluster, windows, weights summing to 1, …) are checked too.",
        "",
        "A *per-cluster* value (type `number | list of number | {low, high} table`) is",
        "one value for every cluster, a list of one value per cluster, or a table",
        "`{low = …, high = …}` from which each cluster's value is drawn uniformly with",
        "the scenario's seed.",
        "",
    ]
    for title, root in scenario_formats().items():
        out += [f"## {title}", "", _doc(root), ""]
        for table in _tables(root):
            prefix = f"{table.path}." if table.path else ""
            leaves = [
                f
                for f in document_fields(table.cls, prefix, table.defaults)
                if f.path.count(".") == prefix.count(".")
            ]
            if table.path:
                intro = _doc(table.cls)
                if table.optional:
                    intro += " *Optional table: leave it out to go without.*"
                if table.text:
                    intro = f"{table.text.strip()} {intro}"
                header = f"[[{table.path}]]" if table.array else f"[{table.path}]"
                out += [f"### `{header}`", "", intro, ""]
            else:
                out += ["### Top level", ""]
            if not leaves:
                continue
            out += ["| field | type | default | rule | description |", "|---|---|---|---|---|"]
            for f in leaves:
                out.append(
                    f"| `{f.path}` | {f.type} | `{f.default}` | {_cell(f.rule) or '—'} | "
                    f"{_cell(f.description)} |"
                )
            out.append("")
    return "\n".join(out)
