"""Order times as clerks and platforms write them, read into instants (UTC).

Accepted, per cell:

- ISO 8601 with an offset (``2026-11-25T12:30:00+08:00``, ``...Z``): that instant.
- A time without an offset (``2026-11-25 12:30``, ``2026-11-25``): local time of ``timezone`` (the app's
  ``settings.timezone``, Asia/Shanghai by default), not UTC. A workbook's date cells arrive this way.
- Chinese forms: ``2026年11月25日 12:30``, ``2026年11月25日12时30分``, ``2026/11/25 12:30``, ``2026.11.25 12:30:05``,
  ``下午2:30``, full-width digits (``２０２６``): local time.
- Numbers: ``20261125`` (and ``202611251230``, ``20261125123000``) local time; ten or thirteen digits (from
  ``1000000000``) Unix seconds or milliseconds; other numbers from 10000 to 2958465 are Excel serial days
  (1899-12-30 = 0, the fraction is the time of day: a date cell saved without its format), local time.

Anything else is refused by row with an example (``EXAMPLES``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from yizhan.errors import InvalidInput

EXAMPLES = "2026-11-25 12:30, 2026年11月25日 12:30, 2026/11/25 12:30, 2026-11-25T12:30+08:00"
_OFFSET = r"[T ][0-9][0-9](?::?[0-9][0-9]){0,2}(?:[.][0-9]+)? *(?:[Zz]|[+-][0-9][0-9](?::?[0-9][0-9])?)$"
"""A time with an offset at its end (plain character classes, which pandas hands to the vectorised regex engine)."""
_NUMBER = r"[0-9]+(?:[.][0-9]+)?"
_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_CLOCK = re.compile(r"(?:(上午|早上|凌晨|中午|下午|晚上)\s*)?(\d{1,2})\s*[:时点]\s*(?:(\d{1,2})\s*分?)?"
                    r"\s*(?::?\s*(\d{1,2}(?:\.\d+)?)\s*秒?)?")
_TAIL_OFFSET = re.compile(r"\s*([Zz]|[+-]\d\d(?::?\d\d)?)$")
_EXCEL_EPOCH = datetime(1899, 12, 30)
_AFTERNOON = {"下午", "晚上"}


def zone_of(timezone: str) -> ZoneInfo:
    """The IANA time zone ``timezone`` names (``Asia/Shanghai``); InvalidInput when there is none."""
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"时区 {timezone!r} 不存在 / time zone {timezone!r} is unknown; expected an IANA name "
                           f"such as Asia/Shanghai (YIZHAN_TIMEZONE)") from exc


def expected_time(timezone: str) -> str:
    """What a time cell may hold, Chinese and English, for a message."""
    return (f"日期时间，如 {EXAMPLES}（不带时区的按 {timezone} 当地时间）/ a date-time such as {EXAMPLES} "
            f"(local time in {timezone} unless it carries an offset)")


def times_from_text(values: pd.Series, timezone: str) -> tuple[pd.Series, np.ndarray]:
    """The instants ``values`` (text cells) stand for, as ``datetime64[us, UTC]`` (NaT for a blank cell), and a
    mask of the cells that hold something unreadable (NaT too). See the module's docstring for the forms."""
    zone = zone_of(timezone)
    text = values.astype(str).str.strip()
    blank = (text == "").to_numpy()
    numeric = text.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
    aware = text.str.contains(_OFFSET, regex=True).to_numpy(dtype=bool) & ~blank & ~numeric
    naive = ~blank & ~numeric & ~aware
    out = np.full(len(text), np.datetime64("NaT", "us"))
    if aware.any():
        out[aware] = _utc(pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce"))
    if naive.any():
        try:
            local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        except ValueError:  # an offset form the pattern above does not know: each cell on its own below
            local = pd.Series(pd.NaT, index=text.index[naive], dtype="datetime64[us]")
        out[naive] = _localised(local, zone)
    rest = np.flatnonzero(~blank & np.isnat(out))
    if len(rest):
        parsed = [_one_time(s) for s in text.iloc[rest]]
        utc = np.array([p is not None and p[0] == "utc" for p in parsed], dtype=bool)
        loc = np.array([p is not None and p[0] == "local" for p in parsed], dtype=bool)
        if utc.any():
            out[rest[utc]] = np.array([p[1] for p, u in zip(parsed, utc, strict=True) if u and p is not None],
                                      dtype="datetime64[us]")
        if loc.any():
            naive_local = pd.Series(np.array([p[1] for p, u in zip(parsed, loc, strict=True) if u and p is not None],
                                             dtype="datetime64[us]"))
            out[rest[loc]] = _localised(naive_local, zone)
    times = pd.Series(out, index=values.index).dt.tz_localize("UTC")
    return times, ~blank & np.isnat(out)


def _utc(times: pd.Series) -> np.ndarray:
    """Aware times as naive UTC ``datetime64[us]``."""
    return np.asarray(times.dt.tz_convert("UTC").dt.tz_localize(None), dtype="datetime64[us]")


def _localised(local: pd.Series, zone: ZoneInfo) -> np.ndarray:
    """Naive local times of ``zone`` as naive UTC ``datetime64[us]``; a time that does not exist or is ambiguous
    there (a daylight-saving change) is NaT, refused with the others."""
    aware = local.astype("datetime64[us]").dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return _utc(aware)


def _one_time(cell: str) -> tuple[str, datetime] | None:
    """One cell the vectorised ISO reading did not take: ``("utc", naive UTC datetime)`` for an instant,
    ``("local", naive datetime)`` for a local time, None when unreadable."""
    s = unicodedata.normalize("NFKC", cell).strip()
    if re.fullmatch(_NUMBER, s):
        return _number_time(s)
    m = _DATE.match(s)
    if m is None:
        try:
            t = datetime.fromisoformat(s)
        except ValueError:
            return None
        return ("local", t) if t.tzinfo is None else ("utc", t.astimezone(ZoneInfo("UTC")).replace(tzinfo=None))
    rest = s[m.end():].strip().removeprefix("T").strip()
    offset = None
    tail = _TAIL_OFFSET.search(rest)
    if tail is not None and rest[:tail.start()].strip():
        offset, rest = tail.group(1), rest[:tail.start()].strip()
    hour = minute = 0
    second = 0.0
    if rest:
        c = _CLOCK.fullmatch(rest)
        if c is None:
            return None
        period, h, mi, sec = c.groups()
        hour, minute, second = int(h), int(mi or 0), float(sec or 0)
        if (period in _AFTERNOON and hour < 12) or (period == "中午" and hour < 6):
            hour += 12
    try:
        t = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), hour, minute) + timedelta(seconds=second)
    except ValueError:
        return None
    if offset is None:
        return "local", t
    try:
        when = datetime.fromisoformat(f"{t.isoformat()}{offset.replace('z', 'Z')}")
    except ValueError:
        return None
    return "utc", when.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _number_time(s: str) -> tuple[str, datetime] | None:
    """A cell of digits: yyyymmdd[HHMM[SS]] local, Unix seconds or milliseconds, or Excel serial days local."""
    forms = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if s.isdigit() and len(s) in forms:
        try:
            return "local", datetime.strptime(s, forms[len(s)])
        except ValueError:
            return None
    if s.isdigit() and len(s) in (10, 13) and int(s) >= 1_000_000_000 * (1000 if len(s) == 13 else 1):
        seconds = int(s) / (1000 if len(s) == 13 else 1)
        return "utc", datetime(1970, 1, 1) + timedelta(seconds=seconds)
    days = float(s)
    if 10_000 <= days < 2_958_466:
        return "local", _EXCEL_EPOCH + timedelta(milliseconds=round(days * 86_400_000))
    return None
