"""Weekly opening hours in OpenStreetMap ``opening_hours`` syntax (``Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00``).

A rule is checked and evaluated by the maintained ``opening_hours`` package (public holidays, ``PH``, from its
calendar of the country given, China by default; that calendar holds one day per festival, not the whole
statutory break); hours written in Chinese are read into a rule by ``stations.hours_zh``. Times are local
wall-clock times in the station's zone (``tz``, an IANA name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import opening_hours

from yizhan.stations.hours_zh import EXAMPLE_OSM, EXAMPLE_ZH, rule_from_zh, status_en, status_zh

COUNTRY = "CN"
"""ISO country code whose public holidays ``PH`` means, unless told otherwise."""
LOOK_AHEAD = timedelta(days=366)
"""How far ahead the next opening is looked for (a seasonal station may open again only next summer)."""


@lru_cache(maxsize=4096)
def _parse(expr: str, country: str = COUNTRY) -> opening_hours.OpeningHours:
    return opening_hours.OpeningHours(expr, country=country)


_SELECTOR = re.compile(r"^(.*?)\d{1,2}:\d{2}")


def _wipes_out(expr: str) -> bool:
    """Whether a later rule of ``expr`` repeats an earlier one's days with other times (``08:00-12:00; 14:30-18:00``),
    which in OSM wipes the earlier out: written that way, both periods were meant."""
    seen: set[str] = set()
    for rule in expr.split(";"):
        m = _SELECTOR.match(rule.strip())
        if m is None or re.search(r"\b(off|closed|unknown)\b", rule):
            continue
        if m[1].strip() in seen:
            return True
        seen.add(m[1].strip())
    return False


@lru_cache(maxsize=4096)
def _valid(expr: str) -> bool:
    try:
        _parse(expr)
    except opening_hours.ParserError:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        return False
    return True


def check_hours(expr: str) -> str:
    """The canonical OSM rule of an hours text, to store.

    An OSM rule is kept as written (stripped): ``Mo-Fr 08:00-20:00``, unless a later rule repeats an earlier one's
    days with other times (``08:00-12:00; 14:30-18:00``: in OSM only the afternoon would count, and what was meant is
    both periods; it is read as below). Anything else is read as Chinese (or Chinese mixed with OSM words) by
    ``hours_zh.rule_from_zh``: ``周一至周五 9:00-18:00，周末休息`` -> ``Mo-Fr 09:00-18:00; Sa,Su off``. Raises
    ValueError with one line, Chinese then English, naming what could not be read and an example that would be.
    """
    text = expr.strip()
    if text and _valid(text) and not _wipes_out(text):
        return text
    rule = rule_from_zh(text)
    if not _valid(rule):  # the reader writes only rules the package reads; say so plainly if one slips through
        shown = " ".join(text[:60].split())
        raise ValueError(f"开放时间 '{shown}' 无法转换，可写作 '{EXAMPLE_ZH}' / opening hours '{shown}' could not be "
                         f"turned into a rule ('{rule}'); write e.g. '{EXAMPLE_OSM}'")
    return rule


def local_time(at: datetime, tz: str) -> datetime:
    """``at`` as naive local wall-clock time in ``tz``; a naive ``at`` is taken as already local."""
    if at.tzinfo is None:
        return at
    return at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def is_open(expr: str | None, at: datetime, *, tz: str = "Asia/Shanghai", country: str = COUNTRY) -> bool:
    """Whether a station with hours ``expr`` is open at ``at``. Unknown or missing hours count as not open."""
    if not expr:
        return False
    try:
        return bool(_parse(expr, country).is_open(local_time(at, tz)))
    except opening_hours.ParserError:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        return False


ROUND_THE_CLOCK = timedelta(days=7)
"""A station is open round the clock (24 小时) when it stays open this long from the instant asked about."""


@lru_cache(maxsize=4096)
def _round_the_clock(expr: str, day: datetime, country: str) -> bool:
    rule = _parse(expr, country)
    if not rule.is_open(day):
        return False
    change = rule.next_change(day)
    return change is None or change - day >= ROUND_THE_CLOCK + timedelta(days=1)


def round_the_clock(expr: str | None, at: datetime, *, tz: str = "Asia/Shanghai", country: str = COUNTRY) -> bool:
    """Whether hours ``expr`` keep a station open without a break for the week from ``at`` (``24/7``,
    ``Mo-Su 00:00-24:00``): what a rider's 24 小时 filter asks. Judged from the start of ``at``'s local day (one
    answer per rule and day); unknown or missing hours count as not."""
    if not expr:
        return False
    day = local_time(at, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        return _round_the_clock(expr, day, country)
    except opening_hours.ParserError:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        return False


@dataclass(frozen=True)
class HoursNow:
    """A station's hours at one instant, with the next change: what the rider's page says (营业至 20:00).

    ``at``, ``closes_at`` and ``opens_at`` are aware datetimes in the station's zone (ISO 8601 with its offset).
    """

    at: datetime
    """The instant asked about."""
    open_now: bool
    unknown: bool
    """The rule says the hours are not known now (``unknown "不定时"``): neither open nor closed for sure."""
    closes_at: datetime | None
    """When open: when it closes; None when it never closes within ``LOOK_AHEAD`` (24/7)."""
    opens_at: datetime | None
    """When not open: when it next opens; None when it does not within ``LOOK_AHEAD``."""
    comment: str
    """The rule's comment at that instant (``不定时``), or empty."""

    def said_zh(self) -> str:
        """营业至 20:00 / 24小时营业 / 已关闭 · 明天 08:00 开放 / 不定时 · 请先电话确认."""
        return status_zh(self.open_now, self.closes_at, self.opens_at, self.at, unknown=self.unknown,
                         note=self.comment)

    def said_en(self) -> str:
        """open until 20:00 / open 24 hours / closed · opens tomorrow 08:00 / hours vary · call ahead."""
        return status_en(self.open_now, self.closes_at, self.opens_at, self.at, unknown=self.unknown)


def hours_now(expr: str | None, at: datetime, *, tz: str = "Asia/Shanghai", country: str = COUNTRY) -> HoursNow | None:
    """The state of hours ``expr`` at ``at`` and the next change, from the ``opening_hours`` package's own evaluator
    (``state``, ``next_change``, ``intervals``); None for missing or unreadable hours. A naive ``at`` is local time.
    """
    if not expr:
        return None
    try:
        rule = _parse(expr, country)
    except opening_hours.ParserError:  # type: ignore[attr-defined]  # ParserError is missing from the package's own stub (__init__.pyi)
        return None
    zone = ZoneInfo(tz)
    local = local_time(at, tz)
    horizon = local + LOOK_AHEAD
    state, comment = rule.state(local)
    closes = opens = None
    if state == opening_hours.State.OPEN:
        change = rule.next_change(local)
        closes = change if change is not None and change <= horizon else None
    else:
        for start, _end, st, _note in rule.intervals(local, horizon):
            if st == opening_hours.State.OPEN:
                opens = max(start, local)
                break
    return HoursNow(at=local.replace(tzinfo=zone), open_now=state == opening_hours.State.OPEN,
                    unknown=state == opening_hours.State.UNKNOWN,
                    closes_at=None if closes is None else closes.replace(tzinfo=zone),
                    opens_at=None if opens is None else opens.replace(tzinfo=zone), comment=comment)
