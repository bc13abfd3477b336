"""The hours of the week as the map and the reports show them: weekday and hour labels, the hour bands of the map's
selector, and which cells of a run are gaps in each band.

Hour of the week ``h = weekday * 24 + hour`` (Monday 0, 0–167) in the area's local wall-clock time, as the run
stores it. A cell's hours come from its ``covered_hours`` column (21 bytes, bit ``h`` set when covered at hour
``h``, little-endian bit order as ``numpy.packbits(..., bitorder="little")``).

The bands are those of ``yizhan.weekly.week.BANDS``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from yizhan.weekly.masks import unpack
from yizhan.weekly.week import BANDS, DAYS_EN, DAYS_ZH, HOURS, WORDS, Band

BAND_PANE = "yz-band"
"""The map pane (under the overlays) in which the page script draws the cells of the chosen band."""
WEEK_KEY = "week"
WEEK_LABEL = "全周 all week"
"""The selector's choice of the whole week (all 168 hours), after the bands."""


def band_parts(band: Band) -> tuple[str, str]:
    """(days, span) of a band as the selector shows them, short enough for a phone: ``("工作日 workdays",
    "午 10–14时 lunch")``."""
    days_zh, span_zh = band.zh.split(" ", 1)
    days_en, span_en = band.en.split(", ", 1)
    name_en = re.sub(r"[\s\d:–-]+$", "", span_en)
    return f"{days_zh} {days_en}", f"{span_zh} {name_en}"


def hour_label(h: int) -> str:
    """``"周三 12:00–13:00 Wed"``: hour of the week ``h`` (0–167), Chinese first."""
    day, hour = divmod(int(h), 24)
    return f"{DAYS_ZH[day]} {hour:02d}:00–{hour + 1:02d}:00 {DAYS_EN[day]}"


def hour_matrix(cells: pd.DataFrame) -> np.ndarray | None:
    """(n, 168) bool: cell ``i`` covered at hour ``h``, unpacked from the cells' ``covered_hours`` (21 bytes each:
    bytes, memoryview or a uint8 array); None when the frame has no such column (a run without hours). A cell
    without a mask counts as never covered."""
    if "covered_hours" not in cells:
        return None
    packed = np.zeros((len(cells), WORDS), dtype=np.uint8)
    for i, value in enumerate(cells["covered_hours"]):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        raw = np.frombuffer(bytes(value), dtype=np.uint8) if not isinstance(value, np.ndarray) else value
        packed[i] = raw.astype(np.uint8)[:WORDS]
    return unpack(packed)


def band_gaps(covered: np.ndarray, bands: Iterable[Band] = BANDS.values()) -> np.ndarray:
    """(n, bands + 1) bool: a cell is a gap of a band when it is covered in fewer than half of the band's hours;
    the last column is the whole week (fewer than 84 of 168 hours)."""
    listed = list(bands)
    out = np.zeros((covered.shape[0], len(listed) + 1), dtype=bool)
    for j, band in enumerate(listed):
        hours = band.hours.astype(np.int64)
        out[:, j] = 2 * covered[:, hours].sum(axis=1) < len(hours)
    out[:, -1] = 2 * covered.sum(axis=1) < HOURS
    return out


def band_bits(gaps: np.ndarray) -> np.ndarray:
    """One integer per cell from :func:`band_gaps`: bit ``j`` set when the cell is a gap of column ``j`` (13 bits;
    the whole week is bit 12)."""
    weights = np.left_shift(1, np.arange(gaps.shape[1], dtype=np.int64))
    return (gaps.astype(np.int64) * weights).sum(axis=1)


def band_share(demand: np.ndarray, covered: np.ndarray, hours: np.ndarray | None = None) -> float:
    """The covered share (0–1) of the demand in ``hours`` (all 168 when None); NaN without demand."""
    d = demand if hours is None else demand[hours]
    c = covered if hours is None else covered[hours]
    total = float(np.sum(d))
    return float(np.sum(c)) / total if total > 0 else math.nan


def share_grid(share: np.ndarray) -> np.ndarray:
    """(24, 7): the covered share of each hour of the day (rows) and weekday (columns, Monday first) from the
    (168,) shares by hour of the week."""
    return np.asarray(share, dtype=float).reshape(7, 24).T


def peak_label(h: Any) -> str:
    """A station's peak hour (0–167) as :func:`hour_label`, ``"—"`` when unknown (None or NA)."""
    return hour_label(int(h)) if h is not None and not pd.isna(h) else "—"

