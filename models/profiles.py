"""Exogenous daily profiles: PV per kWp (pvlib) and household base load (BDEW H0).

Both come from field tools (SPEC §9), computed on the scenario's control grid:

* PV: solar position and Ineichen clear-sky irradiance at the scenario's
  location (pvlib), transposed to a south-facing plane tilted at the latitude
  (Perez-free isotropic sky), cell temperature from the SAPM model and DC power
  from PVWatts with the CEC default temperature coefficient, then a 96 %
  inverter efficiency: kW per kWp installed, 0 outside sunrise→sunset.
* Base load: the BDEW H0 standard load profile (demandlib), the scenario day's
  season and day type with its dynamisation factor, rescaled to one kWh per day.

Provenance and parameters: ``docs/data.md``.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd


def step_times(date: dt.date, timezone: str, dt_h: float, steps: int) -> pd.DatetimeIndex:
    """Start times of the ``steps`` control intervals of ``date`` (local time)."""
    start = pd.Timestamp(date).tz_localize(timezone)
    return start + pd.to_timedelta(np.arange(steps) * dt_h, unit="h")


def pv_per_kwp(
    latitude: float,
    longitude: float,
    altitude_m: float,
    timezone: str,
    date: dt.date,
    dt_h: float,
    steps: int,
) -> np.ndarray:
    """Clear-sky AC power of 1 kWp of PV, averaged over each control step [kW/kWp].

    Parameters
    ----------
    latitude, longitude, altitude_m, timezone
        Site (degrees, metres, IANA zone).
    date
        The day simulated.
    dt_h, steps
        Control step [h] and number of steps.

    Returns
    -------
    numpy.ndarray
        Shape ``(steps,)``; the normalised profile ``s(t)`` of eq. (1) times the
        system's conversion to AC, so ``capacity_kwp · s`` is the mean PV power.
    """
    return _pv_per_kwp_cached(latitude, longitude, altitude_m, timezone, date, dt_h, steps).copy()


@lru_cache(maxsize=16)
def _pv_per_kwp_cached(
    latitude: float,
    longitude: float,
    altitude_m: float,
    timezone: str,
    date: dt.date,
    dt_h: float,
    steps: int,
) -> np.ndarray:
    import pvlib  # with SciPy's optimisers: loaded when a profile is first computed

    sub = 6  # evaluate at 6 sub-points per step and average: the step's mean power
    fine = step_times(date, timezone, dt_h / sub, steps * sub) + pd.Timedelta(hours=dt_h / sub / 2)
    site = pvlib.location.Location(latitude, longitude, tz=timezone, altitude=altitude_m)
    sun = site.get_solarposition(fine)
    sky = site.get_clearsky(fine, model="ineichen", solar_position=sun)
    tilt, azimuth = abs(latitude), 180.0 if latitude >= 0 else 0.0
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        sun["apparent_zenith"],
        sun["azimuth"],
        sky["dni"],
        sky["ghi"],
        sky["dhi"],
        model="isotropic",
    )
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    cell = pvlib.temperature.sapm_cell(poa["poa_global"], 20.0, 1.0, **params)
    dc = pvlib.pvsystem.pvwatts_dc(poa["poa_global"], cell, pdc0=1.0, gamma_pdc=-0.004)
    ac = np.clip(np.nan_to_num(dc.to_numpy()) * 0.96, 0.0, None)
    ac[sun["apparent_zenith"].to_numpy() >= 90.0] = 0.0
    return ac.reshape(steps, sub).mean(axis=1)


def base_load_per_kwh(date: dt.date, dt_h: float, steps: int) -> np.ndarray:
    """BDEW H0 household profile of ``date``, scaled to 1 kWh per day [kW per kWh/day].

    Parameters
    ----------
    date
        The day simulated (season, weekday and dynamisation of the H0 profile).
    dt_h, steps
        Control step [h] and number of steps; the 15-minute H0 values are
        averaged (or repeated) onto this grid.

    Returns
    -------
    numpy.ndarray
        Shape ``(steps,)``; multiply by the daily energy [kWh] to get kW.
    """
    return _base_load_cached(date, dt_h, steps).copy()


@lru_cache(maxsize=16)
def _base_load_cached(date: dt.date, dt_h: float, steps: int) -> np.ndarray:
    from demandlib import bdew

    with warnings.catch_warnings():
        # demandlib still calls a few pandas APIs pandas deprecates; not ours to fix.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        slp = bdew.ElecSlp(date.year).get_scaled_power_profiles({"h0": 1.0})
    quarter = slp.loc[str(date), "h0"].to_numpy(dtype=float)  # 96 values, kW
    quarter = quarter / (quarter.sum() * 0.25)  # 1 kWh over the day
    # mean over each control interval of the piecewise-constant 15-minute profile
    cum = np.concatenate([[0.0], np.cumsum(quarter * 0.25)])
    edges = np.minimum(np.arange(steps + 1) * dt_h, 24.0)
    return np.diff(np.interp(edges, np.arange(97) * 0.25, cum)) / dt_h
