"""The run's cost estimates (cosim.scenario.limits): measured answers, growth, messages, units."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.scenario.game import ScenarioError, load_scenario, parse_scenario
from cosim.scenario.limits import (
    BASE_BYTES,
    GIB,
    MEMORY_VARIABLE,
    MIB,
    Cost,
    MemoryLimit,
    format_bytes,
    format_seconds,
    limit_violations,
    memory_limit,
    parse_bytes,
    simulation_cost,
    solve_cost,
    time_note,
)

PAPER = load_scenario(Path(__file__).parents[2] / "scenarios" / "paper_gmfg.toml").scenario


def _scenario(clusters: int = 10, dt_h: float = 0.25, **solver: int):
    return parse_scenario(
        {"time": {"dt_h": dt_h}, "clusters": {"count": clusters}, "solver": solver}
    )


# --------------------------------------------------------------------------- measured answers


@pytest.mark.parametrize(
    ("clusters", "points", "measured_mib"),
    [(10, 101, 403), (40, 101, 745), (100, 101, 1381), (10, 401, 732)],
)
def test_a_solve_is_priced_at_or_a_little_above_its_measured_peak(clusters, points, measured_mib):
    """Peak RSS of one solve (CoC, 96 steps, the EV grid at the home battery's spacing)."""
    need = BASE_BYTES + solve_cost(_scenario(clusters, soe_points=points)).bytes
    assert 1.0 <= need / (measured_mib * MIB) <= 1.5


def test_a_million_households_are_priced_at_their_measured_peak():
    """docs/performance.md: 10⁶ households (100 × 10 000), one day: peak RSS 2.7 GiB, 22 s."""
    cost = simulation_cost(_scenario(100), 10_000, 1)
    assert 1.0 <= (BASE_BYTES + cost.bytes) / (2.7 * GIB) <= 1.2
    assert 0.5 <= cost.seconds / 22.0 <= 2.0


def test_the_paper_solve_is_priced_at_its_measured_time():
    """docs/performance.md: paper_gmfg's CoC solve, 7.4–7.8 s (22 iterations) on 2 cores."""
    assert 0.5 <= solve_cost(PAPER).seconds / 7.6 <= 2.0


# --------------------------------------------------------------------------- growth and drivers


@pytest.mark.parametrize(
    ("larger", "path"),
    [
        ({"clusters": 1000}, "clusters.count"),
        ({"soe_points": 1001}, "solver.soe_points"),
        ({"ev_soe_points": 4001}, "solver.ev_soe_points"),
        ({"dt_h": 0.025}, "time.dt_h"),
    ],
)
def test_the_cost_grows_with_each_size_and_names_it(larger: dict, path: str):
    small, big = solve_cost(_scenario()), solve_cost(_scenario(**larger))
    assert big.bytes > 2 * small.bytes and big.seconds > small.seconds
    assert big.path == path


def test_a_large_ev_names_its_capacity_and_an_overflowing_one_is_priced_not_raised():
    ev = {"capacity_kwh": 6000.0, "departure_target_kwh": 48.0, "initial_mean_kwh": 1500.0}
    big = parse_scenario({"clusters": {"count": 10}, "household": {"ev": ev}})
    assert solve_cost(big).path == "household.ev.capacity_kwh"
    ev = {"capacity_kwh": 1.7e308, "min_fraction": 0.0, "initial_mean_kwh": 36.0}
    huge = parse_scenario({"clusters": {"count": 2}, "household": {"ev": ev}})
    cost = solve_cost(huge)
    assert cost.bytes == math.inf and cost.path == "household.ev.capacity_kwh"
    (violation,) = limit_violations([cost], MemoryLimit(GIB, "has"))
    assert "more than can be counted" in violation.rule


def test_the_population_names_households_or_days_whichever_costs_more():
    scenario = _scenario(10)
    assert simulation_cost(scenario, 10**6, 1, households_path="--h").path == "--h"
    fine = _scenario(10, dt_h=0.0125)
    assert simulation_cost(fine, 1, 3650, days_path="--days").path == "--days"
    per_cluster = simulation_cost(scenario, [1, 2, 3], 2)
    assert "6 households × 2 days of 96 steps" in per_cluster.sizes


# --------------------------------------------------------------------------- refusals and notes


def _cost(path: str, gib: float, seconds: float = 0.0) -> Cost:
    return Cost(f"part {path}", path, 1, gib * GIB, seconds, "sizes", "work")


def test_each_part_that_cannot_fit_is_one_violation():
    limit = MemoryLimit(10 * GIB, "this machine has")
    out = limit_violations([_cost("a", 20), _cost("b", 1), _cost("c", 30)], limit)
    assert [v.path for v in out] == ["a", "c"]
    assert out[0].rule.startswith("part a needs about 20.3 GiB (sizes); this machine has 10 GiB")
    assert limit_violations([_cost("a", 20)], None) == []


def test_parts_that_fit_alone_but_not_together_name_the_largest():
    (violation,) = limit_violations([_cost("a", 4), _cost("b", 5)], MemoryLimit(8 * GIB, "has"))
    assert violation.path == "b" and "the whole run about 9.29 GiB" in violation.rule


def test_a_long_run_is_one_line_and_a_short_one_none():
    assert time_note([_cost("a", 0, 100.0)]) is None
    note = time_note([_cost("a", 0, 3000.0), _cost("b", 0, 4200.0)])
    assert note == "about 2 h of computing: part a 50 min (work); part b 1.2 h (work)"


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "amount"),
    [("64GiB", 64 * GIB), ("64G", 64 * GIB), ("64 gb", 64e9), ("500MB", 500e6), ("1e9", 1e9)],
)
def test_memory_amounts(text: str, amount: float):
    assert parse_bytes(text) == amount
    assert memory_limit({MEMORY_VARIABLE: text}) == MemoryLimit(amount, f"{MEMORY_VARIABLE} is")


@pytest.mark.parametrize("text", ["lots", "0", "-1GiB", "nan", "inf", "1e999", "GiB"])
def test_what_is_not_an_amount_is_refused(text: str):
    with pytest.raises(ValueError, match=r"amount of memory|more than nothing"):
        parse_bytes(text)


def test_the_machines_memory_is_read():
    limit = memory_limit({})
    assert limit is None or 0 < limit.bytes < math.inf


@pytest.mark.parametrize(
    ("amount", "text"),
    [(512, "512 B"), (2.5 * MIB, "2.5 MiB"), (21.8 * 1024 * GIB, "21.8 TiB"), (math.inf, None)],
)
def test_bytes_read_as_people_write_them(amount: float, text: str | None):
    assert format_bytes(amount) == (text or "more than can be counted")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.052, "0.052 s"),
        (42.0, "42 s"),
        (720.0, "12 min"),
        (3.2 * 3600, "3.2 h"),
        (5 * 86400, "5 days"),
    ],
)
def test_durations_read_as_people_write_them(seconds: float, text: str):
    assert format_seconds(seconds) == text


# --------------------------------------------------------------------------- any valid scenario

#: Sizes a scenario can set, over their whole valid ranges.
sizes = st.fixed_dictionaries(
    {
        "time": st.fixed_dictionaries({"dt_h": st.sampled_from([0.0125, 0.25, 1.0, 6.0])}),
        "clusters": st.fixed_dictionaries(
            {"count": st.integers(1, 10_000), "households": st.integers(1, 10**9)}
        ),
        "solver": st.fixed_dictionaries(
            {"soe_points": st.integers(2, 10_001)},
            optional={"ev_soe_points": st.integers(2, 10_001)},
        ),
        "household": st.fixed_dictionaries(
            {  # an EV of any size, full at the start
                "ev": st.floats(48.0, 1.7e308).map(
                    lambda kwh: {"capacity_kwh": kwh, "initial_mean_kwh": kwh}
                )
            }
        ),
        "simulation": st.fixed_dictionaries({"days": st.integers(1, 3650)}),
    }
)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(sizes)
def test_every_valid_scenario_is_priced_without_an_error(data: dict):
    try:
        scenario = parse_scenario(data)
    except ScenarioError:  # e.g. a shiftable load shorter than half a 24-hour step
        return
    costs = [
        solve_cost(scenario, 3),
        simulation_cost(scenario, scenario.clusters.households, scenario.simulation.days),
    ]
    for cost in costs:
        assert cost.bytes >= 0 and cost.seconds >= 0  # and neither is NaN
    for violation in limit_violations(costs, MemoryLimit(GIB, "has")):
        assert "\n" not in violation.rule and violation.rule.endswith("has 1 GiB")
    note = time_note(costs, 0.0)
    assert note is not None and "\n" not in note
