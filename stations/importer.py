"""Checking the rows of a station registry file (read by ``stations.columns``) into validated records.

Every bad row is reported (row number, field, value, what was expected in English and Chinese, and the nearest
accepted word where there is one); nothing is stored unless all rows are good, and the refusal lists each distinct
bad value once with its rows (``errors.ImportRejected``). Coded values are read through ``stations.vocab`` (the words
clerks write: 大站, 急救药箱, 正常运营, 五星, ★★★); 承办单位 holds a host type or an organisation's name
(``host_name``, its type read from it); phone numbers are kept as written, their spacing made plain (``phone_of``);
hours are stored as the OSM rule ``check_hours`` returns, the text as written beside it when it differs.
``check_coord_system`` catches a file whose coordinates are in another system than declared (GCJ-02 pasted
from Amap into a WGS 84 file) by comparing it with the stations already stored. The lengths of text fields are
those of the ``stations`` table's columns (``LIMITS``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import String

from yizhan.db.models import Station
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.geo.coords import COORD_SYSTEMS, GEOD, from_wgs84, to_wgs84
from yizhan.stations import vocab
from yizhan.stations.columns import COLUMNS, REQUIRED, frame_from_file, sheets_read
from yizhan.stations.hours import check_hours

OPTIONAL = ("host_name", "phone", "opening_hours_text")
"""Columns read when the file has them (承办单位名称, 联系电话, 开放时间说明)."""
AMENITY_SPLIT = re.compile(r"[;；,，、|/／\n]")
STORED_AS = {"external_id": "id", "opening_hours_text": "opening_hours"}
"""The file's field of a ``stations`` column, where the names differ (``host_name`` is the file's ``host`` when
承办单位 held the name)."""


def _column_limits() -> dict[str, int]:
    """Length limits of the text columns of ``stations``, characters, by column: its ``String(n)`` columns."""
    return {c.name: int(c.type.length) for c in Station.__table__.columns
            if isinstance(c.type, String) and c.type.length}


LIMITS = _column_limits()
"""Most characters each text column of ``stations`` holds, by column (``external_id``, ``name``, ...)."""
Contains = Callable[[np.ndarray, np.ndarray], np.ndarray]
CHINA = (73.0, 18.0, 135.5, 54.0)  # west, south, east, north
COORD_LABELS = {"wgs84": "WGS 84 (GPS)", "gcj02": "GCJ-02 (Amap, Tencent)", "bd09": "BD-09 (Baidu)"}
COORD_LABELS_ZH = {"wgs84": "WGS 84（GPS）", "gcj02": "GCJ-02（高德、腾讯）", "bd09": "BD-09（百度）"}
# A row "sits at" another system's position of its stored station when within this distance of it, metres.
# GCJ-02 differs from WGS 84 by 100-700 m in China (BD-09 by about 1.1-1.4 km), so a genuine move lands this close
# to that one point only by a rare coincidence, while a point copied from a map app lands within a metre or two.
OFFSET_TOLERANCE_M = 10.0
# Two systems are told apart at a point only where they differ by at least this much, metres (outside China the
# GCJ-02 formula is the identity).
MIN_SEPARATION_M = 50.0
"""Geodesic metres on the WGS 84 ellipsoid."""
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass
class StationRecord:
    """A checked station: codes from the vocabulary, WGS 84 lon/lat in degrees."""

    external_id: str
    name: str
    kind: str
    lon: float
    lat: float
    host: str | None = None
    address: str | None = None
    township: str | None = None
    amenities: list[str] = field(default_factory=list)
    opening_hours: str | None = None
    seats: int | None = None
    stars: int | None = None
    status: str = "active"
    host_name: str | None = None
    """The host as written (中国石化五道口加油站); ``host`` is its type code."""
    phone: str | None = None
    opening_hours_text: str | None = None
    """The hours as written, when that was not the stored OSM rule (``opening_hours``): 周一至周五 09:00-18:00."""


def _number(value: str) -> float | None:
    """A plain decimal number (``116.32``, ``-3``, ``1e2``) as a float; None for anything else, NaN and infinity
    spelled out included (a number too large for a float becomes infinity: the callers refuse non-finite ones)."""
    return float(value) if _DECIMAL.fullmatch(value) else None


def _numbers(values: pd.Series) -> np.ndarray:
    """``_number`` of every value, NaN where there is none."""
    ok = values.str.fullmatch(_DECIMAL).fillna(False).to_numpy(bool)
    out = np.full(len(values), np.nan)
    if ok.any():
        out[ok] = pd.to_numeric(values[ok]).to_numpy(float)
    return out



def unknown_coord(coord: str) -> InvalidInput:
    """The refusal of a coordinate system that is none of ``COORD_SYSTEMS``, naming them."""
    systems = ", ".join(COORD_SYSTEMS)
    return InvalidInput(f"坐标系 coord={coord!r}：可用 {systems} / coord={coord!r}: expected one of {systems}")

AddProblem = Callable[..., None]
"""``add(field, value, expected, expected_zh=None, closest=None)``: records one problem of the row being checked."""
STARS_EXPECTED = "1 to 5 stars (五星, 3星, 3, ★★★); 0 or blank for unrated"
STARS_EXPECTED_ZH = "一星至五星（如 五星、3星、3、★★★）；未评星写 0 或留空"
PHONE_DIGITS = (5, 20)
"""The fewest and most digits of a phone number (a short service number, a landline with area code and extension)."""
PHONE_EXPECTED = ("a phone number of 5 to 20 digits: 010-62345678, (010)62345678, 138 0013 8000, 400-123-4567, "
                  "010-62345678 转 123")
PHONE_EXPECTED_ZH = ("5 到 20 位数字的电话号码，如 010-62345678、(010)62345678、138 0013 8000、400-123-4567、"
                     "010-62345678 转 123")
_PHONE_GAPS = re.compile(r"\s*([-()])\s*")


def phone_of(text: str) -> str:
    """A phone number as written, its spacing made plain: full-width digits and brackets as ASCII, runs of spaces as
    one, no spaces around ``-`` and brackets (``（010） 6234 5678`` → ``(010)6234 5678``; ``138 0013 8000`` and
    ``010-62345678 转 123`` stay). Raises ValueError unless it has ``PHONE_DIGITS`` digits."""
    t = _PHONE_GAPS.sub(r"\1", " ".join(unicodedata.normalize("NFKC", text).split()))
    digits = sum(c in "0123456789" for c in t)
    if not PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1]:
        raise ValueError(f"not a phone number: {text!r} has {digits} digits")
    return t


def _unknown_word(field: str, column: str, value: str, add: AddProblem) -> None:
    """Report ``value`` of column ``column`` as no word of vocabulary ``field``, with the words accepted and the
    nearest one."""
    code = vocab.closest(field, value)
    add(column, value, f"expected {vocab.choices(field, lang='en')}", f"可用 {vocab.choices(field)}",
        vocab.short(field, code) if code else None)


def _host(text: str, name: str, add: AddProblem) -> tuple[str | None, str | None]:
    """The host type code and the host's name of 承办单位 ``text`` and 承办单位名称 ``name`` (either may be blank).

    A ``text`` that is a host type (code, label or synonym) is the type; any other text is the organisation's name,
    kept as written, its type read from it (``vocab.host_type_of_name``); a ``name`` column is kept as given and
    gives the type when ``text`` is blank. A ``text`` written like a code (petrol_statoin) is reported, not taken
    for a name."""
    host = vocab.canonical("host", text) if text else None
    host_name = None
    if text and host is None:
        if vocab.looks_like_code(text):
            code = vocab.closest("host", text)
            add("host", text, f"a host type ({vocab.choices('host', lang='en')}) or the host's name",
                f"承办单位类型（{vocab.choices('host')}）或单位名称", vocab.short("host", code) if code else None)
            return None, None
        host, host_name = vocab.host_type_of_name(text), text
    if name:
        host_name = name
        if host is None:
            host = vocab.host_type_of_name(name)
    return host, host_name


def _amenities(text: str, add: AddProblem) -> list[str]:
    """The amenity codes of a 服务设施 cell (words separated by ``AMENITY_SPLIT``, or by spaces when every spaced
    part is a word), each once, in the order written; unknown words are reported with the nearest one."""
    codes: list[str] = []
    for a in filter(None, (x.strip() for x in AMENITY_SPLIT.split(text))):
        code = vocab.canonical("amenity", a)
        found = [code] if code else [vocab.canonical("amenity", w) for w in a.split()]
        if len(found) > 1 and all(found):
            pass
        elif code is None:
            near = vocab.closest("amenity", a)
            add("amenities", a, f"known amenities separated by ';' or '、': {vocab.choices('amenity', lang='en')}",
                f"可用 {vocab.choices('amenity')}，多项用 、或 ; 分隔", vocab.short("amenity", near) if near else None)
            continue
        codes += [c for c in found if c and c not in codes]
    return codes


def _hours_expected(message: str) -> tuple[str, str | None]:
    """The English and Chinese expectations of hours ``check_hours`` refused with ``message``: a message in Chinese
    then English (``开放时间 'x'：... / opening hours 'x': ...``) split in two without its repeated head (the group's
    line names the field and the value), any other as it is."""
    both = _HOURS_MESSAGE.fullmatch(message)
    if both:
        return both["en"], both["zh"]
    if any("\u4e00" <= ch <= "\u9fff" for ch in message):
        return message, None
    return message, "OpenStreetMap 开放时间写法，如 Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00 或 24/7"


_HOURS_MESSAGE = re.compile(r"开放时间 '.*?'[：:]?\s*(?P<zh>.+?) / opening hours '.*?':?\s*(?P<en>.+)", re.DOTALL)


def records_from_frame(df: pd.DataFrame, *, source: str, coord: str = "wgs84",
                       area_contains: Contains | None = None, area_name: str | None = None) -> list[StationRecord]:
    """Check every row; return records (lon/lat converted to WGS 84) or raise ImportRejected listing all problems.

    ``area_contains(lon, lat) -> bool array`` (arrays of WGS 84 degrees) rejects points outside the study area.
    The columns of ``OPTIONAL`` (``host_name``, ``phone``) are read when ``df`` has them.
    """
    if coord not in COORD_SYSTEMS:
        raise unknown_coord(coord)
    problems: list[RowProblem] = []
    records: list[StationRecord] = []
    seen: dict[str, int] = {}
    # coordinates are converted and tested against the area for all rows at once; rows with bad numbers
    # get NaN here and are reported in the loop
    xs, ys = _numbers(df["lon"]), _numbers(df["lat"])
    usable = np.isfinite(xs) & np.isfinite(ys) & (np.abs(xs) <= 180) & (np.abs(ys) <= 90)
    wx, wy = np.full(len(df), np.nan), np.full(len(df), np.nan)
    if usable.any():
        wx[usable], wy[usable] = to_wgs84(xs[usable], ys[usable], coord)
    inside = np.ones(len(df), dtype=bool)
    if area_contains is not None and usable.any():
        inside[usable] = area_contains(wx[usable], wy[usable])
    several_sheets = len(sheets_read(df)) > 1 or ("_sheet" in df.columns and df["_sheet"].nunique() > 1)
    for i, r in enumerate(df.to_dict("records")):
        n = int(r["_row"])
        bad = len(problems)
        sheet = f" (sheet {r['_sheet']})" if several_sheets else ""
        sheet_zh = f" (工作表 {r['_sheet']})" if several_sheets else ""

        def add(fieldname: str, value: object, expected: str, expected_zh: str | None = None,
                closest: str | None = None, row: int = n, sheet: str = sheet, sheet_zh: str = sheet_zh) -> None:
            problems.append(RowProblem(row, fieldname + sheet, value, expected, expected_zh,
                                       vocab.FIELD_LABELS.get(fieldname, fieldname) + sheet_zh, closest))

        for c in REQUIRED:
            if not r[c]:
                add(c, r[c], "a value is required", "必填")
        for c in dict.fromkeys((*COLUMNS, *OPTIONAL)):
            if "\x00" in r.get(c, ""):
                add(c, r[c].replace("\x00", "\\0"), "text without NUL (\\0) characters", "不含 NUL (\\0) 字符的文本")
        if r["id"]:
            if r["id"] in seen:
                first = seen[r["id"]]
                add("id", r["id"], f"a unique id (also used in row {first})", f"唯一的编号（第 {first} 行已用）")
            else:
                seen[r["id"]] = n
        kind = vocab.canonical("kind", r["kind"]) if r["kind"] else None
        if r["kind"] and kind is None:
            _unknown_word("kind", "kind", r["kind"], add)
        host, host_name = _host(r["host"], r.get("host_name", ""), add)
        amenities = _amenities(r["amenities"], add)
        hours = hours_text = None
        given_text = r.get("opening_hours_text", "").strip()  # an export's 开放时间说明, beside its rule
        written_hours = r["opening_hours"].strip() or given_text
        if len(written_hours) > LIMITS["opening_hours_text"]:
            hours_text = written_hours  # too long to keep, whatever it says: named by the length check below
        elif written_hours:
            try:
                hours = check_hours(written_hours)
            except ValueError as exc:
                add("opening_hours", r["opening_hours"], *_hours_expected(str(exc)))
            else:
                text_kept = given_text or written_hours
                hours_text = text_kept if text_kept != hours else None
        seats = stars = None
        if r["seats"]:
            x = _number(vocab.seats_text(r["seats"]))
            if x is None or not x.is_integer() or not 0 <= x <= 10000:
                add("seats", r["seats"], "a whole number from 0 to 10000", "0 到 10000 的整数")
            else:
                seats = int(x)
        if r["stars"]:
            try:
                stars = vocab.stars_of(r["stars"])
            except ValueError:
                add("stars", r["stars"], STARS_EXPECTED, STARS_EXPECTED_ZH)
        status = "active"
        if r["status"]:
            status = vocab.canonical("status", r["status"]) or ""
            if not status:
                _unknown_word("status", "status", r["status"], add)
        phone = None
        if r.get("phone"):
            try:
                phone = phone_of(r["phone"])
            except ValueError:
                add("phone", r["phone"], PHONE_EXPECTED, PHONE_EXPECTED_ZH)
        stored = {"external_id": r["id"], "name": r["name"], "kind": kind, "host": host, "address": r["address"],
                  "township": r["township"], "opening_hours": hours, "status": status, "host_name": host_name,
                  "phone": phone, "opening_hours_text": hours_text}
        written = {**STORED_AS, "host_name": "host_name" if r.get("host_name") else "host",
                   "opening_hours_text": "opening_hours_text" if given_text else "opening_hours"}
        too_long: set[str] = set()
        for column, limit in LIMITS.items():
            text = stored[column] or ""
            where = written.get(column, column)
            if len(text) > limit and where not in too_long:  # the rule or the text of the hours: one problem
                too_long.add(where)
                add(where, text[:40] + "...", f"at most {limit} characters (this one has {len(text)}); shorten it",
                    f"最多 {limit} 个字符（此处 {len(text)} 个），请缩短")
        lon, lat = _number(r["lon"]) if r["lon"] else None, _number(r["lat"]) if r["lat"] else None
        coords_ok = True
        for name, v, lo, hi in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
            if r[name] and (v is None or not math.isfinite(v)):
                add(name, r[name], "a finite number in decimal degrees", "十进制度数的有限数字")
                coords_ok = False
            elif v is not None and not lo <= v <= hi:
                swapped = name == "lat" and lon is not None and -90 <= lon <= 90 and -180 <= v <= 180
                add(name, r[name], f"{lo} to {hi} degrees" + ("; lon and lat look swapped" if swapped else ""),
                    f"{lo} 到 {hi} 度" + ("；经纬度似乎填反了" if swapped else ""))
                coords_ok = False
        if coords_ok and lon is not None and lat is not None:
            w, s, e, nn = CHINA
            if w <= lat <= e and s <= lon <= nn and not (w <= lon <= e and s <= lat <= nn):
                add("lon", r["lon"], f"a longitude; ({lon}, {lat}) looks like lat, lon swapped",
                    f"经度；({lon}, {lat}) 像是纬度、经度填反了")
                coords_ok = False
        if len(problems) > bad or lon is None or lat is None or not coords_ok:
            continue
        wlon_f, wlat_f = float(wx[i]), float(wy[i])
        if not (math.isfinite(wlon_f) and math.isfinite(wlat_f)):  # a conversion that left the plane
            add("lon/lat", f"{lon}, {lat}", f"a point that {COORD_LABELS[coord]} can convert to WGS 84",
                f"能由 {COORD_LABELS[coord]} 换算到 WGS 84 的点")
            continue
        if not inside[i]:
            add("lon/lat", f"{lon}, {lat}", f"a point inside area {area_name!r}" +
                ("" if coord != "wgs84" else " (if these are GCJ-02 or BD-09 coordinates, pass --coord)"),
                f"区域 {area_name!r} 内的点"
                + ("" if coord != "wgs84" else "（如为 GCJ-02 或 BD-09 坐标，请加 --coord）"))
            continue
        records.append(StationRecord(r["id"], r["name"], kind or "small", wlon_f, wlat_f, host, r["address"] or None,
                                     r["township"] or None, amenities, hours, seats, stars, status, host_name, phone,
                                     hours_text))
    if problems:
        raise ImportRejected(source, problems)
    return records


def stations_from_file(path: Path | str, *, coord: str = "wgs84", area_contains: Contains | None = None,
                       area_name: str | None = None, data: bytes | None = None, filename: str | None = None,
                       ignore_unknown_columns: bool = False) -> list[StationRecord]:
    """Read and check a registry file (CSV/XLSX/GeoJSON; UTF-8 or GBK). See ``records_from_frame``."""
    df = frame_from_file(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns)
    return records_from_frame(df, source=Path(filename or str(path)).name, coord=coord,
                              area_contains=area_contains, area_name=area_name)


@dataclass
class CoordSystemMismatch(ImportRejected):
    """The file's coordinates fit another coordinate system than the declared one; nothing was stored.

    ``declared`` and ``likely`` are names from ``COORD_SYSTEMS``; ``problems`` lists the rows that fit ``likely``.
    """

    declared: str = "wgs84"
    likely: str = "gcj02"
    headline: str = ""

    def __str__(self) -> str:
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        return f"{self.source}: {self.headline}\n{shown}{more}"


_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def frame_positions(df: pd.DataFrame, coord: str) -> pd.DataFrame:
    """Rows of a ``frame_from_file`` frame with an id and usable lon/lat, as WGS 84 read from ``coord``.

    Returns columns ``id, row, lon, lat`` (degrees); the first row of a repeated id only. The row checks of
    ``records_from_frame`` report the rest.
    """
    if coord not in COORD_SYSTEMS:
        raise unknown_coord(coord)
    xs, ys = _numbers(df["lon"]), _numbers(df["lat"])
    ok = (np.isfinite(xs) & np.isfinite(ys) & (np.abs(xs) <= 180) & (np.abs(ys) <= 90)
          & (df["id"] != "").to_numpy() & ~df["id"].duplicated().to_numpy()
          & ~df["id"].str.contains("\x00", regex=False).to_numpy(bool))  # refused by the row checks
    wx, wy = to_wgs84(xs[ok], ys[ok], coord)
    return pd.DataFrame({"id": df["id"].to_numpy()[ok], "row": df["_row"].to_numpy()[ok], "lon": wx, "lat": wy})


def check_coord_system(points: pd.DataFrame, stored: dict[str, tuple[float, float]], *, declared: str,
                       source: str) -> None:
    """Reject a file whose points sit where the stored stations lie in another coordinate system.

    ``points`` (from ``frame_positions``: ``id, row, lon, lat``) hold WGS 84 degrees converted from the file's
    ``declared`` system; ``stored`` maps an external id to the stored WGS 84 (lon, lat) of that station in the same
    area. For each point with a stored station, the file's raw coordinates are read as each other system of
    ``COORD_SYSTEMS``: a row *fits* a system when, read that way, it lies within ``OFFSET_TOLERANCE_M`` of its
    stored station while the declared reading does not (the systems differ by at least ``MIN_SEPARATION_M``
    there). A genuine move lands within metres of that one point by coincidence only; a coordinate copied from a
    map app of the other system lands on it.

    Raises ``CoordSystemMismatch`` when at least one row fits the most-fitted system and such rows are at least
    as many as the rows that moved otherwise; the message advises ``--coord <system>`` when they are at least half
    the stored stations of the file, else names them as single rows to convert. Does nothing for a file without
    stored stations (new ids only): the stored stations are the only reference this check trusts. The street
    graph is no such reference: in a city a random point lies about as close to a street or footway as a real
    station does (median distance about 17 m in Wudaokou), so snapping distances cannot tell a 500 m shift.
    """
    if declared not in COORD_SYSTEMS:
        raise unknown_coord(declared)
    matched = points[points["id"].isin(list(stored))]
    if matched.empty:
        return
    ids = matched["id"].tolist()
    rows = matched["row"].astype(int).tolist()
    wlon = matched["lon"].to_numpy(float)
    wlat = matched["lat"].to_numpy(float)
    slon = np.array([stored[i][0] for i in ids])
    slat = np.array([stored[i][1] for i in ids])
    raw_lon, raw_lat = from_wgs84(wlon, wlat, declared)
    _, _, moved = GEOD.inv(slon, slat, wlon, wlat)
    fits: dict[str, np.ndarray] = {}
    for system in COORD_SYSTEMS:
        if system == declared:
            continue
        alon, alat = to_wgs84(raw_lon, raw_lat, system)
        _, _, residual = GEOD.inv(slon, slat, alon, alat)
        _, _, separation = GEOD.inv(wlon, wlat, alon, alat)
        fits[system] = (residual <= OFFSET_TOLERANCE_M) & (separation >= MIN_SEPARATION_M)
    fit_any = np.logical_or.reduce(list(fits.values()))
    likely = max(fits, key=lambda k: int(fits[k].sum()))
    n_fit = int(fits[likely].sum())
    moved_otherwise = int(((moved > OFFSET_TOLERANCE_M) & ~fit_any).sum())
    if n_fit == 0 or n_fit < moved_otherwise:
        return
    azimuth, _, _ = GEOD.inv(slon, slat, wlon, wlat)
    problems = []
    zh_declared, zh_likely = COORD_LABELS_ZH[declared], COORD_LABELS_ZH[likely]
    for i in np.flatnonzero(fits[likely]):
        way = _COMPASS[int(((azimuth[i] % 360) + 22.5) // 45) % 8]
        problems.append(RowProblem(
            rows[i], "lon/lat", f"{raw_lon[i]:.6f}, {raw_lat[i]:.6f}",
            f"{COORD_LABELS[declared]} coordinates; read as {COORD_LABELS[likely]} this is stored station "
            f"{ids[i]!r} (as given it moved {moved[i]:.0f} m {way}, exactly the offset between the two)",
            f"{zh_declared} 坐标；按 {zh_likely} 读即已存储的站点 {ids[i]!r}（按所给坐标它移动了 {moved[i]:.0f} 米，"
            f"正好是两种坐标系之间的偏移）", "经纬度"))
    named = ", ".join(str(p.row) for p in problems[:5]) + (", ..." if len(problems) > 5 else "")
    override = "if these stations really moved, import with --trust-coords (API: trust_coords=true)"
    override_zh = "如这些站点确实移动了，请加 --trust-coords 导入（API: trust_coords=true）"
    if 2 * n_fit >= len(matched):
        headline_zh = (f"坐标看起来是 {zh_likely}，不是 {zh_declared}：已存储的 {len(matched)} 个站点中有 {n_fit} 个"
                       f"恰好移动了两种坐标系之间的偏移（第 {named} 行），未导入任何数据。"
                       f"请用 --coord {likely} 重新导入（API 表单字段 coord={likely}）；{override_zh}")
        headline = (f"the coordinates look like {COORD_LABELS[likely]}, not {COORD_LABELS[declared]}: {n_fit} of "
                    f"{len(matched)} stations already stored moved by exactly the offset between the two systems "
                    f"(rows {named}); nothing was imported. Re-import with --coord {likely} "
                    f"(API form field coord={likely}); {override}")
    else:
        headline_zh = (f"第 {named} 行（{n_fit} 行）的坐标看起来是 {zh_declared} 文件中的 {zh_likely} 坐标：每行都恰好"
                       f"偏离已存储的站点两种坐标系之间的偏移，而其余 {len(matched) - n_fit} 个已存储站点没有，"
                       f"未导入任何数据。请把这些行换算为 {zh_declared}（或用 --coord 给出整个文件的坐标系）；"
                       f"{override_zh}")
        headline = (f"{n_fit} row(s) ({named}) look like {COORD_LABELS[likely]} coordinates in a "
                    f"{COORD_LABELS[declared]} file: each moved by exactly the offset between the two systems from "
                    f"its stored station, while the other {len(matched) - n_fit} stored stations did not; nothing "
                    f"was imported. Convert these rows to {COORD_LABELS[declared]} (or give the whole file in one "
                    f"system with --coord); {override}")
    raise CoordSystemMismatch(source, problems, declared=declared, likely=likely,
                              headline=f"{headline_zh} / {headline}")
