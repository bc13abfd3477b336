"""Opening hours in Chinese, both ways: real-world texts from union station lists and shop signs to the OSM rule
(checked by the ``opening_hours`` package, and evaluated at instants), the rule said in Chinese and read back to the
same rule, unreadable texts refused in one line with an example, and the state a rider's page shows (营业至 20:00).
Times are local wall-clock times in Asia/Shanghai; instants are in the week of Wednesday 4 June 2025."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import opening_hours
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from yizhan.errors import ImportRejected
from yizhan.stations.hours import check_hours, hours_now, is_open
from yizhan.stations.hours_zh import hours_zh, rule_from_zh, status_zh
from yizhan.stations.service import import_stations

# instants, local time: a working week in June 2025, a public holiday (National Day, a Wednesday) and January
DAYS = {"mon": "2025-06-02", "tue": "2025-06-03", "wed": "2025-06-04", "thu": "2025-06-05", "fri": "2025-06-06",
        "sat": "2025-06-07", "sun": "2025-06-08", "ph": "2025-10-01", "jan": "2025-01-15", "jul": "2025-07-16",
        "oct": "2025-10-15"}


def at(when: str) -> datetime:
    """``'wed 10:00'`` -> that local time (naive, as ``is_open`` takes it); ``'thu 01:00'`` is the night after wed."""
    day, clock = when.split()
    return datetime.fromisoformat(f"{DAYS[day]}T{clock}")


# (text as written, canonical OSM rule, instants open, instants closed)
TABLE: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    # all day, every day
    ("全天", "24/7", ("wed 03:00", "sun 23:59"), ()),
    ("24小时", "24/7", ("mon 00:00",), ()),
    ("24h", "24/7", ("sat 12:00",), ()),
    ("全天候", "24/7", ("ph 04:00",), ()),
    ("7×24小时", "24/7", ("wed 02:30",), ()),
    ("全年无休", "24/7", ("sun 05:00",), ()),
    ("24小时自助开放", "24/7", ("mon 03:00",), ()),
    ("全年365天开放", "24/7", ("sun 04:00",), ()),
    ("0点-24点", "24/7", ("wed 23:30",), ()),
    # every day, one period
    ("每天 8:00-20:00", "Mo-Su 08:00-20:00", ("wed 08:00", "sun 19:59"), ("wed 07:59", "wed 20:00")),
    ("每日8:00-20:00", "Mo-Su 08:00-20:00", ("sat 12:00",), ("sat 21:00",)),
    ("天天 8:00-20:00", "Mo-Su 08:00-20:00", ("mon 09:00",), ("mon 06:00",)),
    ("每天 7:00-23:00", "Mo-Su 07:00-23:00", ("sun 22:59",), ("sun 23:00",)),
    ("周一至周日 7:00-22:00", "Mo-Su 07:00-22:00", ("fri 07:00",), ("fri 22:30",)),
    ("全年无休 8:00-22:00", "Mo-Su 08:00-22:00", ("sun 21:00",), ("sun 22:01",)),
    ("09:00-21:00 全年无休", "Mo-Su 09:00-21:00", ("mon 09:00",), ("mon 08:59",)),
    ("8点-20点", "Mo-Su 08:00-20:00", ("wed 19:00",), ("wed 20:30",)),
    ("8:00至20:00", "Mo-Su 08:00-20:00", ("wed 08:30",), ("wed 07:00",)),
    ("８：００—２０：００", "Mo-Su 08:00-20:00", ("wed 12:00",), ("wed 21:00",)),
    ("8:00～20:00", "Mo-Su 08:00-20:00", ("wed 12:00",), ("wed 21:00",)),
    ("上午8:00-下午6:00", "Mo-Su 08:00-18:00", ("wed 17:59",), ("wed 18:00",)),
    ("早8点-晚8点", "Mo-Su 08:00-20:00", ("sat 19:00",), ("sat 07:00",)),
    ("早八晚八", "Mo-Su 08:00-20:00", ("sun 08:00",), ("sun 20:00",)),
    ("早上7点到晚上10点", "Mo-Su 07:00-22:00", ("wed 21:00",), ("wed 06:59",)),
    ("8.30-17.30", "Mo-Su 08:30-17:30", ("wed 08:30",), ("wed 17:30",)),
    ("八点半至十七点", "Mo-Su 08:30-17:00", ("wed 16:59",), ("wed 08:29",)),
    ("早8点至晚12点", "Mo-Su 08:00-24:00", ("wed 23:59",), ("thu 00:30",)),
    # past midnight
    ("8:00-次日2:00", "Mo-Su 08:00-02:00", ("wed 23:00", "thu 01:59"), ("thu 02:00", "wed 07:00")),
    ("20:00-凌晨2:00", "Mo-Su 20:00-02:00", ("wed 20:00", "thu 01:00"), ("wed 19:59", "thu 02:30")),
    ("晚上8点至凌晨2点", "Mo-Su 20:00-02:00", ("wed 22:00",), ("wed 12:00",)),
    ("晚10点-早6点", "Mo-Su 22:00-06:00", ("thu 05:00",), ("wed 12:00",)),
    # several periods, and breaks
    ("08:00-12:00、14:30-18:00", "Mo-Su 08:00-12:00,14:30-18:00", ("wed 11:00", "wed 15:00"), ("wed 13:00",)),
    ("08:00-12:00，14:30-18:00", "Mo-Su 08:00-12:00,14:30-18:00", ("sat 17:00",), ("sat 12:00",)),
    ("08:00-12:00; 14:30-18:00", "Mo-Su 08:00-12:00,14:30-18:00", ("sun 09:00",), ("sun 14:00",)),
    ("08:00-12:00 / 14:30-18:00", "Mo-Su 08:00-12:00,14:30-18:00", ("mon 16:00",), ("mon 19:00",)),
    ("Mo-Fr 08:00-12:00; Mo-Fr 14:30-18:00", "Mo-Fr 08:00-12:00,14:30-18:00", ("fri 15:00",), ("fri 13:00",)),
    ("08:00-12:00和14:30-18:00", "Mo-Su 08:00-12:00,14:30-18:00", ("fri 08:00",), ("fri 12:30",)),
    ("上午9:00-12:00，下午2:00-5:30", "Mo-Su 09:00-12:00,14:00-17:30", ("wed 17:00",), ("wed 13:00",)),
    ("周一至周五 8:30-12:00 14:00-17:30", "Mo-Fr 08:30-12:00,14:00-17:30", ("wed 14:00",), ("wed 12:00", "sat 09:00")),
    ("每天 8:00-18:00，中午休息 12:00-14:00", "Mo-Su 08:00-12:00,14:00-18:00", ("wed 10:00", "wed 15:00"),
     ("wed 13:00",)),
    ("8:00-18:00（12:00-14:00休息）", "Mo-Su 08:00-12:00,14:00-18:00", ("sun 11:00",), ("sun 12:30",)),
    ("8:00-18:00，12:00-14:00为午休时间", "Mo-Su 08:00-12:00,14:00-18:00", ("wed 17:00",), ("wed 13:59",)),
    ("周一至周五 9:00-17:30（午休12:00-13:30）", "Mo-Fr 09:00-12:00,13:30-17:30", ("fri 13:30",),
     ("fri 12:00", "sun 10:00")),
    # weekdays
    ("周一至周五 09:00-18:00", "Mo-Fr 09:00-18:00", ("mon 09:00", "fri 17:00"), ("sat 10:00", "wed 18:00")),
    ("周一到周五 09:00-18:00", "Mo-Fr 09:00-18:00", ("wed 10:00",), ("sun 10:00",)),
    ("星期一至星期五 09:00-18:00", "Mo-Fr 09:00-18:00", ("wed 10:00",), ("sat 10:00",)),
    ("周一~周五 09:00-18:00", "Mo-Fr 09:00-18:00", ("wed 10:00",), ("sat 10:00",)),
    ("周一—周五 09:00-18:00", "Mo-Fr 09:00-18:00", ("wed 10:00",), ("sat 10:00",)),
    ("周一至五 9:00-17:00", "Mo-Fr 09:00-17:00", ("fri 16:00",), ("sat 16:00",)),
    ("9:00-18:00（周一至周五）", "Mo-Fr 09:00-18:00", ("mon 12:00",), ("sun 12:00",)),
    ("周一至周五：9:00-18:00", "Mo-Fr 09:00-18:00", ("mon 12:00",), ("sun 12:00",)),
    ("工作日 8:30-17:30", "Mo-Fr 08:30-17:30", ("wed 08:30",), ("sat 09:00",)),
    ("周一至周六", "Mo-Sa", ("sat 03:00", "mon 23:00"), ("sun 12:00",)),
    ("周一至周五 24小时", "Mo-Fr", ("wed 03:00",), ("sat 03:00",)),
    ("周六、周日 10:00-16:00", "Sa,Su 10:00-16:00", ("sun 10:00",), ("wed 12:00", "sat 16:00")),
    ("双休日 10:00-16:00", "Sa,Su 10:00-16:00", ("sat 12:00",), ("fri 12:00",)),
    ("周五至周一 10:00-22:00", "Mo,Fr-Su 10:00-22:00", ("mon 12:00", "fri 12:00"), ("wed 12:00",)),
    ("除周日外 8:00-18:00", "Mo-Sa 08:00-18:00", ("sat 12:00",), ("sun 12:00",)),
    ("除周日外每天 8:00-18:00", "Mo-Sa 08:00-18:00", ("mon 12:00",), ("sun 09:00",)),
    # weekdays and weekends apart
    ("工作日 9:00-17:00, 周末 10:00-16:00", "Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00", ("wed 09:30", "sat 15:00"),
     ("wed 17:30", "sun 09:30")),
    ("周一至周五 09:00-18:00，周末休息", "Mo-Fr 09:00-18:00; Sa,Su off", ("fri 17:00",), ("sat 10:00", "sun 10:00")),
    ("Mo-Fr 9:00-18:00，周末休息", "Mo-Fr 09:00-18:00; Sa,Su off", ("mon 10:00",), ("sun 10:00",)),
    ("周一至周五 9:00—17:00；周六、日 9:00—12:00", "Mo-Fr 09:00-17:00; Sa,Su 09:00-12:00", ("sat 11:00",),
     ("sat 13:00",)),
    ("周六日休息", "Sa,Su off", (), ("sat 12:00",)),
    # closed days
    ("每天8:00-20:00，周一休息", "Mo-Su 08:00-20:00; Mo off", ("wed 12:00",), ("mon 12:00",)),
    ("每天9:00-17:00，周一闭馆", "Mo-Su 09:00-17:00; Mo off", ("sun 12:00",), ("mon 12:00",)),
    ("周二至周日 9:00-17:00，逢周一闭馆", "Tu-Su 09:00-17:00; Mo off", ("sun 16:00",), ("mon 10:00",)),
    ("每周一休息，其余9:00-17:00", "Mo off; Tu-Su 09:00-17:00", ("wed 09:00",), ("mon 09:00",)),
    # public holidays
    ("节假日休息", "PH off", (), ("ph 12:00",)),
    ("周一至周五 9:00-18:00，节假日休息", "Mo-Fr 09:00-18:00; PH off", ("wed 12:00",), ("ph 12:00", "sat 12:00")),
    ("周一至周五 9:00-17:00，法定节假日除外", "Mo-Fr 09:00-17:00; PH off", ("wed 10:00",), ("ph 10:00",)),
    ("周末及节假日休息", "Sa,Su,PH off", (), ("sun 12:00", "ph 12:00")),
    ("24小时，节假日休息", "24/7; PH off", ("wed 03:00",), ("ph 03:00",)),
    ("每天 8:00-20:00，法定节假日正常开放", "Mo-Su 08:00-20:00", ("ph 12:00",), ("ph 21:00",)),
    ("全天开放，节假日不休", "24/7", ("ph 02:00",), ()),
    ("上午：8:00-12:00 下午：14:00-18:00", "Mo-Su 08:00-12:00,14:00-18:00", ("sun 08:00",), ("sun 12:00",)),
    ("周一至周五 9:00-17:00 节假日另行通知", 'Mo-Fr 09:00-17:00; PH unknown "不定时"', ("wed 09:00",), ("ph 10:00",)),
    ("每天 9:00-17:00，周三下午休息", "Mo-Su 09:00-17:00; We 12:00-24:00 off", ("wed 11:00", "thu 16:00"),
     ("wed 12:00", "wed 16:00")),
    ("周六上午 8:30-11:30", "Sa 08:30-11:30", ("sat 11:00",), ("sat 14:00",)),
    ("周一至周五 09:00-18:00，节假日正常开放", "Mo-Fr 09:00-18:00; PH 09:00-18:00", ("ph 10:00",), ("sat 10:00",)),
    ("周一至周五 9:00-18:00，节假日不休息", "Mo-Fr 09:00-18:00; PH 09:00-18:00", ("ph 17:00",), ("ph 19:00",)),
    ("每天（含节假日）8:00-20:00", "Mo-Su 08:00-20:00", ("ph 08:00",), ("ph 07:00",)),
    ("24小时开放（含节假日）", "24/7", ("ph 03:00",), ()),
    ("09:00-17:00（周一至周五），09:00-12:00（周六）", "Mo-Fr 09:00-17:00; Sa 09:00-12:00", ("sat 11:00",),
     ("sat 13:00", "sun 10:00")),
    ("周一至周五，9:00-17:00，周六，9:00-12:00", "Mo-Fr 09:00-17:00; Sa 09:00-12:00", ("fri 16:00",), ("sat 12:30",)),
    ("上午9点-下午5点（周一至周五）", "Mo-Fr 09:00-17:00", ("fri 16:59",), ("sat 10:00",)),
    ("周一、三、五 9:00-17:00", "Mo,We,Fr 09:00-17:00", ("fri 10:00",), ("thu 10:00",)),
    ("周一至日 8:00-20:00", "Mo-Su 08:00-20:00", ("sun 08:00",), ("sun 07:00",)),
    ("除周一、周二外 9:00-17:00", "We-Su 09:00-17:00", ("wed 09:00",), ("mon 09:00",)),
    ("周一至周五 9:00-18:00，周六 9:00-12:00，其余时间休息", "Mo-Fr 09:00-18:00; Sa 09:00-12:00; Su off",
     ("sat 09:00",), ("sun 10:00",)),
    ("周一至周五8:00-17:00，周六8:00-12:00，周日及节假日休息", "Mo-Fr 08:00-17:00; Sa 08:00-12:00; Su,PH off",
     ("mon 08:00",), ("ph 09:00", "sun 09:00")),
    ("周一至周五：早8：30—晚5：30", "Mo-Fr 08:30-17:30", ("wed 17:29",), ("wed 17:31",)),
    ("8:00-12:00 14:00-18:00（周六、日休息）", "Mo-Su 08:00-12:00,14:00-18:00; Sa,Su off", ("fri 17:00",),
     ("sat 09:00",)),
    ("周一至周五9:00-17:00（节假日除外）", "Mo-Fr 09:00-17:00; PH off", ("wed 10:00",), ("ph 10:00",)),
    ("工作日：8:30-12:00，14:00-17:30", "Mo-Fr 08:30-12:00,14:00-17:30", ("mon 08:30",), ("mon 12:30",)),
    ("周二至周日 9:00-17:00（周一闭馆，节假日照常开放）", "Tu-Su 09:00-17:00; Mo off; PH 09:00-17:00",
     ("ph 10:00", "sun 10:00"), ("mon 10:00",)),
    ("周一至周五 9:00-18:00 周六、周日及法定节假日 10:00-16:00", "Mo-Fr 09:00-18:00; Sa,Su,PH 10:00-16:00",
     ("ph 15:00", "sun 15:00"), ("ph 17:00",)),
    ("夏季（5月1日-9月30日）：8:00-21:00；冬季（10月1日-4月30日）：9:00-17:00",
     "May 01-Sep 30 08:00-21:00; Oct 01-Apr 30 09:00-17:00", ("jul 20:00", "jan 09:00"), ("jan 18:00",)),
    # months and seasons
    ("夏季(5月-9月) 8:00-21:00 冬季 9:00-17:00", "May-Sep 08:00-21:00; Oct-Apr 09:00-17:00",
     ("jul 20:30", "jan 09:00"), ("jan 20:30", "jul 07:30")),
    ("夏季(5月-9月) 8:00-21:00；冬季(10月-次年4月) 9:00-17:00", "May-Sep 08:00-21:00; Oct-Apr 09:00-17:00",
     ("oct 16:00",), ("oct 18:00",)),
    ("5-9月 8:00-21:00", "May-Sep 08:00-21:00", ("jul 08:00",), ("jan 12:00",)),
    ("7月、10月 8:00-22:00", "Jul,Oct 08:00-22:00", ("jul 21:00", "oct 21:00"), ("jan 12:00",)),
    ("7月至10月 周一至周五 8:00-22:00，周末 9:00-12:00", "Jul-Oct Mo-Fr 08:00-22:00; Jul-Oct Sa,Su 09:00-12:00",
     ("jul 21:00",), ("jan 12:00", "sat 13:00")),
    ("5月1日至9月30日 8:00-21:00", "May 01-Sep 30 08:00-21:00", ("jul 12:00",), ("oct 12:00",)),
    # closed, and hours not fixed
    ("暂停开放", "off", (), ("wed 12:00",)),
    ("停止营业", "off", (), ("sun 12:00",)),
    ("不定时", 'unknown "不定时"', (), ("wed 12:00",)),
    ("周一至周五 9:00-18:00，周一 12:00-14:00 休息", "Mo-Fr 09:00-18:00; Mo 12:00-14:00 off",
     ("mon 11:00", "tue 13:00"), ("mon 13:00",)),
    ("每天 17:00-2:00", "Mo-Su 17:00-02:00", ("thu 01:00",), ("wed 16:00",)),
    ("周一至周五 9:00-18:00，周末不定时", 'Mo-Fr 09:00-18:00; Sa,Su unknown "不定时"', ("wed 12:00",), ("sat 12:00",)),
]


@pytest.mark.parametrize(("written", "rule", "open_at", "closed_at"), TABLE, ids=[t[0] for t in TABLE])
def test_a_written_pattern_reads_to_its_rule(written, rule, open_at, closed_at):
    assert check_hours(written) == rule
    assert opening_hours.validate(rule)
    for when in open_at:
        assert is_open(rule, at(when)), when
    for when in closed_at:
        assert not is_open(rule, at(when)), when


@pytest.mark.parametrize("rule", sorted({t[1] for t in TABLE}))
def test_the_rule_said_in_chinese_reads_back_to_the_same_rule(rule):
    said = hours_zh(rule)
    assert said != rule and not re.search("[A-Za-z]", said), said  # Chinese, no OSM words left
    assert "  " not in said and not re.search(r"(?<!\d)0日", said) and said == said.strip(), said
    assert check_hours(said) == rule


def test_the_table_holds_enough_real_patterns():
    assert len({t[0] for t in TABLE}) == len(TABLE) >= 40


# (OSM rule, said in Chinese): the issue's own examples and common rules written by hand
SAID = [
    ("Mo-Su 07:00-23:00", "每天 07:00–23:00"),
    ("Mo-Fr 09:00-18:00; Sa,Su off", "周一至周五 09:00–18:00；周末休息"),
    ("24/7", "24小时开放"),
    ("Mo-Fr 09:00-18:00; Sa,Su 10:00-16:00; PH off", "周一至周五 09:00–18:00；周末 10:00–16:00；节假日休息"),
    ("Mo-Fr 08:00-12:00,14:00-18:00", "周一至周五 08:00–12:00、14:00–18:00"),
    ("Mo,We,Fr 10:00-16:00", "周一、周三、周五 10:00–16:00"),
    ("Tu-Su 09:00-17:00; Mo off", "周二至周日 09:00–17:00；周一休息"),
    ("Mo-Su 18:00-02:00", "每天 18:00–次日 02:00"),
    ("Mo-Su 18:00-26:00", "每天 18:00–次日 02:00"),
    ("Jul-Aug 08:00-22:00", "7月至8月 08:00–22:00"),
    ("Su,PH off", "周日、节假日休息"),
    ("closed", "暂停开放"),
    ("08:00-20:00", "每天 08:00–20:00"),
    ("Mo-Sa", "周一至周六 全天"),
    ("Mo-Su 00:00-24:00", "24小时开放"),
    ("Mo 12:00-14:00 off", "周一 12:00–14:00 休息"),
    ('Sa,Su 10:00-16:00 unknown "不定时"', "周末 10:00–16:00 不定时"),
    ("Mo-Fr 09:00-18:00 open", "周一至周五 09:00–18:00"),
]


# every half hour of a week in June, of National Day and of a day in January
SAMPLE = [at(f"{day} 00:00") + timedelta(minutes=30 * k) for day in ("mon", "ph", "jan") for k in range(48 * 7)]


@pytest.mark.parametrize(("rule", "said"), SAID)
def test_common_rules_are_said_in_chinese(rule, said):
    assert hours_zh(rule) == said
    back = check_hours(said)  # the same hours (the same rule where it was in the canonical form already)
    assert [is_open(back, t) for t in SAMPLE] == [is_open(rule, t) for t in SAMPLE]


@pytest.mark.parametrize("rule", ["sunrise-sunset", 'Mo-Fr 09:00-18:00 || "by appointment"',
                                  "week 01-10 Mo 09:00-12:00", "Mo-Fr 09:00-18:00 open \"call first\"",
                                  "Mo[1] 10:00-12:00", "easter off"])
def test_a_rule_beyond_the_common_forms_is_said_as_it_is(rule):
    assert opening_hours.validate(rule)
    assert hours_zh(rule) == rule


@pytest.mark.parametrize("rule", ["Mo-Fr 08:00-20:00", "  Mo-Fr 9:00-18:00  ", "24/7", "Mo-Su 00:00-24:00",
                                  "sunrise-sunset", "8:00-20:00", 'Mo-Fr 09:00-18:00 || "by appointment"'])
def test_an_osm_rule_is_kept_as_written(rule):
    assert check_hours(rule) == rule.strip()


# (text, the piece named in the message)
UNREADABLE = [
    ("随缘", "随缘"),
    ("看心情 8:00-20:00", "看心情"),
    ("9:00", "9:00"),
    ("周一至周五 25:00-26:00", "25:00"),
    ("周一至周五 8:00-5:30", "8:00"),  # 17:30 or the next morning? (8:00-5:30 alone is a valid OSM rule, kept)
    ("每天 12:00-2:00", "12:00"),  # noon to 2 at night, or 12:00-14:00? (from 17:00 on it runs past midnight)
    ("not hours", "not"),
    ("always", "always"),
    ("夏季 8:00-21:00 冬季 9:00-17:00", "季节"),
    ("中午休息 12:00-14:00", "休息时段"),
    ("每天 8:00-18:00，中午休息 19:00-20:00", "19:00-20:00"),
    ("13月 8:00-20:00", "13月"),
    ("周一至周五 9:00-17:00，周六上午", "上午"),
    ("周一至", "至"),
    ("", "内容为空"),
]


@pytest.mark.parametrize(("written", "piece"), UNREADABLE)
def test_unreadable_hours_are_named_in_one_line_with_an_example(written, piece):
    with pytest.raises(ValueError) as info:
        check_hours(written)
    message = str(info.value)
    assert "\n" not in message and len(message.splitlines()) == 1
    assert piece in message
    zh, _, en = message.partition(" / ")
    assert "可写作" in zh and "write e.g." in en  # Chinese first, English beside, each with an example
    assert "expected" not in message and "-->" not in message  # no parser dump


def test_hours_not_fixed_are_stored_as_unknown_and_never_count_as_open():
    rule = check_hours("不定时")
    assert rule == 'unknown "不定时"'
    now = hours_now(rule, at("wed 12:00"))
    assert now is not None and now.unknown and not now.open_now
    assert now.said_zh() == "不定时 · 请先电话确认"
    assert hours_zh(rule) == "不定时"


# ---- what the rider's page shows -------------------------------------------------------------------------------------
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("rule", "when", "zh", "en"), [
    ("Mo-Su 08:00-20:00", "wed 10:00", "营业至 20:00", "open until 20:00"),
    ("Mo-Su 08:00-20:00", "wed 21:00", "已关闭 · 明天 08:00 开放", "closed · opens tomorrow 08:00"),
    ("Mo-Su 08:00-20:00", "wed 06:00", "已关闭 · 08:00 开放", "closed · opens 08:00"),
    ("24/7", "sun 03:00", "24小时营业", "open 24 hours"),
    ("Mo-Su 20:00-02:00", "wed 23:00", "营业至 次日 02:00", "open until tomorrow 02:00"),
    ("Mo-Fr 09:00-18:00; Sa,Su off", "fri 19:00", "已关闭 · 周一 09:00 开放", "closed · opens Mon 09:00"),
    ("Mo-Fr 08:00-12:00,14:00-18:00", "wed 12:30", "已关闭 · 14:00 开放", "closed · opens 14:00"),
    ("May-Sep 08:00-21:00", "oct 12:00", "已关闭 · 5月1日 08:00 开放", "closed · opens 01 May 08:00"),
    ("Mo-Fr 09:00-18:00; PH off", "ph 10:00", "已关闭 · 明天 09:00 开放", "closed · opens tomorrow 09:00"),
    ("off", "wed 12:00", "已关闭", "closed"),
])
def test_the_state_now_and_the_next_change(rule, when, zh, en):
    now = hours_now(rule, at(when))
    assert now is not None
    assert (now.said_zh(), now.said_en()) == (zh, en)
    assert now.open_now == is_open(rule, at(when))
    for t in (now.closes_at, now.opens_at):
        assert t is None or (t.tzinfo is not None and t.utcoffset() == timedelta(hours=8) and t > now.at)


def test_the_state_at_an_instant_in_utc_is_read_in_local_time():
    # 2025-06-04 12:30 UTC is 20:30 in Beijing: closed, opening at 08:00 the next morning, Beijing time
    now = hours_now("Mo-Su 08:00-20:00", datetime(2025, 6, 4, 12, 30, tzinfo=UTC))
    assert now is not None and not now.open_now
    assert now.opens_at == datetime(2025, 6, 5, 8, 0, tzinfo=SHANGHAI)
    assert now.opens_at.isoformat() == "2025-06-05T08:00:00+08:00"
    assert hours_now(None, datetime(2025, 6, 4, tzinfo=UTC)) is None
    assert hours_now("not hours", datetime(2025, 6, 4, tzinfo=UTC)) is None


def test_the_page_words_for_an_opening_after_tomorrow():
    assert status_zh(False, None, datetime(2025, 6, 6, 9), datetime(2025, 6, 4, 20)) == "已关闭 · 后天 09:00 开放"


# ---- properties ------------------------------------------------------------------------------------------------------
HOURS_ALPHABET = ("周一二三四五六日天至到-~—、，,;；:：0123456789点半时早晚上下午凌晨次月全24小时休息闭馆"
                  "除外节假日工作末夏冬季()（）开放正常不定 　MoTuWeFrSaSuPHoffx7×/其余午")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40) | st.text(alphabet=HOURS_ALPHABET, max_size=40))
def test_any_text_is_read_to_a_rule_or_refused_in_one_line(written):
    try:
        rule = check_hours(written)
    except ValueError as exc:  # any other exception fails the test
        assert len(str(exc).splitlines()) == 1
        return
    assert opening_hours.validate(rule)
    said = hours_zh(rule)
    if said == rule:  # a rule beyond the common forms, said as it is
        return
    if rule != written.strip():  # read from Chinese: the rule said in Chinese reads back to the same rule
        assert check_hours(said) == rule
    else:  # an OSM rule kept as written: said in Chinese, it reads back to the same hours
        back = check_hours(said)
        assert [is_open(back, t) for t in SAMPLE[::7]] == [is_open(rule, t) for t in SAMPLE[::7]]


DAY_PHRASES = {"每天": "Mo-Su", "周一至周五": "Mo-Fr", "工作日": "Mo-Fr", "周末": "Sa,Su", "周六、周日": "Sa,Su",
               "周二至周日": "Tu-Su", "星期一至星期六": "Mo-Sa", "周一": "Mo", "周三至周五": "We-Fr"}
DASHES = ["-", "—", "~", "～", "至", "到", "–"]
WEEKDAY_OF = {"Mo": 0, "Tu": 1, "We": 2, "Th": 3, "Fr": 4, "Sa": 5, "Su": 6}


def _days_of(osm: str) -> set[int]:
    days: set[int] = set()
    for part in osm.split(","):
        a, _, b = part.partition("-")
        days |= set(range(WEEKDAY_OF[a], WEEKDAY_OF[b or a] + 1))
    return days


@settings(max_examples=300, deadline=None)
@given(phrase=st.sampled_from(sorted(DAY_PHRASES)), dash=st.sampled_from(DASHES),
       start=st.integers(0, 22 * 60), length=st.integers(15, 12 * 60), zero_pad=st.booleans(),
       wide=st.booleans(), probe=st.integers(0, 7 * 24 * 60 - 1))
def test_generated_weekly_hours_open_exactly_when_written(phrase, dash, start, length, zero_pad, wide, probe):
    start = start // 5 * 5
    end = min(start + length // 5 * 5, 24 * 60 - 5)
    if end <= start:
        return
    clock = "{:02d}:{:02d}" if zero_pad else "{}:{:02d}"
    written = f"{phrase} {clock.format(*divmod(start, 60))}{dash}{clock.format(*divmod(end, 60))}"
    if wide:  # full-width digits and colon, as typed with a Chinese input method
        written = written.translate(str.maketrans("0123456789:", "０１２３４５６７８９："))
    rule = check_hours(written)
    expected = f"{DAY_PHRASES[phrase]} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    assert rule == expected
    assert check_hours(hours_zh(rule)) == rule
    # an independent oracle: open on a written day between start and end
    instant = at("mon 00:00") + timedelta(minutes=probe)
    minute = instant.hour * 60 + instant.minute
    assert is_open(rule, instant) == (instant.weekday() in _days_of(DAY_PHRASES[phrase]) and start <= minute < end)


ZH_DAY = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


@settings(max_examples=300, deadline=None)
@given(phrase=st.sampled_from(sorted(DAY_PHRASES)), cuts=st.lists(st.integers(1, 47), min_size=4, max_size=4,
                                                                  unique=True),
       sep=st.sampled_from(["、", "，", "; ", " ", "和", " / "]), closed=st.integers(0, 6),
       off_word=st.sampled_from(["休息", "闭馆", "不开放", "闭站"]), probe=st.integers(0, 7 * 24 * 2 - 1))
def test_generated_two_periods_and_a_closed_day_open_exactly_when_written(phrase, cuts, sep, closed, off_word, probe):
    a, b, c, d = (k * 30 for k in sorted(cuts))  # two periods apart, on the half hour
    written = f"{phrase} {_clock(a)}-{_clock(b)}{sep}{_clock(c)}-{_clock(d)}，{ZH_DAY[closed]}{off_word}"
    rule = check_hours(written)
    assert check_hours(hours_zh(rule)) == rule
    instant = at("mon 00:00") + timedelta(minutes=30 * probe)
    minute = instant.hour * 60 + instant.minute
    expected = (instant.weekday() in _days_of(DAY_PHRASES[phrase]) and instant.weekday() != closed
                and (a <= minute < b or c <= minute < d))
    assert is_open(rule, instant) == expected, (written, rule, instant)


def test_reading_is_cached():
    rule_from_zh.cache_clear()
    assert rule_from_zh("周一至周五 09:00-18:00，周末休息") == rule_from_zh("周一至周五 09:00-18:00，周末休息")
    assert rule_from_zh.cache_info().hits == 1


# ---- the importer stores the rule ------------------------------------------------------------------------------------
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status\n"


def test_an_import_stores_the_rule_of_chinese_hours_and_names_what_it_cannot_read(engine, wudaokou, tmp_path: Path):
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "H1,驿站一,small,116.3201,40.0023,,,,,\"周一至周五 9:00-18:00，周末休息\",,,\n"
                             "H2,驿站二,small,116.3202,40.0024,,,,,全天,,,\n"
                             "H3,驿站三,small,116.3203,40.0025,,,,,Mo-Fr 08:00-20:00,,,\n", encoding="utf-8")
    import_stations(engine, good)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT external_id, opening_hours FROM stations ORDER BY external_id")).all())
    assert stored == {"H1": "Mo-Fr 09:00-18:00; Sa,Su off", "H2": "24/7", "H3": "Mo-Fr 08:00-20:00"}

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "H4,驿站四,small,116.3204,40.0026,,,,,看心情营业,,,\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, bad)
    [problem] = info.value.problems
    assert problem.field == "opening_hours"
    assert "看心情" in str(problem.expected) + str(problem.value)
