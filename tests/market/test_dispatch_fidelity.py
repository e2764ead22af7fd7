"""Dispatch fidelity (issue #13): what the DC dispatch must count and where it must not cheat.

Hand-solved small cases for bounded surplus, shunt load, constant costs,
isolated buses and islands, parallel circuits, history-free re-solves and
line numbering in messages; Hawaii40 with derated limits against an
independent minimum-shedding LP.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

from market.dispatch import DispatchOptions, EconomicDispatch
from market.matpower import load_matpower
from market.network import Generator, Line, Network, pjm5bus, ptdf
from tests.network_data import needs_hawaii40

METHODS = ("highspy", "pyomo")


# -- 1. Surplus only where something can be curtailed ----------------------------------
def transit_triangle() -> Network:
    """Triangle of equal reactances: a $10 unit at bus 1, nothing at bus 2, the
    load at bus 3; line 2-3 limited to 30 MW, the others unmonitored."""
    return Network(
        buses=("1", "2", "3"),
        lines=(
            Line(0, 1, 0.1, name="1-2"),
            Line(0, 2, 0.1, name="1-3"),
            Line(1, 2, 0.1, 30.0, "2-3"),
        ),
        generators=(Generator(0, "oil", 1000.0, cost_b=10.0),),
        slack=0,
    )


@pytest.mark.parametrize("method", METHODS)
def test_a_transit_bus_is_no_phantom_sink(method):
    # 150 MW at bus 3. Bus 1 → bus 3 sends 1/3 of the transfer over 2-3, so at
    # most 90 MW arrive: 60 MW must be shed. Withdrawing u at bus 2 would push
    # u/3 back over 2-3 and let u more MW reach bus 3 — at 1 000 $/MWh of
    # "surplus" instead of 10 000 $/MWh of shedding, the unbounded surplus
    # variable used to dump 60 MW at bus 2 (nothing there to curtail) and shed
    # nothing. By hand: g1 = 90, shed 60 at bus 3, LMP3 = VOLL = 10 000; line
    # 2-3's price s from LMP3 = 10 + s/3 is 29 970, and LMP2 = 10 − s/3 = −9 980
    # (a MW of load at bus 2 would let one more MW reach bus 3).
    net = transit_triangle()
    result = EconomicDispatch(net, method=method).solve([0.0, 0.0, 150.0])
    np.testing.assert_allclose(result.surplus_mw, 0.0, atol=1e-9)
    np.testing.assert_allclose(result.shed_mw, [0.0, 0.0, 60.0], atol=1e-6)
    np.testing.assert_allclose(result.generation_mw, [90.0], atol=1e-6)
    np.testing.assert_allclose(result.lmp, [10.0, -9_980.0, 10_000.0], atol=1e-6)
    np.testing.assert_allclose(result.line_shadow_price, [0.0, 0.0, 29_970.0], atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_declared_curtailable_output_may_be_curtailed_where_it_is(method):
    # Bus 2 now hosts 40 MW of wind netted against 40 MW of load (net demand 0).
    # Curtailing the wind makes bus 2 draw 40 MW, which lets 40 MW more reach
    # bus 3: shed 20, surplus 40 at bus 2, g1 = 130 + 40.
    net = transit_triangle()
    result = EconomicDispatch(net, method=method).solve(
        [0.0, 0.0, 150.0], curtailable_mw=[0.0, 40.0, 0.0]
    )
    np.testing.assert_allclose(result.surplus_mw, [0.0, 40.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.shed_mw, [0.0, 0.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(result.generation_mw, [170.0], atol=1e-6)
    assert result.flow_mw[2] == pytest.approx(30.0)


def test_surplus_is_capped_by_must_run_output_and_net_export():
    # Must-run 100 MW at bus 1 (its only unit), 30 MW of load at bus 2 and a net
    # export of 20 MW at bus 3: the surplus 100 + 20 − 30 = 90 MW can be dumped
    # at bus 1 (up to 100) and bus 3 (up to 20), never at bus 2.
    net = replace(
        transit_triangle(),
        generators=(Generator(0, "oil", 150.0, pmin_mw=100.0, cost_b=20.0),),
        lines=tuple(replace(ln, limit_mw=np.inf) for ln in transit_triangle().lines),
    )
    result = EconomicDispatch(net).solve([0.0, 30.0, -20.0])
    assert result.surplus_mw.sum() == pytest.approx(90.0, abs=1e-6)
    assert result.surplus_mw[1] == pytest.approx(0.0, abs=1e-9)
    assert result.surplus_mw[0] <= 100.0 + 1e-6 and result.surplus_mw[2] <= 20.0 + 1e-6
    np.testing.assert_allclose(result.lmp, -1_000.0, atol=1e-6)


def test_bad_curtailable_output_is_rejected_with_the_time_step():
    ed = EconomicDispatch(transit_triangle())
    with pytest.raises(ValueError, match=r"curtailable_mw at time step 5"):
        ed.solve([0.0, 0.0, 10.0], curtailable_mw=[0.0, -1.0, 0.0], time_step=5)


def minimum_shedding_mw(net: Network, demand: np.ndarray) -> float:
    """The least load any physical DC dispatch must shed: an LP in bus-angle form.

    Variables p (units, 0 ≤ p ≤ pmax: must-run output may be curtailed), s
    (shed, 0 ≤ s ≤ max(d, 0)) and θ; nodal balances G·p + s − Aᵀ·f = d with
    f = Aθ/x within the limits. No bus can take more than its own load.
    """
    n_gen, n_bus = net.n_generators, net.n_buses
    incidence = np.zeros((net.n_lines, n_bus))
    incidence[np.arange(net.n_lines), net.line_from] = 1.0
    incidence[np.arange(net.n_lines), net.line_to] = -1.0
    flow_of_theta = incidence / net.line_reactance[:, None]
    gen_at_bus = np.zeros((n_bus, n_gen))
    gen_at_bus[net.gen_bus, np.arange(n_gen)] = 1.0
    a_eq = np.hstack([gen_at_bus, np.eye(n_bus), -incidence.T @ flow_of_theta])
    reference = np.zeros((1, n_gen + 2 * n_bus))
    reference[0, n_gen + n_bus + net.slack] = 1.0
    monitored = np.isfinite(net.line_limit_mw)
    flows = np.hstack([np.zeros((monitored.sum(), n_gen + n_bus)), flow_of_theta[monitored]])
    bounds = [(0.0, hi) for hi in net.gen_pmax_mw]
    bounds += [(0.0, max(d, 0.0)) for d in demand] + [(None, None)] * n_bus
    cost = np.concatenate([np.zeros(n_gen), np.ones(n_bus), np.zeros(n_bus)])
    res = linprog(
        cost,
        A_ub=np.vstack([flows, -flows]),
        b_ub=np.concatenate([net.line_limit_mw[monitored]] * 2),
        A_eq=np.vstack([a_eq, reference]),
        b_eq=np.concatenate([demand, [0.0]]),
        bounds=bounds,
        method="highs",
    )
    assert res.status == 0, res.message
    return float(res.fun)


@pytest.mark.parametrize(("scale", "at_least"), [(0.70, 35.08), (0.75, 1.72)])
def test_hawaii40_with_derated_limits_sheds_what_physics_requires(scale, at_least):
    # With every limit at 70 % the unbounded surplus dumped 54.6 MW at TURTLE138
    # (no unit, no load) and reported 17.8 MW shed; at 75 % it shed nothing.
    base = load_matpower(needs_hawaii40())
    net = replace(base, lines=tuple(replace(ln, limit_mw=scale * ln.limit_mw) for ln in base.lines))
    demand = net.nominal_demand_mw
    result = EconomicDispatch(net).solve(demand)
    floor = minimum_shedding_mw(net, demand)
    assert floor >= at_least  # 35.088 and 1.728 MW
    assert result.shed_mw.sum() == pytest.approx(floor, abs=1e-4)
    has_units = np.bincount(net.gen_bus, minlength=net.n_buses) > 0
    assert np.all(result.surplus_mw[~has_units] == 0.0)


# -- 2. Shunt conductance is load ------------------------------------------------------
def two_bus_case(gs_mw: float, c0: float = 0.0) -> str:
    """A MATPOWER case: a quadratic unit (0.1 p² + 10 p + c0) at bus 1, 50 MW of load
    at bus 2 with a shunt of ``gs_mw`` MW, one line limited to 100 MW."""
    return f"""function mpc = two_bus
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
	1	3	0	0	0	0	1	1	0	230	1	1.1	0.9;
	2	1	50	10	{gs_mw}	0	1	1	0	230	1	1.1	0.9;
];
mpc.gen = [
	1	0	0	0	0	1	100	1	200	0	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
	1	2	0	0.1	0	100	100	100	0	0	1	-360	360;
];
mpc.gencost = [
	2	0	0	3	0.1	10	{c0};
];
"""


@pytest.mark.parametrize("method", METHODS)
def test_shunt_conductance_is_dispatched_as_load(tmp_path, method):
    # GS = 10 MW at V = 1 p.u. (MATPOWER's DC model counts it as load): the unit
    # serves 60 MW and prices at 2·0.1·60 + 10 = 22 $/MWh (20 without the shunt).
    path = tmp_path / "two_bus.m"
    path.write_text(two_bus_case(gs_mw=10.0))
    net = load_matpower(path)
    assert net.shunt_load_mw.tolist() == [0.0, 10.0]
    assert net.nominal_demand_mw.tolist() == [0.0, 50.0]  # PD alone
    result = EconomicDispatch(net, method=method).solve(net.nominal_demand_mw)
    assert result.generation_mw[0] == pytest.approx(60.0, abs=1e-6)
    np.testing.assert_allclose(result.lmp, 22.0, atol=1e-6)
    assert result.flow_mw[0] == pytest.approx(60.0, abs=1e-6)
    assert result.shunt_mw.tolist() == [0.0, 10.0]
    assert result.demand_mw.tolist() == [0.0, 50.0]


def test_shunt_load_meets_line_limits_and_can_be_shed():
    # A 40 MW shunt behind a 50 MW spoke with 30 MW of demand: 20 MW shed there.
    net = Network(
        buses=("hub", "spoke"),
        lines=(Line(1, 0, 1.0, 50.0),),
        generators=(Generator(0, "oil", 500.0, cost_b=20.0),),
        shunt_mw=(0.0, 40.0),
    )
    result = EconomicDispatch(net).solve([0.0, 30.0])
    np.testing.assert_allclose(result.shed_mw, [0.0, 20.0], atol=1e-6)
    assert result.flow_mw[0] == pytest.approx(-50.0)


# -- 3. Constant cost c0 -------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_constant_cost_is_in_the_cost_and_not_in_the_prices(tmp_path, method):
    path = tmp_path / "two_bus.m"
    path.write_text(two_bus_case(gs_mw=0.0, c0=123.5))
    net = load_matpower(path)
    assert net.gen_cost_c.tolist() == [123.5]
    result = EconomicDispatch(net, method=method).solve(net.nominal_demand_mw)
    # 0.1·50² + 10·50 + 123.5
    assert result.cost == pytest.approx(250.0 + 500.0 + 123.5, abs=1e-6)
    np.testing.assert_allclose(result.lmp, 20.0, atol=1e-6)


# -- 4. Isolated buses and islands --------------------------------------------------
CASE_WITH_ISLANDS = """function mpc = islands
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
	1	3	0	0	0	0	1	1	0	230	1	1.1	0.9;
	2	1	80	0	0	0	1	1	0	230	1	1.1	0.9;
	3	{type3}	0	0	0	0	1	1	0	230	1	1.1	0.9;
	7	4	25	0	0	0	1	1	0	230	1	1.1	0.9;
	8	1	0	0	0	0	1	1	0	230	1	1.1	0.9;
	9	1	10	0	0	0	1	1	0	230	1	1.1	0.9;
];
mpc.gen = [
	1	0	0	0	0	1	100	1	200	0	0	0	0	0	0	0	0	0	0	0	0;
	7	0	0	0	0	1	100	1	50	0	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
	1	2	0	0.1	0	0	0	0	0	0	1	-360	360;
	2	7	0	0.1	0	0	0	0	0	0	1	-360	360;
	8	9	0	0.1	0	0	0	0	0	0	1	-360	360;
	1	8	0	0.1	0	0	0	0	0	0	{status}	-360	360;
];
mpc.gencost = [
	2	0	0	2	10	0;
	2	0	0	2	5	0;
];
"""


def test_isolated_buses_are_ignored_as_matpower_does(tmp_path):
    # Bus 3 has no branch and no load (type 4); bus 7 is type 4 with a branch,
    # a unit and load: MATPOWER's ext2int drops the bus with what is attached.
    path = tmp_path / "islands.m"
    path.write_text(CASE_WITH_ISLANDS.format(type3=4, status=1))
    net = load_matpower(path)
    assert net.buses == ("1", "2", "8", "9")
    assert net.n_lines == 3 and net.n_generators == 1
    assert [ln.name for ln in net.lines] == ["1-2 #1", "8-9 #3", "1-8 #4"]
    result = EconomicDispatch(net).solve(net.nominal_demand_mw)
    assert result.generation_mw[0] == pytest.approx(90.0)
    np.testing.assert_allclose(result.lmp, 10.0, atol=1e-9)


def test_a_real_island_is_named_in_the_error(tmp_path):
    # Bus 3 (type 1, no branch) and buses 8-9 (their link to bus 1 out of
    # service) are islands without the reference bus.
    path = tmp_path / "islands.m"
    path.write_text(CASE_WITH_ISLANDS.format(type3=1, status=0))
    net = load_matpower(path)
    with pytest.raises(ValueError, match=r"2 island\(s\) without the slack bus '1': '3'; '8', '9'"):
        EconomicDispatch(net)


# -- 5. Parallel circuits share their corridor's price ------------------------------
def two_bus_corridor(second: Line) -> Network:
    """$10 unit at bus 0, $20 unit at bus 1 and 150 MW of load there; the first
    circuit 0→1 carries 50 MW at most, ``second`` runs beside it."""
    return Network(
        buses=("0", "1"),
        lines=(Line(0, 1, 0.1, 50.0, "a"), second),
        generators=(
            Generator(0, "oil", 500.0, cost_b=10.0),
            Generator(1, "oil", 500.0, cost_b=20.0),
        ),
        demand_mw=(0.0, 150.0),
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("second", "prices"),
    [
        # Identical circuits: 100 MW cross, both at 50 MW. One more MW of limit on
        # both lets 2 MW more cross and saves 2·(20 − 10): 10 $/MWh each.
        (Line(0, 1, 0.1, 50.0, "b"), [10.0, 10.0]),
        # The same circuit laid the other way: at its limit in its negative direction.
        (Line(1, 0, 0.1, 50.0, "b"), [10.0, -10.0]),
        # A stronger twin never binds: the first carries the corridor's 20 $/MWh.
        (Line(0, 1, 0.1, 100.0, "b"), [20.0, 0.0]),
    ],
)
def test_parallel_circuits_at_their_limit_share_the_corridors_price(method, second, prices):
    net = two_bus_corridor(second)
    result = EconomicDispatch(net, method=method).solve(net.nominal_demand_mw)
    np.testing.assert_allclose(result.lmp, [10.0, 20.0], atol=1e-6)
    np.testing.assert_allclose(result.line_shadow_price, prices, atol=1e-6)
    rebuilt = result.hub_price - ptdf(net).T @ result.line_shadow_price
    np.testing.assert_allclose(result.lmp, rebuilt, atol=1e-9)


# -- 6. A re-solve does not depend on the steps before ---------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_a_degenerate_step_prices_alike_warmed_or_fresh(method):
    # Linear costs, 225 MW at bus 3 of the 3-bus case: the $10 unit alone puts
    # line 1-3 exactly at its 150 MW limit, so any LMP3 in [10, 30] is a valid
    # dual. On the Pyomo path a dispatch that had just solved 300 MW (line 1-3
    # congested) answered (10, 20, 30) from its warm-started basis, a fresh one
    # (10, 10, 10); each solve now starts cold.
    net = Network(
        buses=("1", "2", "3"),
        lines=(Line(0, 1, 0.1), Line(0, 2, 0.1, 150.0), Line(1, 2, 0.1)),
        generators=(
            Generator(0, "oil", 1000.0, cost_b=10.0),
            Generator(1, "oil", 1000.0, cost_b=20.0),
        ),
    )
    warmed = EconomicDispatch(net, method=method)
    warmed.solve([0.0, 0.0, 300.0])
    again = warmed.solve([0.0, 0.0, 225.0])
    fresh = EconomicDispatch(net, method=method).solve([0.0, 0.0, 225.0])
    np.testing.assert_array_equal(again.lmp, fresh.lmp)
    np.testing.assert_array_equal(again.line_shadow_price, fresh.line_shadow_price)


def breakpoints(ed: EconomicDispatch, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Demands where the LMPs jump, found by bisection on a demand's scale."""
    found = []
    while len(found) < count:
        base = ed.network.nominal_demand_mw * rng.uniform(0.5, 1.3, ed.network.n_buses)
        lo, hi = 0.5, 1.5
        low_lmp = ed.solve(lo * base).lmp
        if np.allclose(low_lmp, ed.solve(hi * base).lmp):
            continue
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.allclose(low_lmp, ed.solve(mid * base).lmp) else (lo, mid)
        found.append(hi * base)
    return found


def test_fast_path_re_solves_equal_fresh_ones_at_breakpoints_of_linear_costs():
    # At a breakpoint the duals are not unique. When the fast path kept the line
    # rows of earlier steps, each of these four re-solves priced at 10 $/MWh and
    # a fresh dispatch at 14 (Brighton just at its 600 MW); each step now starts
    # from the balance row alone.
    net = pjm5bus()
    warmed = EconomicDispatch(net)
    rng = np.random.default_rng(0)
    for step, demand in enumerate(breakpoints(warmed, rng, count=4)):
        warmed.solve(net.nominal_demand_mw * rng.uniform(1.0, 1.5, net.n_buses))  # congested
        again = warmed.solve(demand, time_step=step)
        fresh = EconomicDispatch(net).solve(demand, time_step=step)
        np.testing.assert_array_equal(again.lmp, fresh.lmp)
        np.testing.assert_array_equal(again.generation_mw, fresh.generation_mw)


# -- 7. Lines are named by their row in the file --------------------------------------
def test_a_bad_branch_is_named_by_its_row_in_the_file(tmp_path):
    # Row 2 is out of service; row 3 has zero reactance. Numbered among the
    # loaded lines it would be the second; the message names row 3.
    text = two_bus_case(gs_mw=0.0).replace(
        "	1	2	0	0.1	0	100	100	100	0	0	1	-360	360;",
        "	1	2	0	0.1	0	100	100	100	0	0	1	-360	360;\n"
        "	1	2	0	0.1	0	100	100	100	0	0	0	-360	360;\n"
        "	2	1	0	0	0	100	100	100	0	0	1	-360	360;",
    )
    path = Path(tmp_path) / "bad.m"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.m: branch row 3 \(2-1\): reactance x·tap = 0\.0"):
        load_matpower(path)


def test_network_messages_carry_the_lines_name_with_its_row():
    lines = (Line(0, 1, 0.1, name="A-B #1"), Line(0, 1, 0.0, name="A-B #4"))
    with pytest.raises(ValueError, match=r"network\.lines\[1\]\.reactance \(A-B #4\): 0\.0"):
        Network(buses=("A", "B"), lines=lines, generators=())


def test_surplus_penalty_is_still_the_price_of_curtailing_a_net_export():
    # A spoke exporting 70 MW over a 50 MW line curtails 20 MW at −penalty.
    net = Network(
        buses=("hub", "spoke"),
        lines=(Line(1, 0, 1.0, 50.0),),
        generators=(Generator(0, "oil", 300.0, cost_a=0.01, cost_b=20.0),),
    )
    result = EconomicDispatch(net, DispatchOptions(surplus_penalty=0.01)).solve([100.0, -70.0])
    np.testing.assert_allclose(result.surplus_mw, [0.0, 20.0], atol=1e-6)
    assert result.lmp[1] == pytest.approx(-0.01, abs=1e-6)
