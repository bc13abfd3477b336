"""The period of a monthly return: one calendar month in the app's time zone (``Settings.timezone``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yizhan.errors import InvalidInput

_FORMS = (re.compile(r"^(\d{4})-(\d{1,2})$"), re.compile(r"^(\d{4})/(\d{1,2})$"), re.compile(r"^(\d{4})(\d{2})$"),
          re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月?$"))


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month."""

    year: int
    month: int

    @property
    def first_day(self) -> date:
        """The month's first day (how the period is stored)."""
        return date(self.year, self.month, 1)

    @property
    def label(self) -> str:
        """``2026-11``."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label_zh(self) -> str:
        """``2026年11月``."""
        return f"{self.year}年{self.month}月"

    def previous(self) -> Period:
        """The month before."""
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    @classmethod
    def of(cls, day: date) -> Period:
        """The month ``day`` falls in."""
        return cls(day.year, day.month)


def zone(tz: str) -> ZoneInfo:
    """The IANA time zone ``tz``; InvalidInput naming it when unknown."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"时区 time zone {tz!r}: 未知 unknown; expected an IANA name, e.g. Asia/Shanghai") from None


def period_at(t: datetime, tz: str) -> Period:
    """The month that the instant ``t`` (aware; naive is taken as local) falls in, in the time zone ``tz``."""
    local = t.astimezone(zone(tz)) if t.tzinfo is not None else t
    return Period(local.year, local.month)


def parse_period(text: str, *, now: datetime, tz: str) -> Period:
    """The month written as ``2026-11`` (also ``2026/11``, ``202611``, ``2026年11月``). A month after the current
    one (``now`` in ``tz``) has not begun, so no return can be made for it: InvalidInput names the value and what
    would be accepted."""
    raw = (text or "").strip()
    for form in _FORMS:
        m = form.match(raw)
        if m and 1 <= int(m.group(2)) <= 12 and int(m.group(1)) >= 1900:
            p = Period(int(m.group(1)), int(m.group(2)))
            current = period_at(now, tz)
            if p > current:
                raise InvalidInput(f"月份 --month {raw!r}: 该月尚未开始，最晚可填 {current.label} / the month has not "
                                   f"begun; the latest is {current.label}")
            return p
    raise InvalidInput(f"月份 --month {raw!r}: 应为 年-月，如 2026-11 / expected YYYY-MM, e.g. 2026-11")
