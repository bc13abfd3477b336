"""Stations' opening by hour of the week (weekly.availability), checked against the ``opening_hours`` package's own
state at every minute of the week on real rules: 24/7, office hours, two periods a day, PH off, unknown comments."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import opening_hours
import pytest

from yizhan.errors import InvalidInput
from yizhan.stations.hours import check_hours
from yizhan.weekly.availability import REFERENCE_FROM, reference_week, station_open, week_has_holiday
from yizhan.weekly.week import HOURS

RULES = ["24/7", "Mo-Fr 09:00-17:00", "Mo-Fr 08:30-12:00,14:30-18:00; PH off", "Mo-Su 10:00-22:00",
         "Mo-Su 06:00-22:00", "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00; PH off", "Mo-Su 21:45-02:15",
         'unknown "不定时"', 'Mo-Fr 08:00-18:00; Sa-Su unknown "电话确认"', "Mo-Fr 10:20-10:50,11:00-11:29"]


def minute_reference(rule: str, monday: date, unknown: str = "open") -> tuple[np.ndarray, bool]:
    """(168,) open by the package's state at the start of every minute (>= 30 open minutes), and whether any minute
    is unknown: a plain loop, independent of the intervals the module reads."""
    oh = opening_hours.OpeningHours(rule, country="CN")
    start = datetime.combine(monday, datetime.min.time())
    out = np.zeros(HOURS, dtype=bool)
    any_unknown = False
    for h in range(HOURS):
        minutes = 0
        for m in range(60):
            state, _ = oh.state(start + timedelta(hours=h, minutes=m))
            any_unknown |= state == opening_hours.State.UNKNOWN
            if state == opening_hours.State.OPEN or (unknown == "open" and state == opening_hours.State.UNKNOWN):
                minutes += 1
        out[h] = minutes >= 30
    return out, any_unknown


def test_reference_week_has_no_public_holiday_and_is_stated() -> None:
    monday = reference_week()
    assert monday.weekday() == 0 and monday >= REFERENCE_FROM
    assert not week_has_holiday(monday)
    assert week_has_holiday(date(2026, 9, 28)), "National Day, 1 October 2026, is in the package's calendar"
    a = station_open(["24/7"])
    assert a.week_start == monday and a.holidays is False


@pytest.mark.parametrize("week_of", [None, date(2026, 10, 1)])
def test_every_rule_matches_the_minute_by_minute_state(week_of: date | None) -> None:
    a = station_open(RULES, week_of=week_of)
    monday = a.week_start
    assert a.open.shape == (len(RULES), HOURS) and a.fraction.shape == (len(RULES), HOURS)
    for i, rule in enumerate(RULES):
        expected, any_unknown = minute_reference(rule, monday)
        assert (a.open[i] == expected).all(), rule
        assert a.unknown[i] == any_unknown, rule
    closed = station_open(RULES, week_of=week_of, unknown="closed")
    for i, rule in enumerate(RULES):
        assert (closed.open[i] == minute_reference(rule, monday, unknown="closed")[0]).all(), rule


def test_named_rules_by_hand() -> None:
    a = station_open(RULES)
    day = a.open.reshape(len(RULES), 7, 24)
    assert a.open[0].all(), "24/7"
    assert day[1, 0].nonzero()[0].tolist() == list(range(9, 17)) and not day[1, 5:].any()
    # 08:30-12:00, 14:30-18:00: the half hours 08 and 14 count (30 minutes open), lunch 12–14 does not
    assert day[2, 2].nonzero()[0].tolist() == [8, 9, 10, 11, 14, 15, 16, 17]
    assert a.fraction[2, 8] == pytest.approx(0.5) and a.fraction[2, 12] == 0.0
    # over midnight: 21:45–02:15 is open in 22, 23, 0, 1 (21 has 15 minutes, 02 has 15)
    assert day[6, 3].nonzero()[0].tolist() == [0, 1, 22, 23]
    # two short periods: 10:20-10:50 and 11:00-11:29 -> 30 minutes in 10, 29 in 11
    assert day[9, 0].nonzero()[0].tolist() == [10]
    assert a.unknown.tolist() == [False] * 7 + [True, True, False]
    assert a.open[7].all(), "unknown counts as open by default"
    assert not station_open(['unknown "不定时"'], unknown="closed").open.any()


def test_public_holiday_rules_apply_in_the_week_asked_for() -> None:
    rule = check_hours("周一至周五 8:30-12:00，14:30-18:00；法定节假日休息")
    assert "PH off" in rule
    ordinary = station_open([rule])
    national = station_open([rule], week_of=date(2026, 10, 1))
    assert national.week_start == date(2026, 9, 28) and national.holidays
    assert ordinary.open.sum() == 40
    thursday = national.open[0].reshape(7, 24)[3]
    assert not thursday.any(), "closed on 1 October (PH off)"
    assert national.open.sum() == 32


def test_missing_and_unreadable_rules_are_unknown() -> None:
    a = station_open([None, "", "  ", "Mo-Fr 25:00-26:99", "24/7"])
    assert a.unknown.tolist() == [True, True, True, True, False]
    assert a.open.all()
    c = station_open([None, "Mo-Fr 25:00-26:99", "24/7"], unknown="closed")
    assert c.open.sum(axis=1).tolist() == [0, 0, HOURS]


def test_bad_policy_and_zone_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown hours policy 'maybe'"):
        station_open(["24/7"], unknown="maybe")
    with pytest.raises(InvalidInput, match="time zone 'Nowhere/Town'"):
        station_open(["24/7"], tz="Nowhere/Town")


def test_missing_rules_are_unknown_whatever_their_form() -> None:
    """A frame read from the database gives NaN for a station without hours: it counts like None and blank."""
    a = station_open([None, float("nan"), "  ", "24/7"], unknown="closed")
    assert a.unknown.tolist() == [True, True, True, False]
    assert not a.open[:3].any() and a.open[3].all()
