"""Decompose the finite-N bias of the co-simulation against its mean-field law.

At large N the realised stage prices should approach the mean-field ones like
1/√N and the finite-population bias ``J^N − J^∞`` should vanish. This script
measures, per *variant* of a scenario (a candidate cause switched off in both
the mean-field model and the simulation through scenario settings):

* the mean realised-minus-mean-field net exchange per household, per device
  (exogenous base load − PV, ESS, EV, shiftable, controllable) [kW], averaged
  over seeds, clusters and steps, and its largest |per-(cluster, step)| value;
* the price error ``mean |π^N − π^∞|`` (as ``cosim epsilon`` reports it) and its
  deterministic part ``mean |E_seeds[π^N − π^∞]|`` [$/kWh];
* ``J^N − J^∞`` (share-weighted over clusters) [$/household-day], split into
  the energy bill per device at the mean-field price, the price term
  ``Δt Σ m^N (π^N − π^∞)``, and each private cost (ESS/EV degradation, EV
  departure penalty, ESS/EV end-of-day penalty, shiftable shortfall,
  discomfort).

Every variant freezes the base scenario's drawn cluster parameters and
distances, so switching a device off changes nothing else. Package code is
not modified: the simulation is instrumented through the engine's public
hooks — an observer records the device breakdown, and an EV schedule can move
the plug events onto the control grid (variant ``ev_snapped``: the timing of a
mean-field model that counts a leaving EV as plugged in for its whole last
step) without touching the mean-field side. Variants: see ``VARIANTS``;
``--set solver.soe_points=161`` applies an override to every variant.

Finding (2026-11, eps_convergence, 4000 households per cluster, 16 seeds):
the price-error floor (≈ 6–7·10⁻⁵ $/kWh) and most of the positive bias came
from EVs leaving inside a control step (the model charged them for the whole
step); the remaining, negative, bias is the SoE grid (linear mass splitting
and interpolated controls under convex penalties), ≈ h². Numbers: the commit
message that added this script.

    .venv/bin/python benchmarks/diagnose_bias.py scenarios/eps_convergence.toml \
        --households 4000 --seeds 4 --variants base,no_ev,soe161
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.scenario.game import parse_scenario, read_toml  # noqa: E402
from cosim.sim.engine import CoSimulation  # noqa: E402
from cosim.sim.hooks import Observer  # noqa: E402
from cosim.sim.population import EVSchedule, draw_ev_schedule  # noqa: E402
from models import devices, kernels  # noqa: E402
from models.equilibrium import solve_equilibrium  # noqa: E402
from models.feedback import FeedbackLaw  # noqa: E402
from models.game import build_game  # noqa: E402

DEVICES = ("exogenous", "ess", "shiftable", "controllable", "ev")
PRIVATE = (
    "ess_degradation",
    "ev_degradation",
    "ev_departure",
    "ess_terminal",
    "ev_terminal",
    "shiftable_shortfall",
    "discomfort",
)

#: Candidate causes switched off, as dotted scenario overrides.
VARIANTS: dict[str, dict[str, object]] = {
    "base": {},
    "soe161": {"solver.soe_points": 161},
    "no_ev": {"household.ev.share": 0.0},
    "no_soe_noise": {"household.ess.noise_kwh": 0.0, "household.ev.noise_kwh": 0.0},
    "no_exo_noise": {"household.pv.noise": 0.0, "household.load.noise": 0.0},
    "no_init_spread": {
        "household.ess.initial_std_kwh": 0.0,
        "household.ev.initial_std_kwh": 0.0,
    },
    # Point-mass EV windows on the grid: the EVs' events tie with the control clock at a
    # step boundary, and SimPy's tie order (not the model) then decides which step they
    # fall in, so this variant is not a clean switch; "ev_snapped" is.
    "ev_point_events": {
        "household.ev.departure_window_h": [8.0, 8.0],
        "household.ev.arrival_window_h": [18.0, 18.0],
    },
    # DES-side switch, the mean field untouched: EV plug-out moved to the end of its control
    # step and plug-in to the start of the next, the timing the per-step hazards assume.
    "ev_snapped": {"_snap_ev": True},
    "soe161_ev_snapped": {"solver.soe_points": 161, "_snap_ev": True},
    "all_off": {
        "household.ev.share": 0.0,
        "household.ess.noise_kwh": 0.0,
        "household.pv.noise": 0.0,
        "household.load.noise": 0.0,
        "household.ess.initial_std_kwh": 0.0,
    },
}


def _set(data: dict, dotted: str, value: object) -> None:
    *head, last = dotted.split(".")
    for key in head:
        data = data.setdefault(key, {})
    data[last] = value


def frozen_data(data: dict, game) -> dict:
    """The scenario with every drawn cluster parameter and the distances written out."""
    out = copy.deepcopy(data)
    cp = game.clusters
    daily = game.config.household.load.daily_kwh
    _set(out, "household.pv.capacity_kwp", cp.pv_kwp.tolist())
    _set(out, "household.load.scale", (cp.load_kwh / daily).tolist())
    _set(out, "household.ev.share", cp.ev_share.tolist())
    _set(out, "prices.rpc.network_charge", cp.rpc_network_charge.tolist())
    _set(out, "prices.rpc.slope", cp.rpc_slope.tolist())
    _set(out, "prices.coc.network_charge", cp.coc_network_charge.tolist())
    _set(out, "prices.coc.slope", cp.coc_slope.tolist())
    _set(out, "clusters.distances", {"kind": "matrix", "matrix": game.distances.tolist()})
    return out


def snapped_ev_schedule(game, population, seed: int, day: int) -> EVSchedule:
    """The day's EV schedule with every event moved onto the control grid.

    The way the mean-field chain sees it: a departure in step ``k`` happens
    just after the step's end (the EV charged for the whole step, the step's
    SoE noise applied), an arrival in step ``k`` just before its end
    (connected from step ``k + 1``).
    """
    schedule = draw_ev_schedule(game, population, seed, day)
    dt = game.dt_h
    end = lambda t: np.ceil(t / dt - 1e-9) * dt  # noqa: E731
    return replace(
        schedule,
        departure_h=end(schedule.departure_h) + 1e-7,
        arrival_h=end(schedule.arrival_h) - 1e-7,
    )


class DeviceBreakdown(Observer):
    """Records a run's per-device cluster means [kW] and the parts of its private costs [$]."""

    def __init__(self, game, households: np.ndarray, days: int = 1) -> None:
        m = game.n_clusters
        self.device_kw = np.zeros((len(DEVICES), game.steps * days, m))
        self.private_parts = {name: np.zeros(int(np.sum(households))) for name in PRIVATE}

    def interval_closed(self, sim: CoSimulation, step: int) -> None:
        pop = sim.population
        counts = np.bincount(pop.cluster, minlength=sim.game.n_clusters) * sim.dt_h
        ev = sim.interval_energy - sim.energy.sum(axis=1)
        columns = [*sim.energy.T, ev]
        for d, e in enumerate(columns):
            self.device_kw[d, step] = np.bincount(pop.cluster, e, sim.game.n_clusters) / counts

    def day_ending(self, sim: CoSimulation, day: int) -> None:
        game, pop = sim.game, sim.population
        hh = game.config.household
        parts = self.private_parts
        parts["ev_departure"] += sim.rec.private[day]  # only departures are charged so far
        parts["ess_degradation"] += hh.ess.degradation * pop.ess_throughput
        parts["ev_degradation"] += hh.ev.degradation * pop.ev_throughput
        for name, device, soe, owned in (
            ("ess_terminal", hh.ess, pop.ess_soe, 1),
            ("ev_terminal", hh.ev, pop.ev_soe, pop.has_ev),
        ):
            parts[name] += owned * devices.terminal_penalty(
                soe,
                device.initial_mean_kwh,
                device.terminal_linear,
                device.terminal_quadratic,
                device.terminal_smoothing_kwh,
            )
        quantum = hh.shiftable.power_kw * game.dt_h
        parts["shiftable_shortfall"] += hh.shiftable.shortfall_penalty * quantum * pop.shift_left
        u_c = sim.law.controllable[pop.cluster]
        parts["discomfort"] += hh.controllable.discomfort * game.dt_h * np.sum(u_c**2, axis=1)


def _battery_other(game, grid, control, **zeroed) -> np.ndarray:
    grid = replace(grid, **{k: np.zeros_like(getattr(grid, k)) for k in zeroed})
    m, k, s = control.shape
    out = [np.empty((m, k + 1, s)), np.empty((m, k + 1, s)), np.empty((m, k)), np.empty(m)]
    kernels.battery_forward(control, grid.initial, game.dt_h, *grid.kernel_args(), *out)
    return out[3]


def mean_field_parts(eq) -> dict[str, np.ndarray]:
    """Per-cluster private costs of the law in the mean field, split like the simulation's."""
    game, flow, pol = eq.game, eq.flow, eq.policy
    share = game.clusters.ev_share
    ess_all = flow.ess_cost
    ess_degr = _battery_other(game, game.ess, pol.ess, terminal=True)
    ev_all = flow.ev_cost / np.where(share > 0, share, 1.0)
    ev_no_term = _battery_other(game, game.ev, pol.ev, terminal=True)
    ev_degr = _battery_other(game, game.ev, pol.ev, terminal=True, depart_cost=True)
    return {
        "ess_degradation": ess_degr,
        "ev_degradation": share * ev_degr,
        "ev_departure": share * (ev_no_term - ev_degr),
        "ess_terminal": ess_all - ess_degr,
        "ev_terminal": share * (ev_all - ev_no_term),
        "shiftable_shortfall": flow.shiftable_cost,
        "discomfort": flow.controllable_cost,
    }


def run_variant(
    data: dict, base_dir: Path, households: int, seeds: list[int], snap_ev: bool = False
) -> dict:
    scenario = parse_scenario(data, "<diagnose>", base_dir)
    game = build_game(scenario, base_dir)
    t0 = time.perf_counter()
    eq = solve_equilibrium(game, scenario.simulation.mode)
    solve_s = time.perf_counter() - t0
    law = FeedbackLaw.from_equilibrium(eq)
    flow, dt, shares = eq.flow, game.dt_h, game.clusters.shares
    mf_kw = np.stack(
        [flow.exogenous_kw, flow.ess_kw, flow.shiftable_kw, flow.controllable_kw, flow.ev_kw]
    )  # (D, M, K)
    mf_parts = mean_field_parts(eq)
    pi_inf = eq.prices.stage  # (M, K)
    m = game.n_clusters
    n_p = np.full(m, households, dtype=np.int64)

    dkw, dpi, err, bias, bill_dev, price_term, priv = [], [], [], [], [], [], []
    for seed in seeds:
        parts = DeviceBreakdown(game, n_p)
        sim = CoSimulation(
            game,
            law,
            eq.mode,
            n_p,
            days=1,
            seed=seed,
            observers=[parts],
            ev_schedule=snapped_ev_schedule if snap_ev else draw_ev_schedule,
        )
        sim.run()
        pi_n = sim.rec.stage.T  # (M, K)
        dev_kw = parts.device_kw.transpose(0, 2, 1)  # (D, M, K)
        dkw.append(dev_kw - mf_kw)
        dpi.append(pi_n - pi_inf)
        err.append(float(np.mean(np.abs(pi_n - pi_inf))))
        cost = sim.rec.bills[0] + sim.rec.private[0]
        cl = sim.population.cluster
        count = np.bincount(cl, minlength=m)
        j_n = np.bincount(cl, cost, m) / count
        bias.append(float(shares @ (j_n - eq.cost)))
        bill_dev.append(dt * np.einsum("dmk,mk->dm", dev_kw - mf_kw, pi_inf) @ shares)
        price_term.append(float(shares @ (dt * np.sum(dev_kw.sum(axis=0) * (pi_n - pi_inf), 1))))
        priv.append(
            [
                float(shares @ (np.bincount(cl, parts.private_parts[k], m) / count - mf_parts[k]))
                for k in PRIVATE
            ]
        )
    dkw, dpi = np.mean(dkw, axis=0), np.mean(dpi, axis=0)

    def ci(x) -> list[float]:
        x = np.asarray(x, dtype=float)
        half = 1.96 * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
        return [float(x.mean()), float(half)]

    bill_dev = np.asarray(bill_dev)
    priv = np.asarray(priv)
    return {
        "households_per_cluster": households,
        "seeds": len(seeds),
        "solve_s": round(solve_s, 2),
        "converged": eq.converged,
        "mean_field_cost": float(eq.mean_cost),
        "price_error": ci(err),
        "price_bias": float(np.mean(np.abs(dpi))),
        "net_kw_bias_mean": float(np.mean(dkw.sum(axis=0))),
        "net_kw_bias_abs": float(np.mean(np.abs(dkw.sum(axis=0)))),
        "device_kw_bias_mean": {d: float(np.mean(dkw[i])) for i, d in enumerate(DEVICES)},
        "device_kw_bias_maxabs": {d: float(np.max(np.abs(dkw[i]))) for i, d in enumerate(DEVICES)},
        "device_kw_bias_by_step": {
            d: np.round(shares @ dkw[i], 5).tolist()
            for i, d in enumerate(DEVICES)
            if d != "controllable"
        },
        "j_bias": ci(bias),
        "j_bias_sum_of_parts": float(
            np.mean(bill_dev.sum(axis=1) + priv.sum(axis=1)) + np.mean(price_term)
        ),
        "j_bias_parts": {
            **{f"bill_{d}": ci(bill_dev[:, i]) for i, d in enumerate(DEVICES)},
            "price_term": ci(price_term),
            **{k: ci(priv[:, i]) for i, k in enumerate(PRIVATE)},
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/eps_convergence.toml"))
    parser.add_argument("--households", type=int, default=4000, help="per cluster")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--variants", default="base,soe161,no_ev,no_soe_noise,no_exo_noise")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="extra override for every variant, e.g. solver.soe_points=81 (JSON value)",
    )
    args = parser.parse_args(argv)
    path = Path(args.scenario)
    data, _ = read_toml(path)
    base_game = build_game(parse_scenario(data, str(path), path.parent), path.parent)
    base = frozen_data(data, base_game)
    extra = {}
    for item in args.set:
        key, value = item.split("=", 1)
        extra[key] = json.loads(value)
    report = {"scenario": str(path), "extra": extra, "variants": {}}
    for name in args.variants.split(","):
        d = copy.deepcopy(base)
        settings = {**extra, **VARIANTS[name]}
        snap = bool(settings.pop("_snap_ev", False))
        for key, value in settings.items():
            _set(d, key, value)
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        report["variants"][name] = run_variant(d, path.parent, args.households, seeds, snap)
        print(json.dumps({name: report["variants"][name]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
