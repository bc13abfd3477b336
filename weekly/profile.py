"""How demand spreads over the hours of the week: the default delivery profile, a planner's own profile read from a
file, and the demand matrix by location and hour (hour ``h = weekday * 24 + hour``, Monday 0, local time).

An order with a time counts at its own hour; an order without one is spread over the week by the profile.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from yizhan.errors import ImportRejected, InvalidInput, RowProblem, split_languages
from yizhan.stations.tables import ImportLimits, read_file
from yizhan.weekly.week import DAYS_EN, DAYS_EN_LONG, DAYS_ZH, HOURS

_WORKDAY = (1.2, 0.7, 0.4, 0.3, 0.3, 0.4, 0.9, 1.6, 2.0, 2.2, 3.5, 8.0,
            8.5, 4.5, 2.5, 2.3, 2.8, 5.0, 7.0, 6.0, 3.5, 2.6, 2.0, 1.5)
_WEEKEND = (1.6, 1.0, 0.5, 0.4, 0.3, 0.3, 0.6, 0.9, 1.4, 2.0, 3.8, 7.5,
            8.0, 5.5, 3.2, 3.0, 3.0, 5.0, 7.2, 6.3, 4.0, 3.0, 2.4, 1.9)
_WEEKEND_DAY = 1.1
"""A weekend day's orders against a workday's."""


def _default_profile() -> np.ndarray:
    week = np.concatenate([np.asarray(_WORKDAY)] * 5 + [np.asarray(_WEEKEND) * _WEEKEND_DAY] * 2)
    out: np.ndarray = week / week.sum()
    return out


DEFAULT_PROFILE = _default_profile()
"""(168,) share of a week's meal-delivery orders at each hour of the week (sum 1).

A stylised shape, not the measurement of any city: it follows the pattern generally described for meal delivery in
Chinese cities (two meal peaks, lunch 11–13 the higher, dinner 17–20; a small breakfast rise; late-night snacks to
midnight; quietest 02–06). Workdays (Monday–Friday) share one shape; at the weekend breakfast is later and smaller,
the afternoon and late evening fuller, and a day has 10 % more orders than a workday. It only spreads orders that
carry no time; a planner with the platform's own hourly counts replaces it with a file (``read_profile``)."""

SPREAD_ROWS = 20_000
"""Rows of untimed orders ``demand_by_hour`` writes at a time."""

FIELDS = {"weekday": "星期", "hour": "小时", "weight": "权重"}
_HEADERS = {
    "weekday": {"星期", "周", "周几", "星期几", "weekday", "day", "dow", "day of week"},
    "hour": {"小时", "时", "时段", "钟点", "hour", "hour of day", "time"},
    "weight": {"权重", "比例", "占比", "份额", "订单量", "单量", "weight", "share", "orders", "demand"},
}
_DAY_WORDS: dict[str, int] = {}
for _i in range(7):
    for _w in (DAYS_ZH[_i], DAYS_ZH[_i].replace("周", "星期"), DAYS_ZH[_i][1], DAYS_EN[_i], DAYS_EN_LONG[_i],
               str(_i + 1)):
        _DAY_WORDS[_w.lower()] = _i
for _w in ("周天", "星期天", "天"):
    _DAY_WORDS[_w] = 6
EXPECTED_DAY = ("周一 … 周日、星期一 … 星期日、一 … 日、1 … 7（1 = 周一）/ Mon … Sun, Monday … Sunday or 1 … 7 "
                "(1 = Monday)")
EXPECTED_HOUR = "0 … 23 的整点，如 8、08、08:00、8时 / a whole hour 0 … 23 such as 8, 08, 08:00, 8时"
EXPECTED_WEIGHT = "不小于 0 的数，如 12、0.5、3% / a number of at least 0 such as 12, 0.5 or 3%"
_HOUR = re.compile(r"(\d{1,2})\s*(?::00(?::00)?|时|点|h)?(?:\s*[-–~至到]\s*\d{1,2}\s*(?::00(?::00)?|时|点|h)?)?",
                   re.IGNORECASE)


def _norm(cell: object) -> str:
    return unicodedata.normalize("NFKC", str(cell)).strip().lower()


def weekday_of(cell: object) -> int | None:
    """The weekday (0 Monday … 6 Sunday) a cell names (``EXPECTED_DAY``), None when it names none."""
    return _DAY_WORDS.get(_norm(cell).removesuffix("."))


def hour_of(cell: object) -> int | None:
    """The hour of the day (0–23) a cell names (``EXPECTED_HOUR``; a span ``08:00-09:00`` gives its start), None
    when it names none."""
    m = _HOUR.fullmatch(_norm(cell))
    if m is None or int(m.group(1)) > 23:
        return None
    return int(m.group(1))


def weight_of(cell: object) -> float | None:
    """The non-negative finite number a cell holds (``12``, ``0.5``, ``3%``), None when it holds none."""
    text = _norm(cell).replace(",", "")
    percent = text.endswith("%")
    try:
        v = float(text.removesuffix("%"))
    except ValueError:
        return None
    if not math.isfinite(v) or v < 0:
        return None
    return v / 100 if percent else v


def _role(header: str) -> str | None:
    h = _norm(header)
    return next((f for f, names in _HEADERS.items() if h in names), None)


def _score(cells: Sequence[str]) -> int:
    """How many cells of a row name a profile column or a weekday (a header row names two or more)."""
    return sum(1 for c in cells if _role(str(c)) is not None or weekday_of(c) is not None)


def read_profile(source: Path | str | bytes, filename: str | None = None, *,
                 limits: ImportLimits | None = None) -> np.ndarray:
    """A planner's profile of the week from a CSV or XLSX file: the (168,) share of orders at each hour (sum 1).

    ``source`` is a path, or the bytes of an upload with ``filename`` giving its type. Two layouts:

    - 168 rows (in any order) of weekday, hour, weight: headers ``星期, 小时, 权重`` or ``weekday, hour, weight``
      (also ``周``, ``时段``, ``比例``/``占比``/``订单量``, ``day``, ``share``/``orders``); weekdays as 周一, 星期一,
      一, Mon, Monday or 1–7 (1 = Monday); hours 0–23 (``8``, ``08:00``, ``8时``, ``08:00-09:00``).
    - a 24 x 7 table: hours down (a first column of hours, or 24 rows in order from 0:00), weekdays across (the
      header names the seven days).

    Weights are any non-negative numbers (orders, shares, percentages), normalised here. Every bad row is named in
    one ``ImportRejected`` (row, field, value and what is accepted, Chinese then English); a missing or repeated
    hour, an all-zero table or an unknown layout is ``InvalidInput``. Nothing is returned half-read.
    """
    if isinstance(source, bytes):
        path: Path | str | None = None
        data: bytes | None = source
        name = filename or "profile.csv"
    else:
        path, data, name = source, None, filename or str(source)
    src = Path(name).name
    suffix = Path(name).suffix.lower()
    if suffix not in {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}:
        raise InvalidInput(f"{src}: 周需求曲线只能是 CSV 或 XLSX 文件 / a week profile must be a .csv or .xlsx file, "
                           f"not {suffix or 'a file of no type'}")
    table = read_file(path, data=data, filename=name, score=_score, limits=limits or ImportLimits())
    frames = [(part.sheet, part.frame) for part in table.parts]  # a part's rows are read before the next part
    if len(frames) != 1:
        raise InvalidInput(f"{src}: 周需求曲线只能有一张表，找到 {len(frames)} 张 / a week profile is one table; found "
                           f"{len(frames)} sheets with headers ({', '.join(s or '?' for s, _ in frames)})")
    frame = frames[0][1]
    headers = [h for h in frame.columns if h != "_row"]
    cells = frame[headers].fillna("").astype(str)
    keep = (cells.apply(lambda c: c.str.strip()) != "").any(axis=1).to_numpy()
    frame = frame[keep].reset_index(drop=True)
    roles = {h: _role(h) for h in headers}
    days = {h: weekday_of(h) for h in headers}
    if {"weekday", "hour", "weight"} <= set(roles.values()):
        week = _long_form(frame, roles, src)
    elif sorted(d for d in days.values() if d is not None) == list(range(7)):
        week = _wide_form(frame, days, src)
    else:
        raise InvalidInput(f"{src}: 找不到 星期、小时、权重 三列，也不是 24×7 表（小时向下、周一至周日向右）/ "
                           f"no columns weekday, hour, weight nor a 24 x 7 table (hours down, the seven weekdays "
                           f"across); headers found: {', '.join(map(str, headers))}")
    total = float(week.sum())
    if total <= 0:
        raise InvalidInput(f"{src}: 权重全为 0 / every weight is 0; at least one hour must have orders")
    return week / total


def _problem(row: int, fld: str, value: object, expected: str) -> RowProblem:
    zh, en = split_languages(expected)
    return RowProblem(row, fld, value, en, expected_zh=zh, field_zh=FIELDS.get(fld, fld))


def _long_form(frame: pd.DataFrame, roles: dict[str, str | None], src: str) -> np.ndarray:
    twice = sorted({role for role in roles.values() if role is not None and list(roles.values()).count(role) > 1})
    if twice:
        named = "; ".join(f"{role}: {', '.join(h for h, r in roles.items() if r == role)}" for role in twice)
        raise InvalidInput(f"{src}: 同一项有多列（{named}），请只留一列 / more than one column for the same field "
                           f"({named}); keep one")
    col = {role: h for h, role in roles.items() if role is not None}
    extra = [h for h, role in roles.items() if role is None and frame[h].astype(str).str.strip().ne("").any()]
    if extra:
        raise InvalidInput(f"{src}: 未知的列 {', '.join(extra)}，可用 星期、小时、权重 / unknown column(s) "
                           f"{', '.join(extra)}; expected weekday, hour, weight")
    week = np.zeros(HOURS)
    seen: dict[int, int] = {}
    problems: list[RowProblem] = []
    for row, d, h, w in zip(frame["_row"], frame[col["weekday"]], frame[col["hour"]], frame[col["weight"]],
                            strict=True):
        day, hour, weight = weekday_of(d), hour_of(h), weight_of(w)
        if day is None:
            problems.append(_problem(int(row), "weekday", d, EXPECTED_DAY))
        if hour is None:
            problems.append(_problem(int(row), "hour", h, EXPECTED_HOUR))
        if weight is None:
            problems.append(_problem(int(row), "weight", w, EXPECTED_WEIGHT))
        if day is None or hour is None or weight is None:
            continue
        k = day * 24 + hour
        if k in seen:
            problems.append(_problem(int(row), "hour", f"{d} {h}",
                                     f"每个星期和小时只能出现一次，已在第 {seen[k]} 行 / each weekday and hour once; "
                                     f"already given in row {seen[k]}"))
            continue
        seen[k] = int(row)
        week[k] = weight
    if problems:
        raise ImportRejected(src, problems)
    missing = [h for h in range(HOURS) if h not in seen]
    if missing:
        shown = ", ".join(f"{DAYS_ZH[h // 24]} {h % 24}" for h in missing[:10])
        more = " …" if len(missing) > 10 else ""
        raise InvalidInput(f"{src}: 缺少 {len(missing)} 个小时 / {len(missing)} hour(s) of the week missing "
                           f"({shown}{more}); expected 168 rows, one per weekday and hour")
    return week


def _wide_form(frame: pd.DataFrame, days: dict[str, int | None], src: str) -> np.ndarray:
    others = [h for h, d in days.items() if d is None and frame[h].astype(str).str.strip().ne("").any()]
    if len(others) > 1:
        raise InvalidInput(f"{src}: 24×7 表只能有一列小时和七列星期，多出 {', '.join(others)} / a 24 x 7 table holds "
                           f"one column of hours and the seven weekdays; unknown column(s) {', '.join(others)}")
    problems: list[RowProblem] = []
    if others:
        hours: list[int | None] = []
        for row, h in zip(frame["_row"], frame[others[0]], strict=True):
            hours.append(hour_of(h))
            if hours[-1] is None:
                problems.append(_problem(int(row), "hour", h, EXPECTED_HOUR))
    elif len(frame) == 24:
        hours = list(range(24))
    else:
        raise InvalidInput(f"{src}: 没有小时列的 24×7 表须正好 24 行，这里 {len(frame)} 行 / a 24 x 7 table without a "
                           f"column of hours must have exactly 24 rows (0:00 to 23:00); found {len(frame)}")
    table = np.zeros((24, 7))
    seen: dict[int, int] = {}
    for i, row in enumerate(frame["_row"]):
        hour = hours[i]
        if hour is not None and hour in seen:
            problems.append(_problem(int(row), "hour", frame[others[0]].iloc[i] if others else hour,
                                     f"每个小时只能出现一次，已在第 {seen[hour]} 行 / each hour once; already given "
                                     f"in row {seen[hour]}"))
            hour = None
        elif hour is not None:
            seen[hour] = int(row)
        for h, d in days.items():
            if d is None:
                continue
            value = frame[h].iloc[i]
            w = weight_of(value)
            if w is None:
                problems.append(_problem(int(row), "weight", value, EXPECTED_WEIGHT.replace(" / ", f"（{h}）/ ")
                                         + f" ({h})"))
            elif hour is not None:
                table[hour, d] = w
    if problems:
        raise ImportRejected(src, problems)
    missing = [h for h in range(24) if h not in seen]
    if missing:
        raise InvalidInput(f"{src}: 缺少小时 {', '.join(map(str, missing))} / hour(s) {', '.join(map(str, missing))} "
                           f"missing; a 24 x 7 table has one row per hour 0 … 23")
    return table.T.ravel()


def demand_by_hour(loc: np.ndarray, hour: np.ndarray, weight: np.ndarray, n_loc: int,
                   profile: np.ndarray = DEFAULT_PROFILE) -> csr_matrix:
    """The demand of each location at each hour of the week: a sparse (n_loc x 168) float64 csr matrix.

    ``loc`` (int, 0 … n_loc-1) the location of each demand item, ``hour`` (int, 0–167, or -1 for an item without a
    time) its hour of the week, ``weight`` its orders. A timed item counts at its hour; the untimed orders of a
    location are spread over the week by ``profile`` ((168,), normalised here). Each row sums to its location's
    weight (to rounding). Such a row holds up to 168 entries: untimed demand costs 168 x 12 bytes per location.
    InvalidInput for an hour outside -1 … 167, a location outside 0 … n_loc-1, a negative or non-finite weight or
    a profile that is not 168 non-negative numbers with a positive sum.
    """
    loc = np.asarray(loc, dtype=np.int64)
    hour = np.asarray(hour, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if not (len(loc) == len(hour) == len(weight)):
        raise InvalidInput(f"demand items: loc, hour and weight differ in length ({len(loc)}, {len(hour)}, "
                           f"{len(weight)})")
    prof = np.asarray(profile, dtype=np.float64)
    if prof.shape != (HOURS,) or not np.isfinite(prof).all() or (prof < 0).any() or prof.sum() <= 0:
        raise InvalidInput("周需求曲线须为 168 个不小于 0 的数，总和大于 0 / a week profile must be 168 non-negative "
                           f"numbers with a positive sum; got shape {prof.shape}")
    prof = prof / prof.sum()
    if len(loc) and (loc.min() < 0 or loc.max() >= n_loc):
        raise InvalidInput(f"demand items: location index outside 0 … {n_loc - 1}")
    if len(hour) and (hour.min() < -1 or hour.max() >= HOURS):
        raise InvalidInput("demand items: hour of the week outside -1 … 167")
    if len(weight) and (not np.isfinite(weight).all() or weight.min() < 0):
        raise InvalidInput("demand items: a weight is negative or not a number")
    timed = hour >= 0
    t = csr_matrix((weight[timed], (loc[timed], hour[timed])), shape=(n_loc, HOURS), dtype=np.float64)
    t.sum_duplicates()
    untimed = np.bincount(loc[~timed], weights=weight[~timed], minlength=n_loc)
    spread = np.flatnonzero(untimed > 0)
    if not len(spread):
        return t
    # rows with untimed orders become dense (168 entries: the spread plus their timed orders), written a block of
    # rows at a time (temporaries of one block only); the other rows keep their timed entries
    counts = np.diff(t.indptr)
    counts[spread] = HOURS
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]))
    t_rows = np.repeat(np.arange(n_loc), np.diff(t.indptr))
    keep = untimed[t_rows] <= 0
    pos = indptr[t_rows[keep]] + (np.arange(t.nnz) - t.indptr[t_rows])[keep]
    indices[pos], data[pos] = t.indices[keep], t.data[keep]
    where = np.full(n_loc, -1, dtype=np.int64)
    where[spread] = np.arange(len(spread))
    tr, tc, td = where[t_rows[~keep]], t.indices[~keep], t.data[~keep]  # timed orders of those rows, by row
    del pos, keep, t_rows
    hours = np.arange(HOURS)
    for lo in range(0, len(spread), SPREAD_ROWS):
        hi = min(lo + SPREAD_ROWS, len(spread))
        block = np.multiply.outer(untimed[spread[lo:hi]], prof)
        a, b = np.searchsorted(tr, [lo, hi])
        block[tr[a:b] - lo, tc[a:b]] += td[a:b]  # a row's timed entries are unique (canonical): no repeats
        at = indptr[spread[lo:hi]][:, None] + hours
        data[at] = block
        indices[at] = hours
    m = csr_matrix((data, indices, indptr), shape=(n_loc, HOURS))
    if (prof == 0).any():
        m.eliminate_zeros()
    return m
