"""The engine's public hooks: households' own laws, observers, the EV schedule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cosim.sim.engine import CoSimulation
from cosim.sim.hooks import HouseholdLaw, LawRow, Observer
from cosim.sim.population import draw_ev_schedule
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.feedback import FeedbackLaw
from models.game import build_game

HOUSEHOLDS = np.array([4, 4, 4])
SEED = 3


@pytest.fixture(scope="module")
def equilibrium():
    config = GameConfig.model_validate(
        {
            "seed": 5,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 3, "households": 10, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
        }
    )
    return solve_equilibrium(build_game(config), "coc")


class Log(Observer):
    """Every call in order, and the population's energies and states at each interval's close."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.energy: list[np.ndarray] = []
        self.states: list[np.ndarray] = []
        self.priced_at_close: list[bool] = []
        self.throughput: dict[str, list[float]] = {"ending": [], "ended": []}

    def interval_closed(self, sim: CoSimulation, step: int) -> None:
        assert sim.env.now == pytest.approx((step + 1) * sim.dt_h)
        self.calls.append(("interval", step))
        self.energy.append(np.column_stack([sim.energy, sim.ev_energy, sim.interval_energy]))
        pop = sim.population
        self.states.append(np.column_stack([pop.ess_soe, pop.ev_soe, pop.ev_connected]))
        self.priced_at_close.append(bool(sim.rec.rpc[step].any()))

    def day_ending(self, sim: CoSimulation, day: int) -> None:
        self.calls.append(("day_ending", day))
        self.throughput["ending"].append(float(sim.population.ess_throughput.sum()))

    def day_ended(self, sim: CoSimulation, day: int) -> None:
        self.calls.append(("day_ended", day))
        self.throughput["ended"].append(float(sim.population.ess_throughput.sum()))


class ChargeFlatOut(HouseholdLaw):
    """The home battery charges flat out at every step, chosen step by step."""

    def set_controls(
        self, sim: CoSimulation, household: int, step: int, k: int, row: LawRow
    ) -> None:
        row.ess[k] = 1.0


def run(equilibrium, days: int = 1, reference: bool = False, **hooks) -> CoSimulation:
    sim = CoSimulation(
        equilibrium.game,
        FeedbackLaw.from_equilibrium(equilibrium),
        equilibrium.mode,
        HOUSEHOLDS,
        days=days,
        seed=SEED,
        reference=reference,
        record_households=np.arange(HOUSEHOLDS.sum()),
        **hooks,
    )
    sim.run()
    return sim


def assert_same_run(a: CoSimulation, b: CoSimulation) -> None:
    for name in ("m", "rpc", "coc", "stage", "grid_price", "bills", "private"):
        np.testing.assert_array_equal(getattr(a.rec, name), getattr(b.rec, name), err_msg=name)
    for name, book in a.rec.books.items():
        np.testing.assert_array_equal(book, b.rec.books[name], err_msg=name)
    assert a.rec.events == b.rec.events
    assert a.rec.trajectories == b.rec.trajectories
    assert a.rec.market == b.rec.market


def test_an_observer_sees_every_interval_and_every_day_once_in_order(equilibrium):
    log = Log()
    sim = run(equilibrium, days=2, observers=[log])
    k = sim.game.steps
    day = [("day_ending", 0), ("day_ended", 0)]
    expected = [("interval", s) for s in range(k)] + day
    expected += [("interval", s) for s in range(k, 2 * k)] + [("day_ending", 1), ("day_ended", 1)]
    assert log.calls == expected
    # an interval is observed once its energy is known and before it is priced
    assert not any(log.priced_at_close)
    assert sim.rec.rpc.all()
    for e in log.energy:
        np.testing.assert_array_equal(e[:, :4].sum(axis=1) + e[:, 4], e[:, 5])
    # a day ends before the engine books its private costs, and has ended after
    assert all(t > 0 for t in log.throughput["ending"])
    assert log.throughput["ended"] == [0.0, 0.0]
    # watching changes nothing
    assert_same_run(sim, run(equilibrium, days=2))


@pytest.mark.parametrize("reference", [False, True], ids=["compiled", "reference"])
def test_the_default_household_law_is_the_plain_run_bit_for_bit(equilibrium, reference):
    plain = run(equilibrium, days=2, reference=reference)
    own = {0: HouseholdLaw(), 5: HouseholdLaw(), 11: HouseholdLaw()}
    same = run(equilibrium, days=2, reference=reference, household_laws=own)
    assert same.law_tables.ess.shape[0] == equilibrium.game.n_clusters + 3
    assert_same_run(plain, same)


def test_a_household_law_changes_that_household_only(equilibrium):
    i = 5
    plain_log, own_log = Log(), Log()
    run(equilibrium, observers=[plain_log])
    sim = run(equilibrium, observers=[own_log], household_laws={i: ChargeFlatOut()})
    plain_e, own_e = np.array(plain_log.energy), np.array(own_log.energy)
    plain_s, own_s = np.array(plain_log.states), np.array(own_log.states)
    others = np.arange(HOUSEHOLDS.sum()) != i
    np.testing.assert_array_equal(own_e[:, others], plain_e[:, others])
    np.testing.assert_array_equal(own_s[:, others], plain_s[:, others])
    assert np.all(own_e[:, i, 1] >= 0.0)  # charging only
    assert not np.array_equal(own_e[:, i, 1], plain_e[:, i, 1])
    assert not np.array_equal(own_s[:, i, 0], plain_s[:, i, 0])
    # the household still counts in its own cluster's aggregate
    cluster = int(sim.population.cluster[i])
    members = sim.population.cluster == cluster
    m = own_e[:, members, 5].sum(axis=1) / (HOUSEHOLDS[cluster] * sim.dt_h)
    np.testing.assert_allclose(sim.rec.m[:, cluster], m, rtol=1e-12)


def test_the_reference_path_applies_households_own_laws_like_the_kernel(equilibrium):
    own = {5: ChargeFlatOut()}
    fast = run(equilibrium, days=2, household_laws=own)
    slow = run(equilibrium, days=2, reference=True, household_laws={5: ChargeFlatOut()})
    assert_same_run(fast, slow)


def test_a_household_law_shaped_unlike_the_clusters_is_refused(equilibrium):
    class Short(HouseholdLaw):
        def tables(self, sim, household):
            return super().tables(sim, household)._replace(controllable=np.zeros(3))

    with pytest.raises(ValueError, match=r"household_laws\[2\]: its controllable table"):
        run(equilibrium, household_laws={2: Short()})
    with pytest.raises(ValueError, match="household 99 is not in the population"):
        run(equilibrium, household_laws={99: HouseholdLaw()})


def test_the_ev_schedule_decides_when_evs_leave_and_come_back(equilibrium):
    def fixed(game, population, seed, day):
        drawn = draw_ev_schedule(game, population, seed, day)
        n = len(drawn.households)
        return replace(
            drawn,
            departure_h=np.full(n, 24.0 * day + 7.5),
            arrival_h=np.full(n, 24.0 * day + 17.25),
        )

    sim = run(equilibrium, ev_schedule=fixed)
    times = {
        kind: {t for t, _, k, _ in sim.rec.events if k == kind} for kind in ("departure", "arrival")
    }
    assert times == {"departure": {7.5}, "arrival": {17.25}}
    assert_same_run(run(equilibrium), run(equilibrium, ev_schedule=draw_ev_schedule))
