"""The generated reference pages cover every field of every configuration class and every option."""

from __future__ import annotations

import argparse
import importlib
import inspect

import pytest
from pydantic import BaseModel

from cosim_cli.main import build_parser
from cosim_cli.reference import (
    cli_reference,
    config_classes,
    document_fields,
    scenario_formats,
    scenario_reference,
)
from market.schema import Frozen, UniformRange

#: Modules that define the configuration classes of the scenario formats.
CONFIG_MODULES = (
    "models.config",
    "market.pricing",
    "market.wholesale_config",
    "cosim.scenario.game",
)


def declared_config_classes() -> set[type[BaseModel]]:
    found = set()
    for name in CONFIG_MODULES:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Frozen) and cls.__module__ == name:
                found.add(cls)
    return found


def test_every_configuration_class_is_part_of_a_scenario_format():
    reachable = config_classes()
    unreachable = {
        cls
        for cls in declared_config_classes() - {UniformRange}
        if not any(issubclass(used, cls) for used in reachable)  # a base: fields inherited
    }
    assert not unreachable, f"not reachable from any scenario format: {unreachable}"


@pytest.mark.parametrize("cls", config_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_field_has_a_description_and_every_table_a_docstring(cls):
    assert (cls.__doc__ or "").strip(), f"{cls.__name__} needs a docstring (its table's intro)"
    for name, info in cls.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            continue  # a table: documented by its class
        assert (info.description or "").strip(), f"{cls.__name__}.{name} has no description"


def test_the_scenario_reference_lists_every_field_with_default_and_rule():
    page = scenario_reference()
    for root in scenario_formats().values():
        docs = list(document_fields(root))
        assert docs
        for doc in docs:
            assert f"| `{doc.path}` |" in page, doc.path
            assert doc.description, f"{doc.path} has no description"
    # spot checks: a rule, a literal, a nested default, a list length
    assert "| `solver.soe_points` | integer | `101` | ≥ 2, ≤ 10 001 |" in page
    assert '`"standalone"` \\| `"rpc"` \\| `"coc"`' in page
    assert "| `renewables.solar_factor.low` | number | `0.4` |" in page
    assert "exactly 2 items" in page


def test_the_cli_reference_lists_every_sub_command_and_option():
    parser = build_parser()
    page = cli_reference(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) >= {"validate", "solve", "compare-modes", "simulate", "run"}
    for name, command in sub.choices.items():
        assert f"## `cosim {name}`" in page
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"cosim {name} {action.option_strings}: no help text"
            for option in action.option_strings:
                assert f"`{option}`" in page, f"cosim {name} {option}"
    assert "`results/.equilibria`" in page  # a default
