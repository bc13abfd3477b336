"""Weekly opening hours in OpenStreetMap ``opening_hours`` syntax (``Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00``)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import opening_hours


@lru_cache(maxsize=4096)
def _parse(expr: str) -> opening_hours.OpeningHours:
    return opening_hours.OpeningHours(expr)


def check_hours(expr: str) -> str:
    """Return ``expr`` stripped if it parses, else raise ValueError with the parser's complaint in one line."""
    text = expr.strip()
    try:
        _parse(text)
    except opening_hours.ParserError as exc:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        detail = " ".join(str(exc).split())
        raise ValueError(f"not valid opening_hours syntax (e.g. 'Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00' or "
                         f"'24/7'): {detail[:160]}") from None
    return text


def local_time(at: datetime, tz: str) -> datetime:
    """``at`` as naive local wall-clock time in ``tz``; a naive ``at`` is taken as already local."""
    if at.tzinfo is None:
        return at
    return at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def is_open(expr: str | None, at: datetime, *, tz: str = "Asia/Shanghai") -> bool:
    """Whether a station with hours ``expr`` is open at ``at``. Unknown or missing hours count as not open."""
    if not expr:
        return False
    try:
        return bool(_parse(expr).is_open(local_time(at, tz)))
    except opening_hours.ParserError:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        return False
