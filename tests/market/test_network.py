"""Network, PTDF, MATPOWER loading and cost re-draws (market/network.py)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from market.matpower import load_matpower
from market.network import (
    FUEL_COST_RANGES,
    Generator,
    Line,
    Network,
    hub_and_spoke,
    pjm5bus,
    ptdf,
    redraw_costs_by_fuel,
)
from tests.network_data import needs_hawaii40


def triangle(limit_13: float = math.inf) -> Network:
    """Three buses, three lines of equal reactance."""
    return Network(
        buses=("1", "2", "3"),
        lines=(Line(0, 1, 0.1), Line(0, 2, 0.1, limit_13), Line(1, 2, 0.1)),
        generators=(
            Generator(0, "oil", 1000.0, cost_b=10.0),
            Generator(1, "oil", 1000.0, cost_b=20.0),
        ),
        slack=0,
    )


# -- PTDF ---------------------------------------------------------------------
def test_ptdf_triangle_equal_reactances_splits_two_thirds_one_third():
    # Injection at bus 3 (index 2), withdrawn at the slack bus 1: two thirds
    # flow back directly on 3→1, one third on 3→2→1. Lines: 1-2, 1-3, 2-3.
    matrix = ptdf(triangle())
    np.testing.assert_allclose(matrix[:, 0], 0.0)
    np.testing.assert_allclose(matrix[:, 2], [-1 / 3, -2 / 3, -1 / 3])
    # Injection at bus 2: two thirds on 2→1, one third on 2→3→1.
    np.testing.assert_allclose(matrix[:, 1], [-2 / 3, -1 / 3, 1 / 3])


def test_ptdf_flows_satisfy_kirchhoff_laws_on_pjm5bus():
    net = pjm5bus()
    matrix = ptdf(net)
    rng = np.random.default_rng(3)
    injection = rng.normal(size=net.n_buses)
    injection[net.slack] -= injection.sum()  # the slack balances the system
    flow = matrix @ injection
    incidence = np.zeros((net.n_lines, net.n_buses))
    incidence[np.arange(net.n_lines), net.line_from] = 1.0
    incidence[np.arange(net.n_lines), net.line_to] = -1.0
    # Current law: what leaves each bus on its lines is its injection.
    np.testing.assert_allclose(incidence.T @ flow, injection, atol=1e-9)
    # Voltage law: flows come from angles, flow = (θ_from − θ_to)/x.
    theta, *_ = np.linalg.lstsq(incidence / net.line_reactance[:, None], flow, rcond=None)
    np.testing.assert_allclose(incidence @ theta / net.line_reactance, flow, atol=1e-9)


def test_ptdf_transfers_do_not_depend_on_the_slack():
    net = pjm5bus()
    a, b = ptdf(net, slack=0), ptdf(net, slack=3)
    # A transfer from bus 1 to bus 4 has the same flows whatever the reference.
    np.testing.assert_allclose(a[:, 1] - a[:, 4], b[:, 1] - b[:, 4], atol=1e-12)
    assert not np.allclose(a, b)


def test_hub_and_spoke_ptdf_is_identity_on_spokes():
    net = hub_and_spoke([50.0, 80.0, math.inf], [Generator(0, "oil", 100.0)])
    matrix = ptdf(net)
    expected = np.hstack([np.zeros((3, 1)), np.eye(3)])
    np.testing.assert_allclose(matrix, expected, atol=1e-12)
    assert net.buses == ("hub", "spoke1", "spoke2", "spoke3")
    assert net.slack == 0
    assert net.line_limit_mw.tolist() == [50.0, 80.0, math.inf]


def test_ptdf_rejects_a_disconnected_network():
    net = Network(buses=("a", "b", "c"), lines=(Line(0, 1, 0.1),), generators=())
    with pytest.raises(ValueError, match="not connected"):
        ptdf(net)


# -- Network validation and views --------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lines": (Line(0, 5, 0.1),)}, r"lines\[0\]: bus index 5"),
        ({"lines": (Line(0, 1, 0.0),)}, r"lines\[0\]\.reactance"),
        ({"lines": (Line(0, 1, 0.1, -5.0),)}, r"lines\[0\]\.limit_mw"),
        ({"generators": (Generator(0, "oil", 10.0, pmin_mw=20.0),)}, "exceeds pmax_mw"),
        ({"generators": (Generator(0, "oil", 10.0, cost_a=-1.0),)}, "convex"),
        ({"slack": 4}, "slack"),
        ({"demand_mw": (1.0,)}, "one per bus"),
    ],
)
def test_network_reports_the_field_and_rule_it_breaks(kwargs, message):
    base = {"buses": ("a", "b"), "lines": (Line(0, 1, 0.1),), "generators": ()}
    with pytest.raises(ValueError, match=message):
        Network(**{**base, **kwargs})


def test_network_arrays_are_read_only():
    net = pjm5bus()
    with pytest.raises(ValueError):
        net.gen_cost_b[0] = 0.0
    assert net.gen_pmax_mw.sum() == pytest.approx(1530.0)
    assert net.nominal_demand_mw.sum() == pytest.approx(1000.0)


def test_pjm5bus_is_the_li_bo_system():
    net = pjm5bus()
    assert net.buses == ("A", "B", "C", "D", "E")
    assert [g.name for g in net.generators] == [
        "Alta",
        "Park City",
        "Solitude",
        "Sundance",
        "Brighton",
    ]
    assert net.gen_cost_b.tolist() == [14.0, 15.0, 30.0, 40.0, 10.0]
    monitored = {ln.name: ln.limit_mw for ln in net.lines if math.isfinite(ln.limit_mw)}
    assert monitored == {"A-B": 400.0, "D-E": 240.0}


# -- MATPOWER ------------------------------------------------------------------
CASE5_M = """function mpc = case5
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
	1	2	0	0	0	0	1	1	0	230	1	1.1	0.9;
	2	1	300	98.61	0	0	1	1	0	230	1	1.1	0.9;
	3	2	300	98.61	0	0	1	1	0	230	1	1.1	0.9;
	4	3	400	131.47	0	0	1	1	0	230	1	1.1	0.9;
	5	2	0	0	0	0	1	1	0	230	1	1.1	0.9;
];
mpc.gen = [
	1	40	0	30	-30	1	100	1	40	0	0	0	0	0	0	0	0	0	0	0	0;
	1	170	0	127.5	-127.5	1	100	1	170	0	0	0	0	0	0	0	0	0	0	0	0;
	3	323.49	0	390	-390	1	100	1	520	0	0	0	0	0	0	0	0	0	0	0	0;
	4	0	0	150	-150	1	100	1	200	0	0	0	0	0	0	0	0	0	0	0	0;
	5	466.51	0	450	-450	1	100	1	600	0	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
	1	2	0.00281	0.0281	0.00712	400	400	400	0	0	1	-360	360;
	1	4	0.00304	0.0304	0.00658	0	0	0	0	0	1	-360	360;
	1	5	0.00064	0.0064	0.03126	0	0	0	0	0	1	-360	360;
	2	3	0.00108	0.0108	0.01852	0	0	0	0	0	1	-360	360;
	3	4	0.00297	0.0297	0.00674	0	0	0	0	0	1	-360	360;
	4	5	0.00297	0.0297	0.00674	240	240	240	0	0	1	-360	360;
];
mpc.gencost = [
	2	0	0	2	14	0;
	2	0	0	2	15	0;
	2	0	0	2	30	0;
	2	0	0	2	40	0;
	2	0	0	2	10	0;
];
"""


def test_load_matpower_reads_case5_as_the_builtin_pjm5bus(tmp_path):
    path = tmp_path / "case5.m"
    path.write_text(CASE5_M)
    loaded, builtin = load_matpower(path), pjm5bus()
    assert loaded.n_buses == 5 and loaded.slack == builtin.slack == 3
    np.testing.assert_allclose(loaded.line_reactance, builtin.line_reactance)
    np.testing.assert_array_equal(loaded.line_limit_mw, builtin.line_limit_mw)
    np.testing.assert_array_equal(loaded.gen_bus, builtin.gen_bus)
    np.testing.assert_allclose(loaded.gen_pmax_mw, builtin.gen_pmax_mw)
    np.testing.assert_allclose(loaded.gen_cost_b, builtin.gen_cost_b)
    np.testing.assert_allclose(loaded.gen_cost_a, 0.0)
    np.testing.assert_allclose(loaded.nominal_demand_mw, builtin.nominal_demand_mw)
    np.testing.assert_allclose(ptdf(loaded), ptdf(builtin), atol=1e-12)
    assert {g.fuel for g in loaded.generators} == {"unknown"}  # no genfuel in case5


SMALL_M = """function mpc = small
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
	10	3	0	0	0	0	1	1	0	69	1	1.1	0.9;
	20	1	50	0	0	0	1	1	0	69	1	1.1	0.9;
	30	1	25	0	0	0	1	1	0	69	1	1.1	0.9;
];
mpc.gen = [
	10	0	0	0	0	1	100	1	80	5	0	0	0	0	0	0	0	0	0	0	0;
	30	0	0	0	0	1	100	0	40	0	0	0	0	0	0	0	0	0	0	0	0;
	30	0	0	0	0	1	100	1	30	0	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
	10	20	0.01	0.10	0	60	60	60	0	0	1	-360	360;
	20	30	0.01	0.20	0	0	0	0	1.05	0	1	-360	360;
	10	30	0.01	0.30	0	70	70	70	0	0	0	-360	360;
];
mpc.gencost = [
	2	0	0	4	0	0.02	21	0;
	2	0	0	4	0	0.01	30	0;
	2	0	0	4	0	0	0	0;
];
mpc.genfuel = {
	'dfo';
	'coal';
	'solar';
};
"""


def test_load_matpower_maps_fuels_drops_outages_and_reads_costs(tmp_path):
    path = tmp_path / "small.m"
    path.write_text(SMALL_M)
    net = load_matpower(path)
    assert net.name == "small"
    assert net.n_lines == 2  # the out-of-service branch is dropped
    assert net.line_limit_mw.tolist() == [60.0, math.inf]  # RATE_A 0 means unmonitored
    assert net.line_reactance.tolist() == pytest.approx([0.10, 0.20 * 1.05])  # x·tap
    assert [g.fuel for g in net.generators] == ["oil", "solar"]  # the coal unit is off
    assert net.gen_cost_a.tolist() == [0.02, 0.0]
    assert net.gen_cost_b.tolist() == [21.0, 0.0]
    assert net.gen_pmin_mw.tolist() == [5.0, 0.0]
    assert net.gen_bus.tolist() == [0, 2]
    assert net.slack == 0
    assert net.nominal_demand_mw.tolist() == [0.0, 50.0, 25.0]


def test_load_matpower_rejects_cubic_costs(tmp_path):
    path = tmp_path / "cubic.m"
    path.write_text(SMALL_M.replace("4	0	0.02	21	0;", "4	0.1	0.02	21	0;"))
    with pytest.raises(ValueError, match="degree 3"):
        load_matpower(path)


def test_load_matpower_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.m"):
        load_matpower(tmp_path / "nope.m")


def test_hawaii40_loads_with_its_fuels():
    net = load_matpower(needs_hawaii40())
    assert (net.n_buses, net.n_lines) == (37, 89)
    assert net.n_generators == 39  # 45 units, 6 out of service
    assert Counter(g.fuel for g in net.generators) == {
        "oil": 18,
        "biomass": 12,
        "solar": 6,
        "wind": 3,
    }
    assert net.buses[net.slack] == "WAIPAHU69"
    assert net.nominal_demand_mw.sum() == pytest.approx(1136.29)
    assert np.all(np.isfinite(net.line_limit_mw))
    assert ptdf(net).shape == (89, 37)


# -- Costs by fuel ---------------------------------------------------------------
def mixed_fuel_network() -> Network:
    fuels = ["oil", "biomass", "solar", "wind"] * 5
    gens = tuple(Generator(0, f, 10.0, cost_a=9.0, cost_b=9.0) for f in fuels)
    return Network(buses=("a",), lines=(), generators=gens)


def test_redraw_costs_by_fuel_stays_in_the_papers_ranges():
    net = redraw_costs_by_fuel(mixed_fuel_network(), np.random.default_rng(7))
    for g in net.generators:
        r = FUEL_COST_RANGES[g.fuel]
        assert r.a[0] <= g.cost_a <= r.a[1]
        assert r.b[0] <= g.cost_b <= r.b[1]
    oil = [g for g in net.generators if g.fuel == "oil"]
    assert all(g.cost_b == 19.98 for g in oil)
    assert len({g.cost_a for g in oil}) == len(oil)  # drawn, not copied
    assert all(g.cost_a == g.cost_b == 0.0 for g in net.generators if g.fuel in ("solar", "wind"))


def test_redraw_costs_by_fuel_is_reproducible_from_the_seed():
    net = mixed_fuel_network()
    a = redraw_costs_by_fuel(net, np.random.default_rng(1))
    b = redraw_costs_by_fuel(net, np.random.default_rng(1))
    c = redraw_costs_by_fuel(net, np.random.default_rng(2))
    assert a == b
    assert a != c


def test_redraw_costs_by_fuel_names_an_unpriced_fuel():
    with pytest.raises(ValueError, match="'unspecified'"):
        redraw_costs_by_fuel(pjm5bus(), np.random.default_rng(0))
