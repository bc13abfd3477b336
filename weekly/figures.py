"""Coverage by hour of the week from the locations' covered masks and the demand matrix: demand and covered demand at
each hour, the uncovered demand-hours, the worst hours, night gaps, and the same per unit (township).

Demand is in orders (the layer's units) over the period the orders span; divide by ``weeks`` (``week.weeks_spanned``)
for a typical week. Hours ``h = weekday * 24 + hour`` (Monday 0), local time. "Uncovered demand-hours" (the issue's
uncovered rider-hours) is the demand falling in hours with no open station within the radius of its location:
orders, each counted in the one hour it falls in.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from yizhan.errors import InvalidInput
from yizhan.weekly.masks import hours_set, pack
from yizhan.weekly.week import DAY, HOURS, LABELS_EN, LABELS_ZH, NIGHT, WORDS

WORST_HOURS = 5
"""Hours listed as the worst of the week."""
NNZ_PER_CHUNK = 4_000_000
"""Entries of the demand matrix handled at once."""
_DAY_PACKED = pack(DAY)


def share_of(covered: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Covered over demand, element by element (0–1); NaN where there is no demand."""
    covered, demand = np.asarray(covered, dtype=float), np.asarray(demand, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(demand > 0, covered / np.where(demand > 0, demand, 1.0), np.nan)


@dataclass
class HourFigures:
    """Coverage by hour of the week. Demand in orders; hours 0–167."""

    demand: np.ndarray
    """(168,) demand at each hour."""
    covered: np.ndarray
    """(168,) of it at locations with a station open at that hour within reach."""
    open_stations: np.ndarray
    """(168,) int: stations open at each hour (0 when no station hours were given)."""
    hours_covered: np.ndarray
    """(n_loc,) int16: hours of the week (0–168) in which each location has an open station within reach."""
    uncovered: np.ndarray
    """(n_loc,) each location's demand in hours it is not covered."""
    night_gap: np.ndarray
    """(n_loc,) bool: covered at some day hour (06–22) and not covered at a night hour (22–06) in which the location
    has demand."""
    night_gap_demand: np.ndarray
    """(n_loc,) demand of a night-gap location in its uncovered night hours (0 elsewhere)."""
    unit_demand: np.ndarray
    """(n_units + 1, 168) demand per unit and hour; the last row holds locations in no unit."""
    unit_covered: np.ndarray
    """(n_units + 1, 168) covered demand per unit and hour."""

    @property
    def share(self) -> np.ndarray:
        """(168,) covered share 0–1 at each hour; NaN where there is no demand."""
        return share_of(self.covered, self.demand)

    @property
    def uncovered_demand_hours(self) -> float:
        """The demand falling in hours with no open station within reach (orders)."""
        return float(self.uncovered.sum())

    def worst_hours(self, n: int = WORST_HOURS) -> list[dict[str, Any]]:
        """The ``n`` hours with the most uncovered demand (only hours with some), most first, earlier hour first on
        a tie: ``hour, label_zh, label_en, demand, covered, uncovered, share``."""
        gap = self.demand - self.covered
        order = np.lexsort((np.arange(HOURS), -gap))
        out = []
        for h in order[:n]:
            if gap[h] <= 1e-12:
                break
            out.append({"hour": int(h), "label_zh": LABELS_ZH[h], "label_en": LABELS_EN[h],
                        "demand": float(self.demand[h]), "covered": float(self.covered[h]),
                        "uncovered": float(gap[h]),
                        "share": float(self.covered[h] / self.demand[h]) if self.demand[h] > 0 else None})
        return out

    def unit_table(self, names: Sequence[str], *, none: str = "unassigned") -> pd.DataFrame:
        """Per unit and hour, long form (``RunHours.units``): ``name, hour, demand, covered``; ``names`` the units'
        names in index order, ``none`` the name of the last row (locations in no unit). A unit without demand in
        the whole week is left out."""
        k = self.unit_demand.shape[0]
        if len(names) != k - 1:
            raise InvalidInput(f"{len(names)} unit names for {k - 1} units")
        used = np.flatnonzero(self.unit_demand.sum(axis=1) > 0)
        labels = np.array([*names, none], dtype=object)
        return pd.DataFrame({"name": np.repeat(labels[used], HOURS), "hour": np.tile(np.arange(HOURS), len(used)),
                             "demand": self.unit_demand[used].ravel(), "covered": self.unit_covered[used].ravel()})

    def summary(self, *, measured: str = "cells", week_start: str | None = None, holidays: bool = False,
                unknown_hours_stations: int = 0, profile: str = "default", weeks: float = 1.0) -> dict[str, Any]:
        """The JSON-ready figures a run stores (``RunHours.figures``): ``uncovered_demand_hours`` (and per week,
        over ``weeks``), ``worst_hours``, ``night_gap_cells`` (night-gap locations: cells, or points when
        ``measured="points"``), ``night_gap_demand``, ``covered_share`` (over the whole week), ``measured``,
        ``week_start`` (ISO date), ``holidays``, ``unknown_hours_stations``, ``profile``, ``weeks``."""
        total = float(self.demand.sum())
        done = float(self.covered.sum())
        per_week = max(float(weeks), 1e-12)
        return {"uncovered_demand_hours": self.uncovered_demand_hours,
                "uncovered_demand_hours_per_week": self.uncovered_demand_hours / per_week,
                "worst_hours": self.worst_hours(),
                "night_gap_cells": int(self.night_gap.sum()),
                "night_gap_demand": float(self.night_gap_demand.sum()),
                "demand_total": total, "demand_covered": done,
                "covered_share": done / total if total > 0 else 0.0,
                "measured": measured, "week_start": week_start, "holidays": bool(holidays),
                "unknown_hours_stations": int(unknown_hours_stations), "profile": profile, "weeks": float(weeks)}


def hour_figures(masks: np.ndarray, demand: csr_matrix, *, open_hours: np.ndarray | None = None,
                 owner: np.ndarray | None = None, n_units: int = 0,
                 chunk: int = NNZ_PER_CHUNK) -> HourFigures:
    """Coverage by hour from the locations' packed covered masks ((n_loc, 21) uint8, ``masks.covered_masks``) and
    their demand by hour (csr (n_loc x 168), ``profile.demand_by_hour``).

    ``open_hours``: the stations' (m, 168) bool ``Availability.open`` (only the active stations), for the count of
    stations open at each hour. ``owner``: (n_loc,) int, the unit (township) of each location, 0 … n_units-1, or
    ``n_units`` (or -1) for none. The matrix is read ``chunk`` entries at a time.
    """
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    n_loc = masks.shape[0]
    if masks.shape != (n_loc, WORDS) or demand.shape != (n_loc, HOURS):
        raise InvalidInput(f"masks {masks.shape} and demand {demand.shape} must be (n, {WORDS}) and (n, {HOURS})")
    demand = demand.tocsr()
    if owner is None:
        own = np.full(n_loc, n_units, dtype=np.int64)
    else:
        own = np.asarray(owner, dtype=np.int64)
        if own.shape != (n_loc,) or (len(own) and (own.min() < -1 or own.max() > n_units)):
            raise InvalidInput(f"owner must give each of {n_loc} locations a unit 0 … {n_units} (or -1)")
        own = np.where(own < 0, n_units, own)
    by_hour = np.zeros(HOURS)
    covered = np.zeros(HOURS)
    unit_demand = np.zeros((n_units + 1) * HOURS)
    unit_covered = np.zeros((n_units + 1) * HOURS)
    uncovered = np.zeros(n_loc)
    night_uncovered = np.zeros(n_loc)
    indptr = demand.indptr
    # rows in blocks of about ``chunk`` entries
    bounds = np.searchsorted(indptr, np.arange(0, int(indptr[-1]) + chunk, chunk))
    bounds = np.unique(np.concatenate([[0], np.clip(bounds, 0, n_loc), [n_loc]]))
    for r0, r1 in itertools.pairwise(bounds):
        lo, hi = int(indptr[r0]), int(indptr[r1])
        if lo == hi:
            continue
        rows = np.repeat(np.arange(r0, r1, dtype=np.int64), np.diff(indptr[r0:r1 + 1]))
        cols = demand.indices[lo:hi].astype(np.int64)
        w = demand.data[lo:hi]
        hit = ((masks[rows, cols >> 3] >> (cols & 7).astype(np.uint8)) & 1).astype(bool)
        wc = np.where(hit, w, 0.0)
        by_hour += np.bincount(cols, weights=w, minlength=HOURS)
        covered += np.bincount(cols, weights=wc, minlength=HOURS)
        key = own[rows] * HOURS + cols
        unit_demand += np.bincount(key, weights=w, minlength=len(unit_demand))
        unit_covered += np.bincount(key, weights=wc, minlength=len(unit_covered))
        miss = w - wc
        uncovered[r0:r1] += np.bincount(rows - r0, weights=miss, minlength=r1 - r0)
        night = NIGHT[cols]
        night_uncovered[r0:r1] += np.bincount(rows[night] - r0, weights=miss[night], minlength=r1 - r0)
    day_covered = (masks & _DAY_PACKED).any(axis=1)
    gap = day_covered & (night_uncovered > 0)
    opened = (np.zeros(HOURS, dtype=np.int64) if open_hours is None
              else np.asarray(open_hours, dtype=bool).sum(axis=0, dtype=np.int64))
    return HourFigures(demand=by_hour, covered=covered, open_stations=opened, hours_covered=hours_set(masks),
                       uncovered=uncovered, night_gap=gap, night_gap_demand=np.where(gap, night_uncovered, 0.0),
                       unit_demand=unit_demand.reshape(n_units + 1, HOURS),
                       unit_covered=unit_covered.reshape(n_units + 1, HOURS))
