"""The hours of the week (weekly.week) and how demand spreads over them (weekly.profile): hour of the week in local
time, labels, night and bands, weeks spanned; the default profile, a planner's profile read from real CSV and XLSX
files (both layouts, bad rows named), and the demand matrix checked against plain loops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yizhan.data.demand_times import times_from_text
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.weekly import profile
from yizhan.weekly.profile import DEFAULT_PROFILE, demand_by_hour, read_profile
from yizhan.weekly.week import BANDS, DAY, HOURS, LABELS_EN, LABELS_ZH, NIGHT, hour_of_week, weeks_spanned

SHANGHAI = timezone(timedelta(hours=8))


def test_hour_of_week_counts_local_wall_clock_monday_first() -> None:
    times, bad = times_from_text(pd.Series(["2026-11-30 00:10", "2026-11-29 23:59", "2026-12-02 12:30", "",
                                            "2026-11-29T16:30:00Z"]), "Asia/Shanghai")
    assert not bad.any()
    # Monday 30 Nov 00:10 local; Sunday 23:59; Wednesday 12:30; no time; 16:30 UTC Sunday = Monday 00:30 local
    assert hour_of_week(times, "Asia/Shanghai").tolist() == [0, 167, 2 * 24 + 12, -1, 0]
    assert hour_of_week(times, "UTC").tolist() == [6 * 24 + 16, 6 * 24 + 15, 2 * 24 + 4, -1, 6 * 24 + 16]
    naive = times.dt.tz_localize(None).to_numpy()
    assert hour_of_week(naive, "Asia/Shanghai").tolist() == [0, 167, 60, -1, 0]
    assert hour_of_week(naive).dtype == np.int16


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)))
def test_hour_of_week_matches_datetime_arithmetic(when: datetime) -> None:
    utc = when.replace(tzinfo=UTC)
    local = utc.astimezone(SHANGHAI)
    expected = local.weekday() * 24 + local.hour
    got = hour_of_week(np.array([np.datetime64(when, "us")]), "Asia/Shanghai")
    assert got.tolist() == [expected]


def test_unknown_zone_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidInput, match=r"时区 'Mars/Olympus'.*IANA"):
        hour_of_week(np.array(["2026-01-01"], dtype="datetime64[us]"), "Mars/Olympus")


def test_labels_night_and_bands() -> None:
    assert LABELS_ZH[8] == "周一 08时" and LABELS_EN[8] == "Mon 08:00"
    assert LABELS_ZH[167] == "周日 23时" and LABELS_EN[6 * 24 + 12] == "Sun 12:00"
    night = [h % 24 for h in range(HOURS) if NIGHT[h]]
    assert sorted(set(night)) == [0, 1, 2, 3, 4, 5, 22, 23] and NIGHT.sum() == 8 * 7
    assert (DAY == ~NIGHT).all()
    every = np.concatenate([b.hours for b in BANDS.values()])
    assert sorted(every.tolist()) == list(range(HOURS)), "the bands hold every hour once"
    lunch = BANDS["workday_lunch"]
    assert lunch.zh.startswith("工作日 午") and lunch.hours.tolist()[:4] == [10, 11, 12, 13] and len(lunch.hours) == 20
    assert BANDS["weekend_early"].hours.tolist()[:6] == [120, 121, 122, 123, 124, 125]


def test_weeks_spanned() -> None:
    times, _ = times_from_text(pd.Series(["2026-11-01 08:00", "2026-11-30 23:00", ""]), "Asia/Shanghai")
    assert weeks_spanned(times) == pytest.approx(30 / 7)
    one, _ = times_from_text(pd.Series(["2026-11-03 08:00", "2026-11-04 09:00"]), "Asia/Shanghai")
    assert weeks_spanned(one) == 1.0
    assert weeks_spanned(np.array([], dtype="datetime64[us]")) == 1.0


def test_default_profile_is_a_documented_delivery_week() -> None:
    p = DEFAULT_PROFILE
    assert p.shape == (HOURS,) and p.sum() == pytest.approx(1.0) and (p > 0).all()
    days = p.reshape(7, 24)
    for d in range(7):
        day = days[d]
        assert int(np.argmax(day)) in (11, 12, 13), "lunch peak"
        assert int(np.argmax(day[15:22])) + 15 in (17, 18, 19, 20), "dinner peak"
        assert set(np.argsort(day, kind="stable")[:4].tolist()) == {2, 3, 4, 5}, "quietest 02:00–06:00"
    assert not np.allclose(days[0], days[5]), "the weekend has its own shape"
    assert days[5].sum() > days[0].sum()


def _long_rows(week: np.ndarray, day_words: list[str]) -> list[list[object]]:
    return [[day_words[h // 24], f"{h % 24:02d}:00", float(week[h])] for h in range(HOURS)]


def test_profile_from_csv_long_form_chinese(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    week = rng.integers(0, 50, HOURS).astype(float)
    rows = _long_rows(week, ["周一", "周二", "周三", "周四", "周五", "周六", "周日"])
    rows.reverse()  # any order
    text = "星期,小时,权重\n" + "\n".join(f"{d},{h},{w:g}" for d, h, w in rows) + "\n"
    path = tmp_path / "曲线.csv"
    path.write_bytes(text.encode("gbk"))
    got = read_profile(path)
    assert got == pytest.approx(week / week.sum())
    assert read_profile(text.encode("utf-8"), "曲线.csv") == pytest.approx(week / week.sum())


def test_profile_from_xlsx_long_form_english_numbers(tmp_path: Path) -> None:
    week = np.arange(1, HOURS + 1, dtype=float)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Weekday", "Hour", "Weight"])
    for h in range(HOURS):
        ws.append([h // 24 + 1, h % 24, float(week[h])])
    path = tmp_path / "profile.xlsx"
    wb.save(path)
    assert read_profile(path) == pytest.approx(week / week.sum())


def test_profile_from_24_by_7_table(tmp_path: Path) -> None:
    week = np.random.default_rng(2).random(HOURS)
    table = week.reshape(7, 24).T  # hours down, weekdays across
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["小时", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"])
    for h in range(24):
        ws.append([f"{h}时", *[float(x) for x in table[h]]])
    path = tmp_path / "table.xlsx"
    wb.save(path)
    assert read_profile(path) == pytest.approx(week / week.sum())
    # no hour column: 24 rows in order from 0:00; English day names
    csv = "Mon,Tue,Wed,Thu,Fri,Sat,Sun\n" + "\n".join(",".join(f"{x:.12g}" for x in r) for r in table) + "\n"
    assert read_profile(csv.encode(), "t.csv") == pytest.approx(week / week.sum(), rel=1e-9)


def test_profile_bad_rows_are_all_named_and_nothing_is_read(tmp_path: Path) -> None:
    rows = _long_rows(np.ones(HOURS), ["一", "二", "三", "四", "五", "六", "日"])
    rows[3][0] = "周八"
    rows[10][1] = "25:00"
    rows[20][2] = "-3"
    rows[30][2] = "很多"
    text = "周,时段,比例\n" + "\n".join(f"{d},{h},{w}" for d, h, w in rows) + "\n"
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportRejected) as err:
        read_profile(path)
    msg = str(err.value)
    assert msg.startswith("bad.csv: 4 处问题")
    assert "星期 '周八' (第 5 行): 周一" in msg and "row 5, weekday='周八': Mon" in msg
    assert "小时 '25:00' (第 12 行)" in msg and "0 … 23" in msg
    assert "权重 '-3' (第 22 行)" in msg and "权重 '很多' (第 32 行)" in msg
    assert [p.row for p in err.value.problems] == [5, 12, 22, 32]


def test_profile_missing_repeated_and_unknown_layouts(tmp_path: Path) -> None:
    rows = _long_rows(np.ones(HOURS), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    short = "weekday,hour,weight\n" + "\n".join(f"{d},{h},{w}" for d, h, w in rows[:-2]) + "\n"
    with pytest.raises(InvalidInput, match=r"缺少 2 个小时 / 2 hour\(s\) of the week missing \(周日 22, 周日 23\)"):
        read_profile(short.encode(), "short.csv")
    twice = short + "Mon,00:00,1\nSun,22,1\nSun,23,1\n"
    with pytest.raises(ImportRejected, match=r"第 168 行.*已在第 2 行 / row 168.*already given in row 2"):
        read_profile(twice.encode(), "twice.csv")
    with pytest.raises(InvalidInput, match=r"找不到 星期、小时、权重 三列.*headers found: 星期, 订单"):
        read_profile("星期,订单\n周一,3\n".encode(), "x.csv")
    zero = "weekday,hour,weight\n" + "\n".join(f"{d},{h},0" for d, h, _ in rows) + "\n"
    with pytest.raises(InvalidInput, match="权重全为 0 / every weight is 0"):
        read_profile(zero.encode(), "zero.csv")
    with pytest.raises(InvalidInput, match="CSV 或 XLSX"):
        read_profile(b"{}", "p.geojson")


@pytest.mark.parametrize("spread_rows", [3, 20_000])
def test_demand_by_hour_matches_plain_loops(spread_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile, "SPREAD_ROWS", spread_rows)
    rng = np.random.default_rng(3)
    n_loc, n = 40, 500
    loc = rng.integers(0, n_loc, n)
    hour = np.where(rng.random(n) < 0.3, -1, rng.integers(0, HOURS, n))
    weight = rng.integers(1, 5, n).astype(float)
    m = demand_by_hour(loc, hour, weight, n_loc, DEFAULT_PROFILE)
    expected = np.zeros((n_loc, HOURS))
    for i in range(n):
        if hour[i] >= 0:
            expected[loc[i], hour[i]] += weight[i]
        else:
            for h in range(HOURS):
                expected[loc[i], h] += weight[i] * DEFAULT_PROFILE[h]
    assert m.shape == (n_loc, HOURS) and m.dtype == np.float64
    assert np.allclose(m.toarray(), expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(np.asarray(m.sum(axis=1)).ravel(), np.bincount(loc, weights=weight, minlength=n_loc))


def test_demand_by_hour_with_a_profile_that_has_empty_hours() -> None:
    profile = np.where(np.arange(HOURS) % 24 < 6, 0.0, 1.0)  # no orders 00–06
    loc = np.array([0, 0, 0, 1, 1, 2, 3])
    hour = np.array([-1, 3, 3, 5, 5, -1, 30])
    weight = np.array([18.0, 1.0, 2.0, 4.0, 1.0, 36.0, 0.5])
    m = demand_by_hour(loc, hour, weight, 5, profile)
    dense = m.toarray()
    assert m.has_canonical_format and (m.data != 0).all()
    assert dense[0, 3] == 3.0 and dense[0, 6] == pytest.approx(18.0 / 126) and dense[0, 0] == 0.0
    assert dense[1].tolist() == [5.0 if h == 5 else 0.0 for h in range(HOURS)]
    assert dense[2].sum() == pytest.approx(36.0) and (dense[2] > 0).sum() == 126
    assert dense[3, 30] == 0.5 and dense[4].sum() == 0.0
    assert np.asarray(m.sum(axis=1)).ravel() == pytest.approx([21.0, 5.0, 36.0, 0.5, 0.0])


def test_demand_by_hour_refuses_bad_items() -> None:
    with pytest.raises(InvalidInput, match="outside -1 … 167"):
        demand_by_hour(np.array([0]), np.array([168]), np.array([1.0]), 1)
    with pytest.raises(InvalidInput, match="168 个不小于 0 的数"):
        demand_by_hour(np.array([0]), np.array([-1]), np.array([1.0]), 1, np.ones(24))
