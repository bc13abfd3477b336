"""The hours of the week: hour ``h = weekday * 24 + hour`` (Monday 0 as ISO counts it, 0–167) in the area's local
wall-clock time, their labels in Chinese and English, the night, and named bands of hours for a map's selector.

Night is 22:00–06:00 local time (``NIGHT_FROM``, ``NIGHT_UNTIL``): the hours 22, 23 and 0–5 of every day; day is
the rest, 06:00–22:00. A night gap (``weekly.figures``) is a place covered at some day hour and left without an
open station at a night hour where it has demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from yizhan.data.demand_times import zone_of

HOURS = 168
"""Hours in a week."""
WORDS = HOURS // 8
"""Bytes of a packed hour mask (21: bit h of byte h // 8, little-endian bit order; ``weekly.masks``)."""
DAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
DAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAYS_EN_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WORKDAYS = range(0, 5)
"""Monday to Friday (weekday numbers)."""
WEEKEND = range(5, 7)
"""Saturday and Sunday."""
NIGHT_FROM = 22
"""Night begins at 22:00 local time ..."""
NIGHT_UNTIL = 6
"""... and ends at 06:00."""


def label_zh(h: int) -> str:
    """The hour of the week in Chinese: ``周一 08时`` (the hour 08:00–09:00 of Monday)."""
    return f"{DAYS_ZH[h // 24]} {h % 24:02d}时"


def label_en(h: int) -> str:
    """The hour of the week in English: ``Mon 08:00`` (the hour from 08:00 of Monday)."""
    return f"{DAYS_EN[h // 24]} {h % 24:02d}:00"


LABELS_ZH = tuple(label_zh(h) for h in range(HOURS))
LABELS_EN = tuple(label_en(h) for h in range(HOURS))

_HOUR_OF_DAY = np.arange(HOURS) % 24
NIGHT = (_HOUR_OF_DAY >= NIGHT_FROM) | (_HOUR_OF_DAY < NIGHT_UNTIL)
"""(168,) bool: the night hours (22:00–06:00 local, every day)."""
DAY = ~NIGHT
"""(168,) bool: the day hours (06:00–22:00 local)."""


def hours_of(days: range | tuple[int, ...], start: int, end: int) -> np.ndarray:
    """The hours of the week (int16, ascending) from ``start`` to ``end`` o'clock (``end`` excluded, 0–24) of each
    weekday in ``days`` (0 Monday … 6 Sunday)."""
    return np.array([d * 24 + h for d in days for h in range(start, end)], dtype=np.int16)


@dataclass(frozen=True)
class Band:
    """A named span of hours on workdays or at the weekend, for a map's hour selector."""

    key: str
    """``workday_lunch``, ``weekend_night`` …"""
    zh: str
    """工作日 午 10–14时"""
    en: str
    """workdays, lunch 10:00–14:00"""
    hours: np.ndarray
    """Its hours of the week (int16, ascending)."""


_SPANS = (("early", "凌晨", "small hours", 0, 6), ("morning", "早", "morning", 6, 10),
          ("lunch", "午", "lunch", 10, 14), ("afternoon", "下午", "afternoon", 14, 17),
          ("dinner", "晚", "dinner", 17, 21), ("night", "夜", "night", 21, 24))
_PARTS = (("workday", "工作日", "workdays", WORKDAYS), ("weekend", "周末", "weekend", WEEKEND))

BANDS: dict[str, Band] = {
    f"{part}_{key}": Band(f"{part}_{key}", f"{pzh} {zh} {a:02d}–{b:02d}时", f"{pen}, {en} {a:02d}:00–{b:02d}:00",
                          hours_of(days, a, b))
    for part, pzh, pen, days in _PARTS for key, zh, en, a, b in _SPANS}
"""The map's hour bands: six spans of the day (凌晨 00–06, 早 06–10, 午 10–14, 下午 14–17, 晚 17–21, 夜 21–24) on
workdays (Monday–Friday) and at the weekend; together they hold every hour of the week once. The 夜 band
(21–24) is a selector's span, not the night of a night gap (``NIGHT``, 22–06)."""


def _local_index(times: object, tz: str) -> pd.DatetimeIndex:
    """``times`` as a DatetimeIndex in zone ``tz``; naive times (``datetime64``) are taken as UTC."""
    zone = zone_of(tz)
    if isinstance(times, pd.Series):
        idx = pd.DatetimeIndex(times.to_numpy() if times.dt.tz is None else times)
    else:
        idx = pd.DatetimeIndex(times)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert(zone)


def hour_of_week(times: object, tz: str = "Asia/Shanghai") -> np.ndarray:
    """The local hour of the week (int16, 0–167; -1 for NaT) of each instant.

    ``times``: UTC instants as naive ``datetime64`` (an array, or a Series as ``data.demand_times`` gives without a
    zone) or any time-zone-aware Series or DatetimeIndex; ``tz`` the IANA zone whose wall clock counts
    (``Settings.timezone``). InvalidInput for an unknown zone.
    """
    idx = _local_index(times, tz)
    nat = np.asarray(idx.isna())
    out = np.full(len(idx), -1, dtype=np.int16)
    known = idx[~nat]
    out[~nat] = known.dayofweek.to_numpy(dtype=np.int64) * 24 + known.hour.to_numpy(dtype=np.int64)
    return out


def weeks_spanned(times: object, tz: str = "Asia/Shanghai") -> float:
    """How many weeks the timed orders cover: the local calendar days from the first order's day to the last one's,
    both included, over 7; at least 1 (also when there is no time at all). Divide a total by it to give a typical
    week's figure. NaT is left out; naive times are UTC (as for ``hour_of_week``)."""
    idx = _local_index(times, tz)
    idx = idx[~idx.isna()]
    if not len(idx):
        return 1.0
    days = (idx.max().normalize() - idx.min().normalize()).days + 1
    return max(1.0, float(days) / 7.0)
