"""The households' bus in the wholesale market: ``p_G`` = LMP + retail adder (SPEC §3, §6).

The cluster-of-clusters sits at one bus of a transmission network. At each
step an economic dispatch (:class:`market.dispatch.EconomicDispatch`) meets
every bus's other load — a share flat, the rest on the BDEW H0 shape, less the
grid-scale solar and wind output — plus the households' net import at their
bus; the LMP there plus a retail adder is the grid price ``p_G`` every price
of the game is built on.

The rest of the households' bus load is uncertain: ``N(profile, σ²)`` MW,
drawn per step in the co-simulation. The mean field prices the **expected**
LMP over that draw, a smooth function of the households' import even where
the LMP itself jumps (a unit reaching its limit, a line congesting — on
Hawaii40 the evening LMP climbs 4 $/MWh per 5 MW): each step's LMP is
tabulated once on a grid of imports, then convolved with the Gaussian. In the
fixed point the import is the population's mean net exchange times the
households represented; in the co-simulation it is the realised one, and the
LMP is a dispatch of that step's realised demand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from market.aggregators import RENEWABLE_FUELS
from market.matpower import load_matpower
from market.network import Network, pjm5bus, redraw_costs_by_fuel
from models.config import SystemLoadConfig, WholesaleLinkConfig, scenario_path

if TYPE_CHECKING:
    from market.dispatch import DispatchOptions, DispatchResult, EconomicDispatch

#: Stream of the scenario's seed that draws the generators' costs.
COST_STREAM = 4


@dataclass(frozen=True)
class WholesaleLink:
    """The dispatch the households' bus price comes from, and everything it needs."""

    network: Network
    """The network with its costs; renewable units enter as negative demand."""
    bus: int
    """Index of the households' bus."""
    other_load_mw: np.ndarray
    """Every bus's other load net of grid-scale renewables per step [MW], ``(K, B)``."""
    renewables_mw: np.ndarray
    """Output of the grid-scale solar and wind units per step [MW], ``(K,)``."""
    households: int
    """Real households the cluster-of-clusters stands for."""
    retail_adder: float
    """[$/kWh]."""
    bus_load_std_mw: float
    """Std of the rest of the households' bus load per step [MW]."""
    import_grid_mw: np.ndarray
    """Households' imports at which the LMP is tabulated [MW], ``(G,)``."""
    expected_lmp: np.ndarray
    """Expected LMP at the bus over the bus-load draw at those imports [$/MWh], ``(I, G)``
    for the ``I`` market intervals of the day."""
    steps_per_interval: int = 1
    """Control steps per market interval: one dispatch per interval meets the interval's mean
    import (``other_load_mw`` and ``expected_lmp`` have one row per interval), and its LMP
    prices every step of it. 1: the coupled run's dispatch of every control step."""
    dispatch_options: DispatchOptions | None = None
    """The dispatch's slack prices (value of lost load, surplus); ``None``: its defaults."""

    def __getstate__(self) -> dict:  # the solver is rebuilt where the link is unpickled
        state = dict(self.__dict__)
        state.pop("_dispatch", None)
        return state

    @property
    def dispatch(self) -> EconomicDispatch:
        """The economic dispatch of the network without its renewable units (built once)."""
        found = self.__dict__.get("_dispatch")
        if found is None:
            # Pyomo and HiGHS load here, with the first dispatch, not with every game
            from market.dispatch import EconomicDispatch

            keep = tuple(g for g in self.network.generators if g.fuel not in RENEWABLE_FUELS)
            found = EconomicDispatch(replace(self.network, generators=keep), self.dispatch_options)
            object.__setattr__(self, "_dispatch", found)
        return found

    def import_mw(self, mean_net_kw: np.ndarray) -> np.ndarray:
        """The households' net import at their bus [MW] from the mean exchange per household."""
        return self.households * np.asarray(mean_net_kw, dtype=float) / 1000.0

    def interval_import_mw(self, mean_net_kw: np.ndarray) -> np.ndarray:
        """The households' mean net import per market interval [MW], ``(I,)`` from ``(K,)``."""
        x = self.import_mw(mean_net_kw)
        return x.reshape(-1, self.steps_per_interval).mean(axis=1)

    def solve(self, k: int, import_mw: float, bus_load_mw: float = 0.0) -> DispatchResult:
        """The dispatch of step ``k``: households import ``import_mw``, the bus's load is off
        its profile by ``bus_load_mw``."""
        demand = self.other_load_mw[k].copy()
        demand[self.bus] += float(import_mw) + float(bus_load_mw)
        return self.dispatch.solve(demand, time_step=k)

    def grid_price(self, mean_net_kw: np.ndarray) -> np.ndarray:
        """``p_G(k) = E[LMP_bus(i(k))]/1000 + adder`` for a day of mean exchanges ``(K,)``
        [$/kWh]; ``i(k)`` is step ``k``'s market interval, dispatched at its mean import."""
        x = self.interval_import_mw(mean_net_kw)
        lmp = [np.interp(x[i], self.import_grid_mw, self.expected_lmp[i]) for i in range(len(x))]
        return np.repeat(np.asarray(lmp), self.steps_per_interval) / 1000.0 + self.retail_adder


def renewable_mw(network: Network, solar: np.ndarray, wind: float) -> np.ndarray:
    """Output of the solar and wind units per bus [MW] for solar factors ``(K,)``, ``(K, B)``."""
    out = np.zeros((len(solar), network.n_buses))
    for g in network.generators:
        if g.fuel == "solar":
            out[:, g.bus] += g.pmax_mw * np.minimum(solar, 1.0)
        elif g.fuel == "wind":
            out[:, g.bus] += g.pmax_mw * wind
    return out


def system_load(
    config: SystemLoadConfig, network: Network, base_per_kwh: np.ndarray, pv_per_kwp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every bus's other load and the grid-scale renewables' output per step [MW], ``(K, B)``.

    The load is ``load_peak_fraction`` × the bus's nominal demand × a profile
    whose ``load_flat_share`` is flat and the rest follows ``base_per_kwh``; the
    solar units follow ``pv_per_kwp`` scaled to ``solar_factor`` at its peak.
    """
    nominal = np.clip(network.nominal_demand_mw, 0.0, None)
    flat = config.load_flat_share
    profile = flat + (1.0 - flat) * base_per_kwh / base_per_kwh.max()
    load = config.load_peak_fraction * nominal[None, :] * profile[:, None]
    solar = config.solar_factor * pv_per_kwp / max(float(pv_per_kwp.max()), 1e-12)
    return load, renewable_mw(network, solar, config.wind_factor)


def expected_lmp(link: WholesaleLink, import_grid_mw: np.ndarray, std_mw: float) -> np.ndarray:
    """``E_Z[LMP_bus(k; x + σZ)]`` on ``import_grid_mw`` for every step, ``(K, G)`` [$/MWh].

    The LMP is dispatched on the grid extended by ``4σ`` each side and the
    Gaussian expectation taken by the trapezoidal rule on it (exact for an
    LMP linear between grid points; the grid spacing should stay well below σ).
    """
    h = float(import_grid_mw[1] - import_grid_mw[0])
    pad = int(np.ceil(4.0 * std_mw / h)) if std_mw > 0 else 0
    wide = import_grid_mw[0] + h * np.arange(-pad, len(import_grid_mw) + pad)
    steps = link.other_load_mw.shape[0]
    raw = np.array([[link.solve(k, x).lmp[link.bus] for x in wide] for k in range(steps)])
    if pad == 0:
        return raw
    offsets = h * np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (offsets / std_mw) ** 2)
    kernel /= kernel.sum()
    return np.stack([np.convolve(row, kernel[::-1], mode="valid") for row in raw])


def read_network(network_file: str | None, base_dir: Path | None = None) -> Network:
    """The case a ``[wholesale]`` table names, with the file's costs; none: the PJM 5-bus case."""
    if network_file is None:
        return pjm5bus()
    return load_matpower(scenario_path(network_file, base_dir))


def build_link(
    config: WholesaleLinkConfig,
    base_per_kwh: np.ndarray,
    pv_per_kwp: np.ndarray,
    households: int,
    import_kw: tuple[float, float],
    rng: np.random.Generator,
    base_dir: Path | None = None,
) -> WholesaleLink:
    """The link of a scenario's ``[wholesale]`` table.

    Parameters
    ----------
    config
        The table.
    base_per_kwh, pv_per_kwp
        The game's load and PV shapes per step (``(K,)``): the other load and
        the grid-scale solar follow them.
    households
        Households of the game (used when the table does not say how many the
        cluster-of-clusters stands for).
    import_kw
        Lowest and highest mean net exchange per household the devices allow
        [kW]: the range of the LMP table.
    rng
        The scenario's cost stream (a case file's costs are drawn from it).
    base_dir
        Directory a relative ``network_file`` refers to.

    Raises
    ------
    ValueError
        When ``bus`` is not a bus of the network.
    """
    network = read_network(config.network_file, base_dir)
    if config.network_file is not None and config.redraw_costs:
        network = redraw_costs_by_fuel(network, rng)
    if config.bus >= network.n_buses:
        raise ValueError(
            f"wholesale.bus: {config.bus}: the network has buses 0..{network.n_buses - 1}"
        )
    load, renewables = system_load(config, network, base_per_kwh, pv_per_kwp)
    represented = config.households if config.households is not None else households
    grid = represented * np.linspace(*import_kw, config.import_points) / 1000.0
    return tabulated_link(
        network=network,
        bus=config.bus,
        other_load_mw=load - renewables,
        renewables_mw=renewables.sum(axis=1),
        households=represented,
        retail_adder=config.retail_adder,
        bus_load_std_mw=config.bus_load_std_mw,
        import_grid_mw=grid,
    )


def tabulated_link(**fields: object) -> WholesaleLink:
    """A :class:`WholesaleLink` of ``fields`` (all but ``expected_lmp``), its table of the
    expected LMP at the bus dispatched on ``import_grid_mw`` for every market interval."""
    other_load, grid = np.asarray(fields["other_load_mw"]), np.asarray(fields["import_grid_mw"])
    link = WholesaleLink(**fields, expected_lmp=np.empty((other_load.shape[0], grid.size)))  # type: ignore[arg-type]
    link.expected_lmp[:] = expected_lmp(link, grid, link.bus_load_std_mw)
    return link
