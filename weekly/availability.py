"""Stations' opening hours as hours of the week: which hour each station is open in, from its ``opening_hours`` rule.

A rule is evaluated by the maintained ``opening_hours`` package (as ``stations.hours`` does: public holidays ``PH``
from its calendar of ``stations.hours.COUNTRY``, China) over one calendar week of local wall-clock time, from the
intervals it gives (no sampling). A station is open in hour ``h`` when it is open at least ``OPEN_MINUTES`` (30)
minutes of it. Which week:

- without ``week_of``: the reference week, the first week from Monday ``REFERENCE_FROM`` (2 March 2026) on with no
  public holiday in the package's calendar, found once per country (for China the week of 2 March 2026): what a
  station does in an ordinary week;
- with ``week_of``: the calendar week holding that date, as it is: ``PH`` rules (``PH off``, ``PH 10:00-16:00``)
  apply on its holidays, so a planner can ask about the National Day week.

A rule that is missing or unreadable, or whose state is ``unknown`` (``unknown "不定时"``, a comment the reader
could not place) for part of the week, marks its station ``unknown``; unknown time counts as open by default
(``unknown="open"``: a station with unsure hours is not called closed) or as closed with ``unknown="closed"``.
Each distinct rule is evaluated once (a registry holds few distinct rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
import opening_hours

from yizhan.data.demand_times import zone_of
from yizhan.errors import InvalidInput
from yizhan.stations.hours import COUNTRY
from yizhan.weekly.week import HOURS

OPEN_MINUTES = 30
"""A station counts as open in an hour when open at least this many minutes of it."""
REFERENCE_FROM = date(2026, 3, 2)
"""The reference week is looked for from this Monday on."""
UNKNOWN_POLICIES = ("open", "closed")


@dataclass
class Availability:
    """Stations' opening by hour of the week (``h = weekday * 24 + hour``, Monday 0, local wall-clock time)."""

    open: np.ndarray
    """(m, 168) bool: open at least ``OPEN_MINUTES`` minutes of the hour (unknown time counted by the policy)."""
    fraction: np.ndarray
    """(m, 168) float32: the share of the hour open, 0–1 (unknown time counted by the policy)."""
    unknown: np.ndarray
    """(m,) bool: no rule, an unreadable rule, or a rule whose state is unknown for part of the week."""
    week_start: date
    """The Monday of the week evaluated (local date)."""
    holidays: bool
    """Whether that week holds a public holiday of the calendar (so that ``PH`` rules took effect)."""


@lru_cache(maxsize=8)
def reference_week(country: str = COUNTRY) -> date:
    """The Monday of the reference week: the first week from ``REFERENCE_FROM`` on without a public holiday in the
    ``opening_hours`` calendar of ``country``."""
    monday = REFERENCE_FROM
    for _ in range(60):
        if not week_has_holiday(monday, country):
            return monday
        monday += timedelta(days=7)
    raise InvalidInput(f"no week without public holidays found from {REFERENCE_FROM} on for country {country}")


@lru_cache(maxsize=256)
def week_has_holiday(monday: date, country: str = COUNTRY) -> bool:
    """Whether the week from ``monday`` holds a public holiday of the calendar of ``country``."""
    start = datetime.combine(monday, datetime.min.time())
    ph = opening_hours.OpeningHours("PH", country=country)
    return any(state == opening_hours.State.OPEN
               for _a, _b, state, _c in ph.intervals(start, start + timedelta(days=7)))


def _seconds_per_hour(intervals: list[tuple[float, float]]) -> np.ndarray:
    """(168,) seconds of each hour inside the intervals (seconds from the week's start, [a, b))."""
    out = np.zeros(HOURS)
    lo = np.arange(HOURS) * 3600.0
    for a, b in intervals:
        out += np.clip(np.minimum(b, lo + 3600.0) - np.maximum(a, lo), 0.0, None)
    return out


@lru_cache(maxsize=4096)
def rule_week(rule: str, monday: date, country: str = COUNTRY) -> tuple[np.ndarray, np.ndarray, bool]:
    """One rule over the week from ``monday``: (168,) seconds open and (168,) seconds unknown in each hour, and
    whether the rule could not be read (then both are zero). Cached: the same rule is read once."""
    try:
        oh = opening_hours.OpeningHours(rule, country=country)
    except (opening_hours.ParserError, SyntaxError, ValueError):  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub
        return np.zeros(HOURS), np.zeros(HOURS), True
    start = datetime.combine(monday, datetime.min.time())
    opened: list[tuple[float, float]] = []
    unsure: list[tuple[float, float]] = []
    for a, b, state, _comment in oh.intervals(start, start + timedelta(days=7)):
        span = ((a - start).total_seconds(), (b - start).total_seconds())
        if state == opening_hours.State.OPEN:
            opened.append(span)
        elif state == opening_hours.State.UNKNOWN:
            unsure.append(span)
    return _seconds_per_hour(opened), _seconds_per_hour(unsure), False


def station_open(rules: Sequence[str | float | None], *, tz: str = "Asia/Shanghai", week_of: date | None = None,
                 unknown: str = "open", country: str = COUNTRY) -> Availability:
    """Which hour of the week each station is open in, from its ``opening_hours`` rule (None, NaN or blank:
    unknown).

    ``tz`` names the local zone whose wall clock the rules are written in (``Settings.timezone``); the rules are
    evaluated in that wall-clock time. ``week_of``: a date (local) whose calendar week is evaluated as it is,
    holidays included; None for the reference week without holidays (see the module's docstring). ``unknown``:
    ``"open"`` (default) or ``"closed"``, how unknown time and stations without a readable rule count.
    InvalidInput for another policy or an unknown zone.
    """
    zone_of(tz)
    if unknown not in UNKNOWN_POLICIES:
        raise InvalidInput(f"未知时间的算法 {unknown!r} 无效，可用 open/closed / unknown hours policy {unknown!r}; "
                           f"expected 'open' or 'closed'")
    if week_of is None:
        monday = reference_week(country)
        holidays = False
    else:
        monday = week_of - timedelta(days=week_of.weekday())
        holidays = week_has_holiday(monday, country)
    m = len(rules)
    fraction = np.zeros((m, HOURS), dtype=np.float32)
    is_open = np.zeros((m, HOURS), dtype=bool)
    unsure = np.zeros(m, dtype=bool)
    distinct: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        text = r.strip() if isinstance(r, str) else ""  # None, or NaN from a frame
        if text:
            distinct.setdefault(text, []).append(i)
        else:
            unsure[i] = True
            if unknown == "open":
                fraction[i], is_open[i] = 1.0, True
    for text, rows in distinct.items():
        opened, unsure_s, unreadable = rule_week(text, monday, country)
        if unreadable:
            unsure[rows] = True
            if unknown == "open":
                fraction[rows], is_open[rows] = 1.0, True
            continue
        seconds = opened + (unsure_s if unknown == "open" else 0.0)
        fraction[rows] = np.minimum(seconds / 3600.0, 1.0).astype(np.float32)
        is_open[rows] = seconds >= OPEN_MINUTES * 60.0
        unsure[rows] = bool(unsure_s.any())
    return Availability(open=is_open, fraction=fraction, unknown=unsure, week_start=monday, holidays=holidays)
