"""Stations' loads by hour of the week: the two-step floating catchment at each of the 168 hours.

Hour ``h = weekday * 24 + hour`` (Monday 0, 0–167, the area's local wall-clock time). Demand comes as a sparse
(n x 168) matrix of orders over the whole span of the data (``yizhan.weekly.profile.demand_by_hour``) and is divided
by the weeks it spans, so every figure here is per hour of a typical week. A station offers its seats only in the
hours it is open (``Availability.open``); its catchment demand counts at every hour, open or not. Distances, the
radius and the decay are those of ``yizhan.capacity.fca``.

Crowded: a station whose demand within reach at its own peak hour exceeds ``CROWDED_PER_SEAT`` orders per seat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.sparse import csr_matrix

from yizhan.capacity.fca import Decay, pair_matrix, ratio_of, supply_of

CROWDED_PER_SEAT = 10.0
"""Orders per seat in the peak hour of a typical week above which a station is crowded. A rider delivers about 3
orders an hour at the meal peaks, so 10 orders within reach is some 3–4 riders working around each seat; a rest of
15–20 minutes lets a seat take 3–4 riders an hour, so above 10 a seat cannot take every rider nearby even once an
hour. A planner's own figure replaces it (``station_loads(..., crowded_per_seat=...)``)."""


@dataclass
class HourlyFca:
    """The two-step floating catchment at every hour of the week (m stations, H = 168 hours)."""

    catchment: np.ndarray
    """(m, H) decay-weighted demand within each station's reach at each hour (orders per hour of a typical week)."""
    ratio: np.ndarray
    """(m, H) seats per unit of that demand; 0 in hours the station is closed (no seats offered) and it has demand;
    NaN without known seats or without demand."""
    demand: np.ndarray
    """(H,) the area's demand at each hour (orders per hour of a typical week)."""
    weights: csr_matrix
    """(n x m) decay weight of each demand–station pair."""
    without_seats: np.ndarray
    """(m,) bool: seats unknown, left out of the supply."""

    @property
    def peak_hour(self) -> int | None:
        """The area's peak hour (most demand; the first on a tie), None without demand."""
        return int(np.argmax(self.demand)) if len(self.demand) and self.demand.max() > 0 else None

    def accessibility(self, hour: int | None) -> np.ndarray:
        """(n,) seats per unit of demand within reach at that hour (0 everywhere for None)."""
        if hour is None:
            return np.zeros(self.weights.shape[0])
        return np.asarray(self.weights @ np.nan_to_num(self.ratio[:, hour], nan=0.0))


def hourly_fca(dem: np.ndarray, site: np.ndarray, dist_m: np.ndarray, demand_by_hour: csr_matrix | np.ndarray,
               supply: ArrayLike, open_hours: np.ndarray, *, decay: Decay,
               weeks: float | np.ndarray) -> HourlyFca:
    """The 2SFCA or E2SFCA of ``fca.two_step_fca`` at each hour of the week.

    Parameters
    ----------
    dem, site, dist_m : ndarray
        Demand–station pairs: demand location index, station index, metres.
    demand_by_hour : sparse or dense, shape (n, 168)
        Orders at each location and hour of the week over the whole span of the data.
    supply : array-like, shape (m,)
        Seats; NaN or None when unknown.
    open_hours : ndarray of bool, shape (m, 168)
        True where the station is open at that hour.
    decay : Decay
        Distance decay and radius (metres).
    weeks : float or ndarray of shape (168,)
        Weeks the demand spans (> 0), or per hour of the week how many times that hour (its weekday) occurs in the
        span: figures are per hour of a typical week.
    """
    w_ = np.asarray(weeks, dtype=np.float64)
    if w_.shape not in ((), (168,)) or not np.all(np.isfinite(w_)) or np.any(w_ <= 0):
        raise ValueError(f"周数须为正数 / weeks must be a positive number (or one per hour): {weeks!r}")
    p = csr_matrix(demand_by_hour, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(p.data) | (p.data < 0))
    if len(bad):
        k = bad[0]
        raise ValueError(f"需求须为非负有限数（订单）/ demand must be a finite non-negative number of orders: location "
                         f"{np.searchsorted(p.indptr, k, side='right') - 1}, hour {p.indices[k]}: {float(p.data[k])}")
    seats, unknown = supply_of(supply)
    open_ = np.asarray(open_hours, dtype=bool)
    if open_.shape != (len(seats), p.shape[1]):
        raise ValueError(f"开放时段矩阵形状应为 {(len(seats), p.shape[1])} / open hours must be stations x hours: "
                         f"{open_.shape}")
    w = pair_matrix(dem, site, dist_m, p.shape[0], len(seats), decay)
    catchment = np.asarray((w.T @ p).todense()) / w_
    ratio = ratio_of(seats[:, None] * open_, catchment, ~unknown[:, None])
    demand = np.asarray(p.sum(axis=0)).ravel() / w_
    return HourlyFca(catchment=catchment, ratio=ratio, demand=demand, weights=w, without_seats=unknown)


@dataclass
class StationLoads:
    """Each station's load at its peak hour, the area's summary and the accessibility at the area's peak hour."""

    table: pd.DataFrame
    """Per station (in input order): ``station`` (its index), ``seats`` (Int64, NA when unknown), ``peak_hour``
    (Int16, 0–167: the open hour with the most demand within reach, the first on a tie; NA when never open),
    ``peak_demand`` (decay-weighted demand within reach then, orders per hour of a typical week; 0 when never open),
    ``per_seat`` (``peak_demand / seats``; NaN without seats, with 0 seats or never open), ``crowded`` (bool:
    ``per_seat`` above the threshold)."""
    summary: dict[str, Any]
    """JSON-ready: ``method`` (2SFCA, E2SFCA), ``decay`` (``Decay.describe``), ``radius_m``, ``distance`` (as
    given: ``straight`` or ``network``), ``weeks``, ``peak_hour`` (the area's, None without demand),
    ``peak_demand`` (the area's demand then, orders per hour of a typical week), ``crowded_per_seat`` (the
    threshold), ``crowded`` (count), ``crowded_stations`` (their indices, most loaded first), ``stations``,
    ``stations_without_seats`` (seats unknown), ``stations_zero_seats``, ``stations_never_open``, ``seats``
    (known seats in all), ``units`` (what the figures count)."""
    accessibility: np.ndarray
    """(n,) seats per unit of demand within reach (orders per hour of a typical week) at the area's peak hour."""
    hourly: HourlyFca


def station_loads(dem: np.ndarray, site: np.ndarray, dist_m: np.ndarray, demand_by_hour: csr_matrix | np.ndarray,
                  supply: ArrayLike, open_hours: np.ndarray, *, decay: Decay, weeks: float | np.ndarray,
                  crowded_per_seat: float = CROWDED_PER_SEAT, distance: str = "straight") -> StationLoads:
    """Stations' loads at their peak hours, crowded stations and accessibility at the area's peak hour.

    Arguments as ``hourly_fca``; ``crowded_per_seat`` (orders per seat in the peak hour of a typical week, default
    ``CROWDED_PER_SEAT``) should come from the area's settings; ``distance`` names how the pairs were measured
    (``straight`` or ``network``) for the summary.
    """
    limit = float(crowded_per_seat)
    if not np.isfinite(limit) or limit < 0:
        raise ValueError(f"拥挤阈值须为非负数 / crowded threshold must be a non-negative number: {crowded_per_seat!r}")
    hourly = hourly_fca(dem, site, dist_m, demand_by_hour, supply, open_hours, decay=decay, weeks=weeks)
    seats, unknown = supply_of(supply)
    open_ = np.asarray(open_hours, dtype=bool)
    ever_open = open_.any(axis=1)
    m = len(seats)
    peak = np.argmax(np.where(open_, hourly.catchment, -np.inf), axis=1) if m else np.zeros(0, np.int64)
    peak_demand = np.where(ever_open, hourly.catchment[np.arange(m), peak], 0.0) if m else np.zeros(0)
    has_seats = ~unknown & (seats > 0) & ever_open
    per_seat = np.where(has_seats, peak_demand / np.where(has_seats, seats, 1.0), np.nan)
    crowded = np.nan_to_num(per_seat, nan=-np.inf) > limit
    table = pd.DataFrame({
        "station": np.arange(m, dtype=np.int64),
        "seats": pd.array(np.where(unknown, np.nan, seats), dtype="Float64").round().astype("Int64"),
        "peak_hour": pd.array(np.where(ever_open, peak, np.nan), dtype="Float64").astype("Int16"),
        "peak_demand": peak_demand,
        "per_seat": per_seat,
        "crowded": crowded,
    })
    area_peak = hourly.peak_hour
    order = np.argsort(-np.where(crowded, per_seat, -np.inf), kind="stable")[: int(crowded.sum())]
    summary: dict[str, Any] = {
        "method": decay.method,
        "decay": decay.describe(),
        "radius_m": decay.radius_m,
        "distance": distance,
        "weeks": float(np.mean(weeks)),
        "peak_hour": area_peak,
        "peak_demand": float(hourly.demand[area_peak]) if area_peak is not None else 0.0,
        "crowded_per_seat": limit,
        "crowded": int(crowded.sum()),
        "crowded_stations": [int(j) for j in order],
        "stations": m,
        "stations_without_seats": int(unknown.sum()),
        "stations_zero_seats": int((~unknown & (seats == 0)).sum()),
        "stations_never_open": int((~ever_open).sum()),
        "seats": float(seats.sum()),
        "units": "orders per hour of a typical week; accessibility in seats per such order",
    }
    return StationLoads(table=table, summary=summary, accessibility=hourly.accessibility(area_peak), hourly=hourly)
