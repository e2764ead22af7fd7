"""What a co-simulation records, and where each cluster's energy goes in its books."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.pricing import Mode

__all__ = ["BOOK_FIELDS", "WHOLESALE_FIELDS", "Recorder", "cluster_books"]

#: Interval books per cluster: energy [kWh] and money [$].
BOOK_FIELDS = (
    "bought_kwh",
    "sold_kwh",
    "intra_kwh",
    "inter_in_kwh",
    "inter_out_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "billed",
    "grid_payment",
    "inter_payment",
)
#: Per-interval records of the wholesale dispatch (with a wholesale link).
WHOLESALE_FIELDS = (
    "lmp",
    "import_mw",
    "other_load_mw",
    "generation_mw",
    "shed_mw",
    "surplus_mw",
)


@dataclass
class Recorder:
    """Columnar records of a run (arrays filled in place, tables at the end)."""

    m: np.ndarray
    seen: np.ndarray
    scalar: np.ndarray
    rpc: np.ndarray
    coc: np.ndarray
    stage: np.ndarray
    grid_price: np.ndarray
    books: dict[str, np.ndarray]
    bills: np.ndarray
    """Per household and day: energy bill [$]."""
    private: np.ndarray
    """Per household and day: degradation, discomfort and penalties [$]."""
    events: list[tuple[float, int, str, float]]
    trajectories: list[tuple[int, int, float, float, float, int, float, float]]
    market: list[tuple[float, float]]
    wholesale: dict[str, np.ndarray] | None = None
    """With a wholesale link, per interval: ``lmp`` at the households' bus [$/MWh],
    ``import_mw``, ``other_load_mw`` (the rest of the system, with the bus-load
    draw), ``generation_mw``, ``shed_mw``, ``surplus_mw``."""
    bound_excess: float = 0.0
    """Largest excursion of any SoE outside its bounds seen at a step boundary [kWh]."""

    @classmethod
    def empty(cls, steps: int, clusters: int, days: int, households: int) -> Recorder:
        """Zeros for a run of ``steps`` control steps and ``days`` days."""
        per_step = (steps, clusters)
        return cls(
            m=np.zeros(per_step),
            seen=np.zeros(per_step),
            scalar=np.zeros(steps),
            rpc=np.zeros(per_step),
            coc=np.zeros(per_step),
            stage=np.zeros(per_step),
            grid_price=np.zeros(steps),
            books={f: np.zeros(per_step) for f in BOOK_FIELDS},
            bills=np.zeros((days, households)),
            private=np.zeros((days, households)),
            events=[],
            trajectories=[],
            market=[],
        )


def cluster_books(mode: Mode, bought: np.ndarray, sold: np.ndarray) -> dict[str, np.ndarray]:
    """Where each cluster's energy went: matched inside, across clusters, or with the grid.

    Stand-alone: every household trades with the grid. RPC-only: purchases and
    sales inside a cluster are matched first, the rest goes to the grid. CoC:
    clusters' remaining surpluses then serve other clusters' deficits (shared
    in proportion), and only the system's remainder meets the grid. In every
    mode ``bought = intra + inter_in + grid_import`` and
    ``sold = intra + inter_out + grid_export``.
    """
    zero = np.zeros_like(bought)
    if mode is Mode.STANDALONE:
        return {
            "bought_kwh": bought,
            "sold_kwh": sold,
            "intra_kwh": zero,
            "inter_in_kwh": zero,
            "inter_out_kwh": zero,
            "grid_import_kwh": bought,
            "grid_export_kwh": sold,
        }
    intra = np.minimum(bought, sold)
    deficit = bought - intra
    surplus = sold - intra
    inter_in = zero
    inter_out = zero
    if mode is Mode.COC:
        flow = min(deficit.sum(), surplus.sum())
        if flow > 0:
            inter_in = deficit * (flow / deficit.sum())
            inter_out = surplus * (flow / surplus.sum())
    return {
        "bought_kwh": bought,
        "sold_kwh": sold,
        "intra_kwh": intra,
        "inter_in_kwh": inter_in,
        "inter_out_kwh": inter_out,
        "grid_import_kwh": deficit - inter_in,
        "grid_export_kwh": surplus - inter_out,
    }
