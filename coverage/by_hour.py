"""A run's coverage by hour of the week and its stations' capacity, on top of the plain run.

Every station within the radius of a demand location counts, not only the nearest: the pairs come from
``coverage.reach`` (straight line, decided on the ellipsoid near the radius; or along the streets, door to door, in
one bounded pass per tile of stations), the stations' opening hours become masks over the 168 hours of the week
(``weekly.availability``), and a location is covered at hour h when any station of its pairs is open then: the hours
are applied as masks to the one set of pairs, not searched 168 times. Capacity (``capacity.loads``) runs the
two-step floating catchment on the same pairs at each hour.

Hours are ``weekday * 24 + hour`` (Monday 0) in the area's local time; demand in orders; metres throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd

from yizhan.capacity.fca import DECAY_KINDS, decay_named
from yizhan.capacity.loads import CROWDED_PER_SEAT, station_loads
from yizhan.coverage.euclidean import geodesic_band, recheck_pairs
from yizhan.coverage.measure import HALF, Demand
from yizhan.coverage.reach import Pairs, network_reach, straight_pairs
from yizhan.coverage.runs import HourRecord
from yizhan.errors import InvalidInput
from yizhan.weekly.availability import UNKNOWN_POLICIES, station_open
from yizhan.weekly.figures import hour_figures
from yizhan.weekly.masks import covered_masks, hours_set, pack
from yizhan.weekly.profile import DEFAULT_PROFILE, demand_by_hour
from yizhan.weekly.week import LABELS_EN, LABELS_ZH, weeks_spanned

Progress = Callable[[str], None]


@dataclass
class HourInputs:
    """What ``hours_and_capacity`` needs from the run: the measured demand, the active stations (WGS 84 frame with
    ``station_id``, ``external_id``, ``name``, ``opening_hours``, ``seats``) and their metric ``st_xy`` and
    ``st_lonlat``, the radius (metres) and mode, ``snaps`` (graph, stations snapped, locations snapped) of a network
    run, the cells' weights and units (``cell_owner``, ``unit_names`` with the unassigned row last), the local
    ``timezone``, the area's stored profile (168 weights, source) or None, and the options. ``pairs``: the
    (location, station) pairs within the radius and how many were decided on the ellipsoid, when they were found
    elsewhere (the parts of a partitioned run), in this demand's and these stations' indices; else None (found
    here)."""

    demand: Demand
    active: gpd.GeoDataFrame
    st_xy: np.ndarray
    st_lonlat: np.ndarray
    radius_m: float
    mode: str
    snaps: Any
    cell_weights: np.ndarray
    cell_owner: np.ndarray
    unit_names: list[str]
    timezone: str
    profile: tuple[np.ndarray, str] | None
    by_hour: bool
    capacity: bool
    week_of: date | None = None
    unknown_hours: str = "open"
    decay: str = "none"
    crowded_per_seat: float = CROWDED_PER_SEAT
    pairs: tuple[Pairs, int] | None = None


@dataclass
class HourOutputs:
    """What the run stores: its parameters (``by_hour``, ``capacity``) and the arrays (``HourRecord``)."""

    params: dict[str, Any]
    record: HourRecord


def check_options(*, unknown_hours: str, decay: str) -> None:
    """InvalidInput naming an unknown policy for stations without hours or an unknown distance decay."""
    if unknown_hours not in UNKNOWN_POLICIES:
        raise InvalidInput(f"无营业时间的驿站按 {unknown_hours!r} 计无效 / unknown_hours {unknown_hours!r}: expected "
                           f"{' or '.join(UNKNOWN_POLICIES)}")
    if decay not in DECAY_KINDS:
        raise InvalidInput(f"距离衰减 {decay!r} 无效 / decay {decay!r}: expected one of {', '.join(DECAY_KINDS)}")


def reach_pairs(inp: HourInputs, say: Progress) -> tuple[Pairs, int]:
    """Every (location, station) pair within the radius in the run's metric, and how many straight-line pairs were
    decided on the ellipsoid (``inp.pairs`` when given)."""
    if inp.pairs is not None:
        return inp.pairs
    d = inp.demand
    if inp.mode == "network":
        graph, st_snap, loc_snap = inp.snaps
        say(f"stations within {inp.radius_m:g} m of each demand location along the streets")
        return network_reach(graph, st_snap, loc_snap, radius_m=inp.radius_m, include_access=True,
                             progress=say), 0
    dem, site, dist = straight_pairs(d.xy, inp.st_xy, inp.radius_m + geodesic_band(inp.radius_m))
    dem, site, dist, checked = recheck_pairs(dem, site, dist, d.lonlat, inp.st_lonlat, inp.radius_m)
    return (dem, site, dist), checked


def _profile(inp: HourInputs) -> tuple[np.ndarray, str]:
    """The week profile spreading untimed demand and how the run names the demand's hours."""
    weights, source = inp.profile if inp.profile is not None else (DEFAULT_PROFILE, "default")
    timed, items = inp.demand.timed, len(inp.demand.item_hour)
    if items and timed == items:
        return weights, "订单自带时间 orders' own times"
    name = "内置曲线 default" if inp.profile is None else f"曲线文件 file: {source}"
    if not timed:
        return weights, name
    return weights, f"订单时间 orders ({timed:,} timed) + {name} ({items - timed:,} untimed)"


def _weeks(d: Demand, timezone: str) -> tuple[float, np.ndarray | float, str]:
    """How many weeks the orders span (for the figures per week), the divisor that turns the capacity's demand into
    a typical week's, and what that divisor is. When every order has a time, each hour of the week is divided by how
    often its weekday occurs between the first and the last local date (10 days from a Monday hold two Mondays and
    one Thursday); with untimed orders spread by the profile, by the weeks spanned; without any time the layer's
    total is taken as one week."""
    if d.first_time is None or d.last_time is None:
        return 1.0, 1.0, "没有订单时间，需求总量按一周计 / no order times: the layer's total is taken as one week"
    weeks = weeks_spanned(pd.DatetimeIndex([d.first_time, d.last_time]), timezone)
    if d.timed < len(d.item_hour):
        return weeks, weeks, f"按 {weeks:.2f} 周平均 / averaged over {weeks:.2f} weeks"
    zone = ZoneInfo(timezone)
    days = pd.date_range(d.first_time.astimezone(zone).date(), d.last_time.astimezone(zone).date(), freq="D")
    per_day = np.bincount(days.dayofweek, minlength=7).astype(float)
    divisor = np.repeat(np.maximum(per_day, 1.0), 24)
    return weeks, divisor, (f"每个星期几按其在 {len(days)} 天中出现的次数平均 / each weekday averaged over its "
                            f"{', '.join(str(int(c)) for c in per_day)} occurrences (Mon–Sun) in {len(days)} days")


def cell_masks(d: Demand, loc_masks: np.ndarray, cell_weights: np.ndarray) -> np.ndarray:
    """(n_cells, 21) packed masks of the cells: a cell measured on its points is covered at hour h when at least
    ``HALF`` of its orders (all its points, whatever their own hour) have an open station within reach then. The
    points are ordered by cell once and summed eight hours (one byte of the masks) at a time."""
    if d.measured == "cells":
        return loc_masks
    n_cells = len(cell_weights)
    out = np.zeros((n_cells, loc_masks.shape[1]), dtype=np.uint8)
    if not len(d.cell):
        return out
    order = np.argsort(d.cell, kind="stable")
    cells = d.cell[order]
    starts = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
    held = cells[starts]
    weight = d.weight[order][:, None]
    half = (HALF * cell_weights[held])[:, None]
    for b in range(loc_masks.shape[1]):
        bits = np.unpackbits(loc_masks[order, b:b + 1], axis=1, bitorder="little")
        covered = np.add.reduceat(bits * weight, starts, axis=0)
        hit = (covered >= half) & (cell_weights[held] > 0)[:, None]
        out[held, b] = np.packbits(hit, axis=1, bitorder="little")[:, 0]
    return out


def unit_figures(inp: HourInputs, demand: np.ndarray, covered: np.ndarray, night: np.ndarray,
                 night_demand: np.ndarray) -> list[dict[str, Any]]:
    """Per township (``inp.unit_names``; rows of ``demand``/``covered`` (units + 1, 168)), JSON-ready: ``name``,
    ``demand``, ``covered_share`` over the week's demand-hours, ``uncovered_demand_hours``, the ``worst_hour`` (most
    demand uncovered; ``hour``, ``label_zh``, ``label_en``, ``uncovered``, None when nothing is uncovered) and its
    ``night_gap_cells`` and their ``night_gap_demand`` (cells by the township holding their centre). Townships
    without demand are left out."""
    n = len(inp.unit_names)
    gaps = np.bincount(inp.cell_owner, weights=night.astype(float), minlength=n)
    gap_demand = np.bincount(inp.cell_owner, weights=night_demand, minlength=n)
    out = []
    for i, name in enumerate(inp.unit_names):
        total = float(demand[i].sum())
        if total <= 0:
            continue
        missing = demand[i] - covered[i]
        worst = int(np.argmax(missing))
        out.append({"name": name, "demand": total, "covered_share": float(covered[i].sum()) / total,
                    "uncovered_demand_hours": float(missing.sum()),
                    "worst_hour": None if missing[worst] <= 1e-12 else {
                        "hour": worst, "label_zh": LABELS_ZH[worst], "label_en": LABELS_EN[worst],
                        "uncovered": float(missing[worst])},
                    "night_gap_cells": int(gaps[i]), "night_gap_demand": float(gap_demand[i])})
    return out


def hours_and_capacity(inp: HourInputs, say: Progress) -> HourOutputs:
    """Coverage by hour of the week and/or capacity of a run (see the module's docstring)."""
    check_options(unknown_hours=inp.unknown_hours, decay=inp.decay)
    d = inp.demand
    n_loc, n_cells = len(d.weight), len(inp.cell_weights)
    say(f"opening hours of {len(inp.active)} stations by hour of the week")
    avail = station_open(list(inp.active["opening_hours"]), tz=inp.timezone, week_of=inp.week_of,
                         unknown=inp.unknown_hours)
    (dem, site, dist), checked = reach_pairs(inp, say)
    profile, profile_name = _profile(inp)
    demand = demand_by_hour(d.item_loc, d.item_hour, d.item_weight, n_loc, profile)
    weeks, divisor, period = _weeks(d, inp.timezone)
    params: dict[str, Any] = {}
    rec = HourRecord()
    if inp.by_hour:
        say(f"coverage at each hour of the week: {len(dem):,} station-location pairs")
        masks = covered_masks(dem, site, pack(avail.open), n_loc)
        n_units = len(inp.unit_names) - 1
        fig = hour_figures(masks, demand, open_hours=avail.open, owner=inp.cell_owner[d.cell], n_units=n_units)
        summary = fig.summary(measured=d.measured, week_start=avail.week_start.isoformat(), holidays=avail.holidays,
                              unknown_hours_stations=int(avail.unknown.sum()), profile=profile_name, weeks=weeks)
        per_cell = cell_masks(d, masks, inp.cell_weights)
        if d.measured == "points":  # night gaps are drawn by cell: judged on the cells' own masks and demand
            cell_demand = demand_by_hour(d.cell[d.item_loc], d.item_hour, d.item_weight, n_cells, profile)
            cell_fig = hour_figures(per_cell, cell_demand)
            night, night_demand = cell_fig.night_gap, cell_fig.night_gap_demand
            summary["night_gap_points"] = summary["night_gap_cells"]
            summary["night_gap_demand_points"] = summary["night_gap_demand"]
            summary["night_gap_cells"] = int(night.sum())
            summary["night_gap_demand"] = float(night_demand.sum())
        else:
            night, night_demand = fig.night_gap, fig.night_gap_demand
        summary["units"] = unit_figures(inp, fig.unit_demand, fig.unit_covered, night, night_demand)
        summary["unknown_hours"] = inp.unknown_hours
        summary["pairs"] = len(dem)
        summary["geodesic_checked_pairs"] = checked
        params["by_hour"] = summary
        rec.demand_by_hour, rec.covered_by_hour, rec.open_by_hour = fig.demand, fig.covered, fig.open_stations
        rec.unit_hours = {name: (fig.unit_demand[i], fig.unit_covered[i]) for i, name in enumerate(inp.unit_names)}
        rec.cell_masks, rec.hours_covered, rec.night_gap = per_cell, hours_set(per_cell), night
    if inp.capacity:
        say("capacity: seats against the demand within reach, hour by hour")
        seats = pd.to_numeric(inp.active["seats"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        loads = station_loads(dem, site, dist, demand, seats, avail.open,
                              decay=decay_named(inp.decay, inp.radius_m), weeks=divisor,
                              crowded_per_seat=inp.crowded_per_seat, distance=inp.mode)
        ids = inp.active["external_id"].to_numpy()
        summary = dict(loads.summary)
        summary["weeks"], summary["period"] = weeks, period
        summary["crowded_stations"] = [str(ids[j]) for j in summary["crowded_stations"]]
        params["capacity"] = summary
        t = loads.table
        idx = t["station"].to_numpy()
        rec.loads = pd.DataFrame({
            "station_id": ids[idx], "db_id": inp.active["station_id"].to_numpy()[idx],
            "name": inp.active["name"].to_numpy()[idx], "seats": t["seats"], "peak_hour": t["peak_hour"],
            "peak_demand": t["peak_demand"], "per_seat": t["per_seat"], "crowded": t["crowded"],
            "lon": inp.st_lonlat[idx, 0], "lat": inp.st_lonlat[idx, 1]})
        acc = loads.accessibility
        if d.measured == "points":  # a cell's accessibility: its points', weighted by their orders
            w = np.bincount(d.cell, weights=d.weight, minlength=n_cells)
            s = np.bincount(d.cell, weights=d.weight * acc, minlength=n_cells)
            with np.errstate(invalid="ignore", divide="ignore"):
                acc = np.where(w > 0, s / np.where(w > 0, w, 1.0), np.nan)
        rec.accessibility = acc
    return HourOutputs(params, rec)
