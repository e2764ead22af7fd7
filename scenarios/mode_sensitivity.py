"""How the three-mode cost reductions move with PV size and with the network charge δ.

Seed 000 reports −16 % (RPC-only) and −29 % (CoC) against stand-alone for its
generic agent. The ordering is a net buyer's: local prices sit below the grid
price by up to δ, so the more a household buys, the more it saves; a net
exporter gains nothing from local prices below the grid price it could sell at
anyway, and with large PV the ordering can reverse. This script re-solves the
paper scenario over a range of PV sizes and of δ and records, per setting, the
reductions of the generic agent and of the population mean, and the share of
clusters in which stand-alone > RPC-only > CoC holds.

    python scenarios/mode_sensitivity.py [--clusters M] [--out DIR]

Writes ``sensitivity.parquet`` and ``mode_sensitivity.png`` into DIR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cosim.scenario.game import Scenario, load_scenario
from cosim.studies.modes import compare_modes, mode_table
from market.pricing import Mode
from models.game import build_game

HERE = Path(__file__).resolve().parent
PV_RANGES = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
NETWORK_CHARGES = [0.01, 0.02, 0.03, 0.04, 0.05]


def updated(scenario: Scenario, changes: dict[str, object]) -> Scenario:
    """A copy of ``scenario`` with dotted-path fields replaced, validated again."""
    data = scenario.model_dump()
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return Scenario.model_validate(data)


def reductions(scenario: Scenario, base_dir: Path) -> dict[str, float]:
    """Reductions against stand-alone and the share of clusters where the ordering holds."""
    results = compare_modes(build_game(scenario, base_dir))
    table, per_cluster = mode_table(results)
    rows = table.set_index("mode")
    base, rpc, coc = (rows.loc[m, "mean_cost"] for m in ("standalone", "rpc", "coc"))
    costs = per_cluster.pivot(index="cluster", columns="mode", values="cost")
    ordered = (costs["standalone"] > costs["rpc"]) & (costs["rpc"] > costs["coc"])
    net = per_cluster[per_cluster["mode"] == "coc"]["net_kwh"]
    return {
        "rpc_generic": rows.loc["rpc", "generic_reduction"],
        "coc_generic": rows.loc["coc", "generic_reduction"],
        "rpc_mean": rows.loc["rpc", "mean_reduction"],
        "coc_mean": rows.loc["coc", "mean_reduction"],
        "rpc_saving_mean": float(base - rpc),
        "coc_saving_mean": float(base - coc),
        "ordered_share": float(ordered.mean()),
        "net_purchase_kwh": float(net.mean()),
        "converged": bool(all(r.converged for r in results.values())),
        "standalone_mean_cost": float(results[Mode.STANDALONE].mean_cost),
    }


def plot(table: pd.DataFrame, path: Path) -> None:
    """Savings against stand-alone ($ and %) over PV size and over δ."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex="col")
    for col, (sweep, xlabel) in enumerate(
        (
            ("pv", "PV per household [kWp] (middle of the clusters' range)"),
            ("delta", "network charge δ of the RPC and CoC prices [$/kWh]"),
        )
    ):
        part = table[table["sweep"] == sweep]
        x = part["x"].to_numpy()
        top, bottom = axes[0, col], axes[1, col]
        top.plot(x, part["rpc_saving_mean"], "o-", label="RPC-only")
        top.plot(x, part["coc_saving_mean"], "s-", label="CoC")
        top.axhline(0, color="grey", lw=0.6)
        top.set_ylabel("mean saving vs stand-alone [$/household-day]")
        twin = top.twinx()
        twin.plot(x, 100 * part["ordered_share"], "k:", label="clusters ordered")
        twin.set_ylabel("clusters with stand-alone > RPC > CoC [%]")
        twin.set_ylim(-5, 105)
        lines, labels = top.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        top.legend(lines + more[0], labels + more[1], fontsize=8)
        buyers = part["standalone_mean_cost"] > 0  # a percentage needs a positive base
        for key, marker, label in (
            ("rpc", "o", "RPC-only"),
            ("coc", "s", "CoC"),
        ):
            bottom.plot(
                x[buyers], -100 * part[f"{key}_mean"][buyers], marker + "-", label=f"{label}, mean"
            )
            bottom.plot(
                x[buyers],
                -100 * part[f"{key}_generic"][buyers],
                marker + "--",
                alpha=0.6,
                label=f"{label}, generic agent",
            )
        bottom.axhline(0, color="grey", lw=0.6)
        bottom.set_ylabel("cost change vs stand-alone [%]")
        bottom.set_xlabel(xlabel)
        bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(HERE / "paper_gmfg.toml"))
    parser.add_argument("--clusters", type=int, help="override the number of clusters")
    parser.add_argument("--out", default="results/mode_sensitivity")
    args = parser.parse_args()
    loaded = load_scenario(args.scenario)
    base = loaded.scenario
    if args.clusters:
        base = updated(base, {"clusters.count": args.clusters})
    rows = []
    for low, high in PV_RANGES:
        s = updated(base, {"household.pv.capacity_kwp": {"low": low, "high": high}})
        rows.append({"sweep": "pv", "x": (low + high) / 2, **reductions(s, loaded.base_dir)})
    for delta in NETWORK_CHARGES:
        s = updated(
            base,
            {
                "prices.rpc.network_charge": {"low": delta - 0.0075, "high": delta + 0.0075},
                "prices.coc.network_charge": delta,
            },
        )
        rows.append({"sweep": "delta", "x": delta, **reductions(s, loaded.base_dir)})
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "sensitivity.parquet", index=False)
    plot(table, out / "mode_sensitivity.png")
    print(json.dumps(table.round(4).to_dict("records"), indent=1))
    if not np.all(table["converged"]):
        print("warning: some equilibria did not converge (see 'converged')")


if __name__ == "__main__":
    main()
