"""Opening hours in Chinese, both ways: the text clerks and shop signs write ⇄ the OpenStreetMap ``opening_hours`` rule.

``rule_from_zh`` reads 全天 / 每天 8:00-20:00 / 周一至周五 09:00-18:00，周末 10:00-16:00 / 08:00-12:00、14:30-18:00 /
早八晚八 / 20:00-次日2:00 / 周一闭馆 / 中午休息 12:00-14:00 / 夏季(5月-9月) 8:00-21:00 冬季 9:00-17:00 / 节假日休息 /
暂停开放 / 不定时 (and mixed text such as ``Mo-Fr 9:00-18:00，周末休息``) into the canonical rule
(``Mo-Fr 09:00-18:00; Sa,Su 10:00-16:00; PH off``); ``hours_zh`` says a rule in Chinese
(``周一至周五 09:00–18:00；周末 10:00–16:00；节假日休息``), and reading that back gives the same rule.

How a text is read: it is normalised (full-width digits and punctuation to ASCII, lower case), cut into tokens by
the word tables below (the longest match wins) and a few token patterns (a clock time, a weekday, a month), and the
tokens are grouped into clauses, one per OSM rule (days, times, open/off). Times are local wall-clock times, hours
and minutes; months are calendar months. Text that cannot be read raises ``ValueError`` with one line, in Chinese
and English, naming the piece not understood and an example that would be.

Decisions worth knowing:

- 不定时 (no fixed hours) is stored as ``unknown "不定时"``, not refused: it is the truth about the station, a clerk
  cannot correct it, and refusing it would hold back a whole sheet. The rule never counts as open.
- 工作日 is Monday to Friday (make-up working days are not modelled); 周末 and 双休日 are Saturday and Sunday;
  节假日 is the OSM ``PH`` (public holidays), 节假日正常开放 repeats the usual hours on public holidays.
- A weekday list with no time (周一至周六) is open all day on those days, as in OSM (``Mo-Sa``).
- A month range (夏季(5月-9月)) applies to the clauses after it up to the next one; a closed-days clause (周一闭馆)
  and a holiday clause without months of their own apply all year.
- A break (中午休息 12:00-14:00, or 12:00-14:00 休息 after the hours) is cut out of the hours it falls in.
- A season needs its months (夏季(5月-9月)); the other season may take the months left (冬季). 夏季 and 冬季 with no
  months at all are refused: the switch-over dates differ from place to place.
- A period ending before it starts runs past midnight when 次日 or 凌晨 is written, or when it starts at 17:00 or
  later (22:00-6:00); 8:00-5:30 is refused as unclear (17:30, or the next morning?).
- Days written after the hours (9:00-18:00（周一至周五）) are those hours' days; 其余 is the weekdays no other clause
  names. Two clauses with the same days and months add up (周一至周五 8:00-12:00；周一至周五 14:00-18:00).

``status_zh`` and ``status_en`` say a station's state for the rider's page (营业至 20:00 / 已关闭 · 明天 08:00 开放);
``stations.hours.hours_now`` works the state out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
"""OSM weekday codes, Monday first."""
ALL_DAYS = frozenset(WEEKDAYS)
DAY_ZH = dict(zip(WEEKDAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""OSM month codes, January first."""
DAY_MINUTES = 24 * 60
EVENING = 17 * 60
"""A period ending before it starts runs past midnight when it starts at this time or later (minutes after midnight),
22:00-6:00; an earlier start needs 次日 or 凌晨 written (8:00-5:30 may mean 17:30)."""
MAX_TEXT = 300
"""Longest hours text read, characters (the stored column's length)."""
EXAMPLE_ZH = "周一至周五 09:00-18:00，周末 10:00-16:00，节假日休息"
EXAMPLE_OSM = "Mo-Fr 09:00-18:00; Sa,Su 10:00-16:00; PH off"
UNKNOWN_NOTE = "不定时"
"""The comment of the rule stored for hours that are not fixed (``unknown "不定时"``)."""

# ---- the word tables: what a word means, by kind ------------------------------------------------------------------
# Day sets: a word that names days (weekdays, and PH for public holidays).
DAY_WORDS: dict[str, frozenset[str]] = {
    **{w: ALL_DAYS for w in ("每天", "每日", "天天", "日日", "全周", "每周", "全年无休", "全年", "常年", "一周七天",
                             "每周七天", "7天", "七天", "365天", "全年365天", "周一至周日", "mo-su", "daily")},
    **{w: frozenset(WEEKDAYS[:5]) for w in ("工作日", "周一至周五", "mo-fr", "weekdays")},
    **{w: frozenset({"Sa", "Su"}) for w in ("周末", "双休日", "周六日", "周六周日", "周六、日", "礼拜六日", "sa-su",
                                             "weekends", "weekend")},
    **{w: frozenset({"PH"}) for w in ("节假日", "法定节假日", "法定假日", "国定假日", "公众假期", "假日", "节日",
                                      "节庆日", "ph")},
    **{code.lower(): frozenset({code}) for code in WEEKDAYS},
    "日": frozenset({"Su"}),  # in 周六、日 and 周一至日 (5月1日, 节假日, 次日 are longer words)
    **{name: frozenset({code}) for code, names in zip(WEEKDAYS, (
        ("mon", "monday"), ("tue", "tuesday"), ("wed", "wednesday"), ("thu", "thursday"), ("fri", "friday"),
        ("sat", "saturday"), ("sun", "sunday")), strict=True) for name in names},
}
# Whole-day states and markers.
ALL_DAY_WORDS = ("全天", "全天候", "24小时", "24h", "24/7", "7×24小时", "7x24小时", "7*24小时", "7×24", "7x24",
                 "7*24", "24小时营业", "24小时开放", "全天开放", "全天24小时", "24小时不打烊", "昼夜", "通宵")
OFF_WORDS = ("休息", "闭馆", "闭站", "关闭", "关门", "休馆", "不开放", "停业", "歇业", "打烊", "暂停开放", "停止营业",
             "暂停营业", "暂停使用", "停止开放", "停用", "已关闭", "暂停服务", "停止服务", "不营业", "off", "closed")
OPEN_WORDS = ("开放", "营业", "正常开放", "照常开放", "正常营业", "照常营业", "照常", "正常", "不休息", "不休", "无休",
              "open", "开门", "服务", "对外开放")
UNKNOWN_WORDS = ("不定时", "不固定", "时间不定", "时间不固定", "不定期", "视情况而定", "以实际为准", "另行通知",
                 "另行安排", "另行公告", "unknown")
HALF_DAYS: dict[str, tuple[int, int]] = {"上午": (0, 12 * 60), "下午": (12 * 60, 24 * 60)}
"""Half a day, minutes after midnight, in a closure only (周三下午休息: closed on Wednesday from noon)."""
BREAK_WORDS = ("午休", "中午休息", "午间休息", "午休时间", "休息时间", "午餐休息")
EXCEPT_WORDS = ("除", "除了")
EXCEPT_END_WORDS = ("外", "以外", "之外", "除外")
NOISE_WORDS = ("开放时间", "营业时间", "服务时间", "办公时间", "时间", "均", "都", "为", "是", "对外", "期间", "的",
               "次年", "翌年", "每年", "从", "起", "每周的", "含", "包括", "包含", "逢", "自助", "全部", "一律")
REST_WORDS = ("其余", "其他", "其它", "其余时间", "其他时间", "其它时间", "其余日子", "其他日子", "其余时段")
"""The days no other clause names (每周一休息，其余 9:00-17:00)."""
RANGE_WORDS = ("-", "--", "~", "〜", "–", "—", "——", "―", "至", "到", "直到", "一直到", "至次日", "到次日")
JOIN_WORDS = ("、", "和", "及", "与", "以及", "/", "&", "+")
BREAK_SEPARATORS = (",", ";", "。", "\n", "|")
# Seasons: a month range follows in brackets, or comes from the other season (冬季 = the months 夏季 leaves).
SEASON_WORDS = {w: "summer" for w in ("夏季", "夏天", "夏令时", "夏令", "夏秋季", "旺季", "夏季时间")} | \
               {w: "winter" for w in ("冬季", "冬天", "冬令时", "冬令", "冬春季", "淡季", "冬季时间")}
# Day parts before a clock time: how the hour shifts (0 as written, 12 to the afternoon) and whether it is the
# next calendar day.
DAY_PARTS: dict[str, tuple[int, bool]] = {
    **{w: (0, False) for w in ("上午", "早上", "早晨", "清晨", "早", "上午的", "白天", "am")},
    **{w: (12, False) for w in ("下午", "午后", "傍晚", "晚上", "晚间", "晚", "夜间", "夜晚", "夜里", "夜", "pm")},
    **{w: (0, True) for w in ("凌晨", "次日", "次日凌晨", "第二天", "翌日", "隔天", "次晨", "次日早上", "次日早")},
    "中午": (-1, False),  # 中午12点 is noon, 中午1点 is 13:00
}
DAY_PART_STARTS = "早晚上下中凌次夜"
"""A time starting with one of these joins the time before it with no dash between (早八晚八)."""
CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_WEEKDAY = {**dict(zip("一二三四五六日", WEEKDAYS, strict=True)), "天": "Su", "七": "Su",
              **dict(zip("1234567", WEEKDAYS, strict=True))}

# ---- the token patterns ---------------------------------------------------------------------------------------------
_NUM = r"\d{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_PART = "|".join(sorted(map(re.escape, DAY_PARTS), key=len, reverse=True))
PATTERNS: dict[str, re.Pattern[str]] = {
    # 周一, 星期天, 礼拜六, 每周一, 周六日 (a run of weekdays), 周1 (a digit not starting a clock time)
    "weekday": re.compile(r"(?:每)?(?:周|星期|礼拜)(?:([一二三四五六日天]+)|([1-7])(?![\d:.点时]))"),
    # 8:00, 08.30, 8点, 8点半, 八点三十分, 20时, 早8, 晚上8点, 次日2:00, a bare 8 (only inside a range)
    "time": re.compile(rf"(?:(?P<part>{_PART})[\s:]*)?(?P<h>{_NUM})(?:(?P<sep>[:.])(?P<m>\d{{2}})|"
                       rf"(?P<unit>[点时])(?:(?P<half>半)|(?P<m2>{_NUM})分?)?)?"),
    # 5月, 5月1日, 十月 (a month, with its day)
    "month": re.compile(rf"(?P<m>{_NUM})\s*月(?:份)?(?:\s*(?P<d>{_NUM})\s*[日号])?"),
    # 5-9月, 5至9月 (a month range written once)
    "months": re.compile(rf"(?P<a>{_NUM})\s*(?:-|~|–|—|至|到)\s*(?P<b>{_NUM})\s*月(?:份)?"),
    "month_code": re.compile(r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)(?:\s+(\d{1,2})(?!\d|:))?"),
    "space": re.compile(r"[\s()\[\]【】{}〔〕「」『』<>《》:\"'“”‘’!！?？.…*#]+"),
}


def _word_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for kind, words in (("noise", NOISE_WORDS), ("join", JOIN_WORDS), ("sep", BREAK_SEPARATORS),
                        ("range", RANGE_WORDS), ("open", OPEN_WORDS), ("off", OFF_WORDS), ("break", BREAK_WORDS),
                        ("unknown", UNKNOWN_WORDS), ("rest", REST_WORDS), ("except", EXCEPT_WORDS),
                        ("except_end", EXCEPT_END_WORDS), ("allday", ALL_DAY_WORDS), ("halfday", HALF_DAYS),
                        ("days", DAY_WORDS), ("season", SEASON_WORDS)):
        for w in words:
            kinds[w] = kind
    return kinds


WORD_KINDS = _word_kinds()
"""Every word of the tables and its kind (``days``, ``off``, ``range`` ...)."""
_WORDS = re.compile("|".join(sorted(map(re.escape, WORD_KINDS), key=len, reverse=True)))


class HoursNotRead(ValueError):
    """A text that is no opening hours this module can read; the message is one line, Chinese then English."""


def _fail(text: str, zh: str, en: str, example: str = EXAMPLE_ZH) -> HoursNotRead:
    shown = text if len(text) <= 60 else text[:57] + "..."
    line = (f"开放时间 '{shown}'：{zh}，可写作 '{example}' 或 '24小时' / opening hours '{shown}': {en}; "
            f"write e.g. '{example}', '24小时' or the OpenStreetMap rule '{EXAMPLE_OSM}'")
    return HoursNotRead(" ".join(line.split()))  # one line, whatever breaks the text held


@dataclass(frozen=True)
class Token:
    """One piece of an hours text: its kind, the text, and what it means (days, minutes, months)."""

    kind: str
    text: str
    days: frozenset[str] = frozenset()
    minutes: int = 0
    bare: bool = False  # a number with no unit and no day part (8 in 8-20点)
    afternoon: bool = False  # moved to the afternoon by its day part (下午2:00)
    next_day: bool = False
    month: tuple[int, int] = (0, 0)  # (month 1-12, day of month or 0)
    month_to: tuple[int, int] = (0, 0)  # the end of a month range written once (5-9月)
    season: str = ""


def _cn_number(s: str) -> int:
    """``8``, ``08``, ``八``, ``十二``, ``二十三``, ``三十`` as an int; -1 when it is none."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, units = s.partition("十")
        if (tens and tens not in CN_DIGITS) or (units and units not in CN_DIGITS) or len(s) > 3:
            return -1
        return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[units] if units else 0)
    if len(s) == 1 and s in CN_DIGITS:
        return CN_DIGITS[s]
    if len(s) == 2 and s[0] in "零〇" and s[1] in CN_DIGITS:
        return CN_DIGITS[s[1]]
    return -1


def _time_token(text: str, m: re.Match[str]) -> Token:
    hour = _cn_number(m["h"])
    minute = 0
    if m["m"] is not None:
        minute = int(m["m"])
    elif m["half"]:
        minute = 30
    elif m["m2"] is not None:
        minute = _cn_number(m["m2"])
    if not 0 <= hour <= 24 or not 0 <= minute <= 59 or (hour == 24 and minute):
        raise _fail(text, f"时间 '{m[0]}' 不是 0:00 至 24:00 之间的时刻",
                    f"'{m[0]}' is no time of day from 0:00 to 24:00", "每天 08:00-20:00")
    shift, next_day = DAY_PARTS.get((m["part"] or "").lower(), (0, False))
    if shift == -1:  # 中午: noon and just after
        shift = 12 if 1 <= hour <= 3 else 0
    if shift and hour < 12:
        hour += shift
    elif shift and hour == 12 and (m["part"] or "")[:1] in "晚夜":
        hour = 24  # 晚上12点 is midnight
    elif next_day and hour == 12 and m["part"] in ("凌晨", "次日凌晨"):
        hour = 0
    bare = m["part"] is None and m["m"] is None and m["unit"] is None
    return Token("time", m[0], minutes=hour * 60 + minute, bare=bare, next_day=next_day, afternoon=shift == 12)


def _month_token(text: str, month: int, day: int, raw: str) -> tuple[int, int]:
    if not 1 <= month <= 12 or not 0 <= day <= 31:
        raise _fail(text, f"'{raw}' 不是日历上的月份或日期", f"'{raw}' is no month or day of the calendar",
                    "夏季(5月-9月) 08:00-21:00，冬季(10月-4月) 09:00-17:00")
    return month, day


def tokens_of(text: str, *, shown: str = "") -> list[Token]:
    """The tokens of an hours text (already normalised: NFKC, lower case); raises HoursNotRead on a piece not read.

    ``shown`` is the text as written, for the message (``text`` itself when empty).
    """
    shown = shown or text
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        if (m := PATTERNS["space"].match(text, pos)) is not None:
            pos = m.end()
            continue
        candidates = [found for reader in _CANDIDATES if (found := reader(text, pos, shown)) is not None]
        if not candidates:
            end = pos + 1
            while end < len(text) and end - pos < 8 and not _starts_token(text, end):
                end += 1
            piece = text[pos:end].strip()
            raise _fail(shown, f"无法识别 '{piece}'", f"cannot read '{piece}'")
        end, tok = max(candidates, key=lambda c: c[0])  # the longest match; the first listed on a tie
        if isinstance(tok, HoursNotRead):
            raise tok  # shaped like a time or a month, and none (25:00, 13月)
        # an English word must end at a word boundary (``sa`` is not the start of ``same``)
        if tok.text[-1:].isascii() and tok.text[-1:].isalpha() and text[end:end + 1].isascii() and \
                text[end:end + 1].isalpha():
            word = re.match(r"[a-z]+", text[pos:])
            piece = word[0] if word else tok.text
            raise _fail(shown, f"无法识别 '{piece}'", f"cannot read '{piece}'")
        out.append(tok)
        pos = end
    return out


Found = tuple[int, "Token | HoursNotRead"] | None
"""What a reader finds at a position: where the piece ends and its token, or why it is no token."""


def _word_at(text: str, pos: int, shown: str) -> Found:
    if (m := _WORDS.match(text, pos)) is None:
        return None
    return m.end(), Token(WORD_KINDS[m[0]], m[0], days=DAY_WORDS.get(m[0], frozenset()),
                          season=SEASON_WORDS.get(m[0], ""))


def _weekday_at(text: str, pos: int, shown: str) -> Found:
    if (m := PATTERNS["weekday"].match(text, pos)) is None:
        return None
    return m.end(), Token("days", m[0], days=frozenset(CN_WEEKDAY[c] for c in (m[1] or m[2])))


def _month_range_at(text: str, pos: int, shown: str) -> Found:
    if (m := PATTERNS["months"].match(text, pos)) is None:
        return None
    try:
        first = _month_token(shown, _cn_number(m["a"]), 0, m[0])
        last = _month_token(shown, _cn_number(m["b"]), 0, m[0])
    except HoursNotRead as exc:
        return m.end(), exc
    return m.end(), Token("month", m[0], month=first, month_to=last)


def _month_at(text: str, pos: int, shown: str) -> Found:
    if (m := PATTERNS["month"].match(text, pos)) is not None:
        month, day = _cn_number(m["m"]), _cn_number(m["d"]) if m["d"] else 0
    elif (m := PATTERNS["month_code"].match(text, pos)) is not None and not text[m.end():m.end() + 1].isalpha():
        month, day = MONTHS.index(m[1].capitalize()) + 1, int(m[2]) if m[2] else 0
    else:
        return None
    try:
        return m.end(), Token("month", m[0], month=_month_token(shown, month, day, m[0]))
    except HoursNotRead as exc:
        return m.end(), exc


def _time_at(text: str, pos: int, shown: str) -> Found:
    if (m := PATTERNS["time"].match(text, pos)) is None or _cn_number(m["h"]) < 0:
        return None
    try:
        return m.end(), _time_token(shown, m)
    except HoursNotRead as exc:
        return m.end(), exc


_CANDIDATES = (_word_at, _weekday_at, _month_range_at, _month_at, _time_at)
"""The readers tried at each position of a text, in order of preference on a tie; the longest match wins."""


def _starts_token(text: str, pos: int) -> bool:
    return any(p.match(text, pos) for p in (PATTERNS["space"], _WORDS, PATTERNS["weekday"], PATTERNS["time"]))


# ---- clauses: one OSM rule each -------------------------------------------------------------------------------------
MonthRange = tuple[tuple[int, int], tuple[int, int]]
"""((month, day), (month, day)) inclusive; day 0 is the whole month."""
Period = tuple[int, int]
"""(start, end) in minutes after local midnight; end <= start runs past midnight into the next day."""


@dataclass
class Clause:
    """What one rule says: its months, days (None: every day), periods, and open/off/unknown."""

    months: list[MonthRange] | None = None
    own_months: bool = False
    season: str = ""
    days: set[str] | None = None
    except_days: set[str] = field(default_factory=set)
    periods: list[Period] = field(default_factory=list)
    breaks: list[Period] = field(default_factory=list)
    all_day: bool = False
    state: str = ""  # "", "off", "unknown"
    usual: bool = False  # 节假日正常开放: the usual hours on these days
    rest: bool = False  # 其余: the weekdays no other clause names
    half: Period | None = None  # 上午 / 下午 with no time: valid only as a closure (周三下午休息)

    def empty(self) -> bool:
        return not (self.months or self.season or self.days is not None or self.except_days or self.periods
                    or self.breaks or self.all_day or self.state or self.usual or self.rest or self.half)

    def has_time(self) -> bool:
        return bool(self.periods or self.all_day or self.state or self.breaks or self.half)


class _Reader:
    """Groups the tokens of one text into clauses, left to right: one method per kind of token (``days``, ``time``,
    ``off`` ...), each returning how many of the tokens after its own it took (a range's end, 晚八 of 早八晚八)."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = [t for t in tokens if t.kind != "noise"]
        self.clauses: list[Clause] = []
        self.cur = Clause()
        self.at = 0  # the index of the token being read
        self.in_except = False  # between 除 and 外
        self.pending_break = False  # after 午休: the next period is a break
        self.last_days: set[str] = set()  # the days just named (法定节假日除外)
        self.listing = False  # a list of weekdays is being read (周一、三、五)
        self.prev_kind = ""
        self.on: dict[str, Callable[[Token], int]] = {
            "join": lambda t: 0, "rest": self.on_rest, "sep": self.on_sep, "range": self.on_range,
            "except": self.on_except, "except_end": self.on_except_end, "days": self.on_days,
            "month": self.on_month, "season": self.on_season, "time": self.on_time, "allday": self.on_allday,
            "halfday": self.on_halfday, "off": self.on_off, "unknown": self.on_unknown, "break": self.on_break,
            "open": self.on_open}

    def fail(self, zh: str, en: str, example: str = EXAMPLE_ZH) -> HoursNotRead:
        return _fail(self.text, zh, en, example)

    def ahead(self, k: int) -> Token | None:
        """The token ``k`` places after the one being read, if any."""
        j = self.at + k
        return self.tokens[j] if j < len(self.tokens) else None

    def flush(self) -> None:
        """Closes the clause being read and starts the next."""
        if self.cur.half is not None:
            raise self.fail("'上午' 或 '下午' 缺少具体时间", "a morning or afternoon without its hours",
                            "周六上午 8:30-11:30，周三下午休息")
        if not self.cur.empty():
            self.clauses.append(self.cur)
        self.cur = Clause()

    def fresh(self, when: bool) -> Clause:
        """The clause to add to: a new one when ``when``."""
        if when:
            self.flush()
        return self.cur

    def read(self) -> list[Clause]:
        while self.at < len(self.tokens):
            t = self.tokens[self.at]
            taken = self.on[t.kind](t)
            self.pending_break = self.pending_break and t.kind != "time"
            self.listing = t.kind == "days" or (self.listing and t.kind in ("join", "time") and
                                                not self.cur.has_time())
            self.prev_kind = t.kind
            if t.kind != "days":
                self.last_days = set()
            self.at += 1 + taken
        self.flush()
        return self.clauses

    def on_rest(self, t: Token) -> int:
        c = self.fresh(self.cur.has_time() or self.cur.days is not None)
        c.rest = True
        return 0

    def on_sep(self, t: Token) -> int:
        self.in_except = self.pending_break = False
        self.fresh(self.cur.has_time() or self.cur.days is not None)
        return 0

    def on_range(self, t: Token) -> int:
        raise self.fail(f"'{t.text}' 前后缺少时间、星期或月份", f"'{t.text}' joins nothing", "周一至周五 09:00-18:00")

    def on_except(self, t: Token) -> int:
        self.fresh(self.cur.has_time())
        self.in_except = True
        return 0

    def on_except_end(self, t: Token) -> int:
        c = self.cur
        if not self.in_except and self.last_days:  # 法定节假日除外: the days just named are the exception
            c.days = (c.days or set()) - self.last_days or None
            c.except_days |= self.last_days
        self.in_except = False
        return 0

    def on_days(self, t: Token) -> int:
        days, taken = set(t.days), 0
        nxt, after = self.ahead(1), self.ahead(2)
        if nxt is not None and nxt.kind == "range" and after is not None:
            end = self._day_end(after)
            if end is None:
                raise self.fail(f"'{t.text}{nxt.text}' 后面应是星期", f"'{t.text}{nxt.text}' wants a weekday after it",
                                "周一至周五 09:00-18:00")
            days, taken = _day_range(t, end, self), 2
        self._add_days(days)
        return taken

    def _add_days(self, days: set[str] | frozenset[str]) -> None:
        if self.in_except:
            self.cur.except_days |= days
            return
        c = self.fresh(self.cur.has_time())
        c.days = (c.days or set()) | days
        self.last_days = set(days)

    def on_season(self, t: Token) -> int:
        c = self.fresh(self.cur.has_time() or self.cur.days is not None or bool(self.cur.months or self.cur.season))
        c.season = t.season
        return 0

    def on_month(self, t: Token) -> int:
        c = self.fresh(self.cur.has_time() or self.cur.days is not None)
        first, taken = t.month, 0
        last = t.month_to if t.month_to != (0, 0) else t.month
        nxt, after = self.ahead(1), self.ahead(2)
        if t.month_to == (0, 0) and nxt is not None and nxt.kind == "range" and after is not None \
                and after.kind == "month":
            last, taken = (after.month_to if after.month_to != (0, 0) else after.month), 2
        if bool(first[1]) != bool(last[1]):
            raise self.fail(f"月份范围 '{t.text}' 的两端应都写日或都不写日",
                            f"month range '{t.text}' gives a day at one end only", "5月1日至9月30日 08:00-21:00")
        c.months = [*(c.months or []), (first, last)]
        c.own_months = True
        return taken

    def on_time(self, t: Token) -> int:
        hour = t.minutes // 60
        if t.bare and self.prev_kind == "join" and self.listing and 1 <= hour <= 7 and not t.minutes % 60:
            self._add_days(frozenset({WEEKDAYS[hour - 1]}))  # 周一、三、五: a weekday by its number
            return 0
        c = self.fresh(bool(self.cur.state))
        nxt, after = self.ahead(1), self.ahead(2)
        if nxt is not None and nxt.kind == "range" and after is not None and after.kind == "time":
            period, taken = self._period(t, after), 2
        elif nxt is not None and nxt.kind == "time" and not nxt.bare and not t.bare and nxt.text[:1] in DAY_PART_STARTS:
            period, taken = self._period(t, nxt), 1  # 早八晚八: the day part of the end joins them
        else:
            raise self.fail(f"时间 '{t.text}' 缺少开始或结束", f"time '{t.text}' has no start or end",
                            "每天 08:00-20:00")
        if self.pending_break:
            c.breaks.append(period)
        elif period == (0, DAY_MINUTES):
            c.all_day = True
        else:
            c.periods.append(period)
        return taken

    def on_allday(self, t: Token) -> int:
        self.fresh(bool(self.cur.state or self.cur.periods)).all_day = True
        return 0

    def on_halfday(self, t: Token) -> int:
        self.fresh(bool(self.cur.state or self.cur.periods)).half = HALF_DAYS[t.text]
        return 0

    def on_off(self, t: Token) -> int:
        c = self.cur
        if c.half is not None and not c.periods:
            c.periods, c.half, c.state = [c.half], None, "off"  # 周三下午休息
        elif c.periods and (len(c.periods) > 1 or c.days is None) and c.days != {"PH"}:
            c.breaks.append(c.periods.pop())  # 8:00-18:00 12:00-14:00休息, or 12:00-14:00休息 alone
        elif not c.state:
            c.state = "off"
        return 0

    def on_unknown(self, t: Token) -> int:
        self.cur.state = "unknown"
        return 0

    def on_break(self, t: Token) -> int:
        nxt = self.ahead(1)
        if nxt is not None and nxt.kind == "time":
            self.pending_break = True  # 中午休息 12:00-14:00
        elif self.cur.periods:
            self.cur.breaks.append(self.cur.periods.pop())  # 12:00-14:00 为午休时间
        else:
            raise self.fail(f"'{t.text}' 缺少休息的时段", f"'{t.text}' gives no hours of the break",
                            "每天 08:00-18:00，中午休息 12:00-14:00")
        return 0

    def on_open(self, t: Token) -> int:
        c = self.cur
        if c.days is not None and "PH" in c.days and not c.has_time():
            c.usual = True  # 节假日正常开放
        return 0

    def _day_end(self, tok: Token) -> frozenset[str] | None:
        if tok.kind == "days" and len(tok.days) == 1 and "PH" not in tok.days:
            return tok.days
        if tok.kind == "time" and tok.bare and 1 <= tok.minutes // 60 <= 7 and tok.minutes % 60 == 0:
            return frozenset({WEEKDAYS[tok.minutes // 60 - 1]})  # 周一至五
        return None

    def _period(self, start: Token, end: Token) -> Period:
        a, b = start.minutes % DAY_MINUTES, end.minutes  # 24:00-8:00 starts at midnight
        if start.afternoon and not end.next_day and b < a and b + 12 * 60 > a and b < 12 * 60 and \
                not (end.text[:1] in "早上凌" or "次" in end.text):
            b += 12 * 60  # 下午2:00-5:30: the end is in the afternoon too
        if b == a:
            if a == 0:
                return (0, DAY_MINUTES)
            raise self.fail(f"'{start.text}' 至 '{end.text}' 开始和结束相同",
                            f"'{start.text}-{end.text}' starts and ends at the same time", "每天 08:00-20:00")
        if b == 0 and a > 0:
            b = DAY_MINUTES  # 8:00-0:00 closes at midnight
        if b < a and not end.next_day and (b >= 12 * 60 or a < EVENING):
            # past midnight only from an evening start (22:00-6:00) or when written (次日, 凌晨): 8:00-5:30 is unclear
            raise self.fail(f"'{start.text}' 至 '{end.text}' 结束早于开始", f"'{start.text}-{end.text}' ends before it "
                            "starts", "20:00-次日02:00")
        return (a, b)


def _day_range(first: Token, last: frozenset[str], reader: _Reader) -> set[str]:
    """周一至周五, 周五至周一 (round the week end): the days from ``first`` to ``last`` inclusive."""
    if len(first.days) != 1 or "PH" in first.days:
        raise reader.fail(f"'{first.text}' 不能作为星期范围的开头", f"'{first.text}' cannot start a weekday range",
                          "周一至周五 09:00-18:00")
    a = WEEKDAYS.index(next(iter(first.days)))
    b = WEEKDAYS.index(next(iter(last)))
    span = (b - a) % 7
    return {WEEKDAYS[(a + k) % 7] for k in range(span + 1)}


# ---- from clauses to the rule ----------------------------------------------------------------------------------------
def _days_only(c: Clause | None) -> bool:
    return c is not None and c.days is not None and not c.has_time() and not c.months and not c.season \
        and not c.except_days and not c.rest and not c.usual


def _days_after_hours(clauses: list[Clause]) -> list[Clause]:
    """9:00-18:00（周一至周五）: days written after hours with none of their own are those hours' days; holidays
    alone after them (24小时（含节假日）) are added to every day."""
    out: list[Clause] = []
    k = 0
    while k < len(clauses):
        c = clauses[k]
        after = clauses[k + 1] if k + 1 < len(clauses) else None
        before = out[-1] if out else None
        if (c.periods or c.all_day) and c.days is None and not c.state and not c.months and not c.season \
                and after is not None and _days_only(after) and not _days_only(before):
            c.days = set(ALL_DAYS) | (after.days or set()) if after.days == {"PH"} else after.days
            k += 1
        out.append(c)
        k += 1
    return out


def _settle(text: str, clauses: list[Clause]) -> list[Clause]:
    """Joins what belongs together (days with the hours after them, extra periods, breaks, seasons, 除...外)."""
    out: list[Clause] = []
    clauses = _days_after_hours(clauses)
    for c in clauses:
        prev = out[-1] if out else None
        if c.except_days and c.days is None and not c.has_time() and not c.months and out:
            for o in out:  # 法定节假日除外 after the hours: the days excepted are off
                if not o.state:
                    o.days = (o.days if o.days is not None else set(ALL_DAYS)) - c.except_days
            if "PH" in c.except_days:
                out.append(Clause(days={"PH"}, state="off"))
            continue
        if c.except_days:
            ph_off = "PH" in c.except_days
            c.days = (c.days if c.days is not None else set(ALL_DAYS)) - c.except_days
            c.except_days = set()
            if not c.days:
                raise _fail(text, "除去的日子包含了所有日子", "the days excepted leave no day",
                            "除周一外每天 09:00-18:00")
            if ph_off:
                out.append(c)
                out.append(Clause(days={"PH"}, state="off"))
                continue
        only_breaks = c.breaks and not c.periods and not c.all_day and c.days is None and not c.months and not c.state
        if only_breaks:
            opened = [o for o in out if o.periods or o.all_day]
            if not opened:
                raise _fail(text, "休息时段前没有开放时间", "a break comes before any opening hours",
                            "每天 08:00-18:00，中午休息 12:00-14:00")
            for o in opened:
                _cut(text, o, c.breaks)
            continue
        if c.breaks:
            if not c.periods and not c.all_day:
                raise _fail(text, "休息时段前没有开放时间", "a break comes before any opening hours",
                            "每天 08:00-18:00，中午休息 12:00-14:00")
            _cut(text, c, c.breaks)
        if prev is not None and prev.days is not None and not prev.has_time() and not prev.months and not prev.season \
                and (c.periods or c.all_day) and not c.state and not c.months and not c.season:
            c.days = prev.days | (c.days or set()) if c.days is not None else prev.days  # 周一至周五，9:00-17:00
            out[-1] = c
            continue
        if prev is not None and c.periods and c.days is None and not c.months and not c.season and not c.state and \
                not c.all_day and prev.periods and not prev.state:
            prev.periods.extend(c.periods)  # 08:00-12:00；14:00-18:00
            continue
        same = next((o for o in out if o.days == c.days and o.months == c.months and not o.season and not c.season
                     and o.periods and c.periods and not o.state and not c.state), None)
        if same is not None:
            same.periods.extend(c.periods)  # 周一至周五 8:00-12:00；周一至周五 14:00-18:00: both periods
            continue
        if c.usual:
            usual = next((o for o in reversed(out) if (o.periods or o.all_day) and not o.state), None)
            if usual is None:
                raise _fail(text, "'正常开放' 之前没有平日的开放时间", "'open as usual' comes before the usual hours",
                            "周一至周五 09:00-18:00，节假日正常开放")
            if (usual.days is None or usual.days >= ALL_DAYS) and not usual.months:
                continue  # open every day already: holidays too
            c.periods, c.all_day = list(usual.periods), usual.all_day
        out.append(c)
    _rest_days(text, out)
    _seasons(text, out)
    _months_carried(out)
    return out


def _rest_days(text: str, clauses: list[Clause]) -> None:
    """其余 (the other days): the weekdays no other clause names."""
    named = set().union(*(o.days for o in clauses if o.days is not None and not o.rest))
    for o in clauses:
        if o.rest:
            o.days = set(ALL_DAYS) - named
            if not o.days:
                raise _fail(text, "'其余' 之外已写满一周七天", "'the other days' leaves no day",
                            "周一休息，其余 09:00-17:00")


def _months_carried(clauses: list[Clause]) -> None:
    """A month range applies to the opening clauses after it up to the next one; closures and holidays without
    months of their own apply all year."""
    ctx: list[MonthRange] | None = None
    for c in clauses:
        if c.own_months:
            ctx = c.months
        elif ctx and not c.state and not (c.days and "PH" in c.days) and not c.season:
            c.months = ctx


def _seasons(text: str, clauses: list[Clause]) -> None:
    """A season with no months of its own takes the months the other season leaves (冬季 after 夏季(5月-9月))."""
    named = [c for c in clauses if c.season]
    for c in named:
        if c.months:
            continue
        others = [o for o in named if o.season != c.season and o.months]
        whole = [o.months for o in others if o.months and all(f[1] == 0 and t[1] == 0 for f, t in o.months)]
        if len(whole) != 1:
            raise _fail(text, "季节缺少月份", "a season without its months",
                        "夏季(5月-9月) 08:00-21:00，冬季(10月-4月) 09:00-17:00")
        taken = set()
        for (fm, _), (tm, _) in whole[0]:
            taken |= {(fm - 1 + k) % 12 + 1 for k in range((tm - fm) % 12 + 1)}
        left = {m for m in range(1, 13) if m not in taken}
        if not left:
            raise _fail(text, "季节缺少月份", "a season without its months",
                        "夏季(5月-9月) 08:00-21:00，冬季(10月-4月) 09:00-17:00")
        c.months = []
        for first in sorted(m for m in left if (m - 2) % 12 + 1 not in left):  # each run of months left, in turn
            last = first
            while last % 12 + 1 in left and last % 12 + 1 != first:
                last = last % 12 + 1
            c.months.append(((first, 0), (last, 0)))
        c.own_months = True


def _cut(text: str, c: Clause, breaks: list[Period]) -> None:
    """Cuts each break out of the period of ``c`` that holds it."""
    periods = [(0, DAY_MINUTES)] if c.all_day else list(c.periods)
    for b0, b1 in breaks:
        for k, (p0, p1) in enumerate(periods):
            if p0 < p1 and p0 < b0 < b1 < p1:
                periods[k:k + 1] = [(p0, b0), (b1, p1)]
                break
        else:
            raise _fail(text, f"休息时段 {_hhmm(b0)}-{_hhmm(b1)} 不在开放时间之内",
                        f"the break {_hhmm(b0)}-{_hhmm(b1)} is not inside the opening hours",
                        "每天 08:00-18:00，中午休息 12:00-14:00")
    c.periods, c.all_day, c.breaks = periods, False, []


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_osm(days: set[str]) -> str:
    """``{Mo..Fr}`` -> ``Mo-Fr``; ``{Sa, Su, PH}`` -> ``Sa,Su,PH``: runs of three or more days as a range."""
    parts: list[str] = []
    k = 0
    while k < 7:
        if WEEKDAYS[k] not in days:
            k += 1
            continue
        j = k
        while j + 1 < 7 and WEEKDAYS[j + 1] in days:
            j += 1
        if j - k >= 2:
            parts.append(f"{WEEKDAYS[k]}-{WEEKDAYS[j]}")
        else:
            parts.extend(WEEKDAYS[k:j + 1])
        k = j + 1
    if "PH" in days:
        parts.append("PH")
    return ",".join(parts)


def _months_osm(months: list[MonthRange]) -> str:
    def one(md: tuple[int, int]) -> str:
        return MONTHS[md[0] - 1] + (f" {md[1]:02d}" if md[1] else "")

    return ",".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in months)


def _merged(periods: list[Period]) -> list[Period]:
    """Periods in order, overlapping or touching ones as one (9:00-12:00 written twice is 9:00-12:00 once); a period
    past midnight is kept as it is."""
    out: list[Period] = []
    for a, b in sorted(set(periods)):
        if out and out[-1][0] < out[-1][1] and a < b and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _rule_of(c: Clause) -> str:
    if c.days is not None and c.days >= ALL_DAYS:
        c.days = set(ALL_DAYS)  # every day and holidays too (每天（含节假日）) is every day
    months = _months_osm(c.months) if c.months else ""
    every = c.days is None or c.days == set(ALL_DAYS)
    times = "" if c.all_day or not c.periods else ",".join(f"{_hhmm(a)}-{_hhmm(b)}" for a, b in _merged(c.periods))
    if c.state:
        state = "off" if c.state == "off" else f'unknown "{UNKNOWN_NOTE}"'
        days = "" if c.days is None else _days_osm(c.days)
        return " ".join(filter(None, (months, days, times, state)))
    if (c.all_day or not c.periods) and every and not months:
        return "24/7"
    days = _days_osm(c.days) if c.days is not None else "" if months or not c.periods else "Mo-Su"
    return " ".join(filter(None, (months, days, times)))


@lru_cache(maxsize=4096)
def rule_from_zh(text: str) -> str:
    """The canonical OSM ``opening_hours`` rule of an hours text in Chinese (or mixed with OSM words).

    ``周一至周五 9:00-18:00，周末休息`` -> ``Mo-Fr 09:00-18:00; Sa,Su off``. Times are local wall-clock times. Raises
    ``HoursNotRead`` (a ``ValueError``) with one line naming what could not be read and an example that would be.
    """
    original = text.strip()
    if len(original) > MAX_TEXT:
        raise _fail(original, f"超过 {MAX_TEXT} 个字符", f"longer than {MAX_TEXT} characters")
    norm = unicodedata.normalize("NFKC", original).lower()
    if not norm.strip():
        raise _fail(original, "内容为空", "nothing written")
    clauses = _settle(original, _Reader(original, tokens_of(norm, shown=original)).read())
    if not clauses:
        raise _fail(original, "没有写出日子或时间", "names no days or times")
    rules: list[str] = []
    for c in clauses:
        if c.days is not None and not c.days:
            continue
        rule = _rule_of(c)
        if rule not in rules:
            rules.append(rule)
    if not rules:
        raise _fail(original, "没有写出日子或时间", "names no days or times")
    return "; ".join(rules)


# ---- the reverse: a rule said in Chinese ----------------------------------------------------------------------------
_MON = "|".join(MONTHS)
_DAY = "|".join([*WEEKDAYS, "PH"])
_MDAY = rf"(?:{_MON})(?: \d{{1,2}}(?![\d:]))?"
_RULE = re.compile(
    rf"(?P<always>24/7)?\s*"
    rf"(?P<months>{_MDAY}(?:-{_MDAY})?(?:,{_MDAY}(?:-{_MDAY})?)*)?\s*"
    rf"(?P<days>(?:(?:{_DAY})(?:-(?:{_DAY}))?)(?:,(?:{_DAY})(?:-(?:{_DAY}))?)*)?\s*"
    r"(?P<times>\d{1,2}:\d{2}-\d{1,2}:\d{2}(?:,\d{1,2}:\d{2}-\d{1,2}:\d{2})*)?\s*"
    r"(?P<state>open|off|closed|unknown)?\s*(?:\"(?P<note>[^\"]*)\")?")


def _days_of_osm(spec: str) -> set[str] | None:
    days: set[str] = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        if a == "PH" or b == "PH":
            if b:
                return None
            days.add("PH")
            continue
        i, j = WEEKDAYS.index(a), WEEKDAYS.index(b or a)
        days |= {WEEKDAYS[(i + k) % 7] for k in range((j - i) % 7 + 1)}
    return days


def days_zh(days: set[str]) -> str:
    """A day set in Chinese: 每天, 周一至周五, 周末, 周一、周三至周日, 周末、节假日."""
    parts: list[str] = []
    week = days - {"PH"}
    if week == ALL_DAYS:
        parts.append("每天")
    elif week == {"Sa", "Su"}:
        parts.append("周末")
    elif week:
        osm = _days_osm(week)
        for piece in osm.split(","):
            a, _, b = piece.partition("-")
            parts.append(f"{DAY_ZH[a]}至{DAY_ZH[b]}" if b else DAY_ZH[a])
    if "PH" in days:
        parts.append("节假日")
    return "、".join(parts)


def _months_zh(spec: str) -> str:
    def one(md: str) -> str:
        name, _, day = md.partition(" ")
        return f"{MONTHS.index(name) + 1}月" + (f"{int(day)}日" if day else "")

    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.append(f"{one(a)}至{one(b)}" if b else one(a))
    return "、".join(out)


def _times_zh(spec: str) -> str | None:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        ha, ma = map(int, a.split(":"))
        hb, mb = map(int, b.split(":"))
        start, end = ha * 60 + ma, hb * 60 + mb
        if start >= DAY_MINUTES or end > 2 * DAY_MINUTES or ma > 59 or mb > 59:
            return None
        if (start, end) == (0, DAY_MINUTES):
            out.append("全天")
        elif end > DAY_MINUTES or end <= start:
            out.append(f"{_hhmm(start)}–次日 {_hhmm(end % DAY_MINUTES)}")
        else:
            out.append(f"{_hhmm(start)}–{_hhmm(end)}")
    return "、".join(out)


def _rule_zh(rule: str) -> str | None:
    m = _RULE.fullmatch(rule.strip())
    if m is None or not any(m.group("always", "months", "days", "times", "state")):
        return None
    state = m["state"] or ""
    if m["always"] and (m["months"] or m["days"] or m["times"]):
        return None
    if m["note"] is not None and state != "unknown":
        return None
    months = _months_zh(m["months"]) if m["months"] else ""
    days_set = _days_of_osm(m["days"]) if m["days"] else None
    if m["days"] and days_set is None:
        return None
    days = days_zh(days_set) if days_set else ""
    times = _times_zh(m["times"]) if m["times"] else ""
    if times is None:
        return None
    if state in ("off", "closed"):
        if not (months or days or times):
            return "暂停开放"
        return f"{' '.join(filter(None, (months, days, times)))}{' ' if times else ''}休息"
    if state == "unknown":
        note = m["note"] or UNKNOWN_NOTE
        if note != UNKNOWN_NOTE:
            return None
        return " ".join(filter(None, (months, days, times, note)))
    if m["always"] or not (months or days or m["times"]):
        return "24小时开放"
    times = times or "全天"
    if times == "全天" and days_set is not None and days_set >= ALL_DAYS and not months:
        return "24小时开放"  # Mo-Su 00:00-24:00
    if not days and not months:
        days = "每天"
    return " ".join(filter(None, (months, days, times)))


@lru_cache(maxsize=4096)
def hours_zh(rule: str) -> str:
    """An OSM ``opening_hours`` rule said in Chinese.

    ``Mo-Fr 09:00-18:00; Sa,Su off`` -> ``周一至周五 09:00–18:00；周末休息``.

    Covers every rule ``rule_from_zh`` writes and the common OSM forms (24/7, weekday ranges and lists, several
    periods, past midnight, off, PH, months); reading the answer back with ``rule_from_zh`` gives the rule again.
    A rule beyond that (fallback ``||``, sunrise, week numbers, comments ...) is returned as it is.
    """
    text = rule.strip()
    if "||" in text or not text:
        return text
    said = [_rule_zh(part) for part in text.split(";") if part.strip()]
    if not said or any(s is None for s in said):
        return text
    return "；".join(s for s in said if s)


# ---- a station's state now, in words -------------------------------------------------------------------------------
def when_zh(t: datetime, at: datetime) -> str:
    """The day of ``t`` seen from ``at`` (both local wall-clock), as a prefix of its time: "" today, 明天, 后天,
    周一 within a week, else 12月9日 (each with a trailing space)."""
    days = (t.date() - at.date()).days
    if days == 0:
        return ""
    if days == 1:
        return "明天 "
    if days == 2:
        return "后天 "
    if days < 7:
        return f"{DAY_ZH[WEEKDAYS[t.weekday()]]} "
    return f"{t.month}月{t.day}日 "


def when_en(t: datetime, at: datetime) -> str:
    """``when_zh`` in English: "" today, tomorrow, Mon within a week, else 09 Dec."""
    days = (t.date() - at.date()).days
    if days == 0:
        return ""
    if days == 1:
        return "tomorrow "
    if days < 7:
        return t.strftime("%a ")
    return t.strftime("%d %b ")


def status_zh(open_now: bool, closes_at: datetime | None, opens_at: datetime | None, at: datetime, *,
              unknown: bool = False, note: str = "") -> str:
    """A station's state at ``at`` for the rider's page: 营业至 20:00 / 24小时营业 / 已关闭 · 明天 08:00 开放 /
    不定时 · 请先电话确认 (``unknown``, with the rule's ``note``).

    All datetimes local wall-clock time in the station's zone (naive or all aware alike).
    """
    if unknown:
        return f"{note or UNKNOWN_NOTE} · 请先电话确认"
    if open_now:
        if closes_at is None:
            return "24小时营业"
        when = "次日 " if (closes_at.date() - at.date()).days == 1 else when_zh(closes_at, at)
        return f"营业至 {when}{closes_at:%H:%M}"
    if opens_at is None:
        return "已关闭"
    return f"已关闭 · {when_zh(opens_at, at)}{opens_at:%H:%M} 开放"


def status_en(open_now: bool, closes_at: datetime | None, opens_at: datetime | None, at: datetime, *,
              unknown: bool = False) -> str:
    """``status_zh`` in English: open until 20:00 / open 24 hours / closed · opens tomorrow 08:00 / hours vary."""
    if unknown:
        return "hours vary · call ahead"
    if open_now:
        return "open 24 hours" if closes_at is None else f"open until {when_en(closes_at, at)}{closes_at:%H:%M}"
    if opens_at is None:
        return "closed"
    return f"closed · opens {when_en(opens_at, at)}{opens_at:%H:%M}"
