"""Reading and checking station registry files (CSV, XLSX, GeoJSON) into validated records.

Columns (English or the Chinese headers of a union's spreadsheet):
``id 编号, name 名称, kind 类型, lon 经度, lat 纬度`` required; ``host 承办单位, address 地址, township 街道,
amenities 设施 (separated by ;), opening_hours 开放时间, seats 座位数, stars 星级, status 状态`` optional.
Every bad row is reported (row number, field, value, what was expected); nothing is stored unless all
rows are good. A column the importer does not know is an error unless the caller allows extra columns, and
``check_coord_system`` catches a file whose coordinates are in another system than declared (GCJ-02 pasted
from Amap into a WGS 84 file) by comparing it with the stations already stored. The files themselves are read by
``stations.tables`` (separators, encodings, title rows, sheets, size limits); the lengths of text fields are those
of the ``stations`` table's columns (``LIMITS``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Geod
from sqlalchemy import String

from yizhan.db.models import Station
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.geo.coords import COORD_SYSTEMS, from_wgs84, to_wgs84
from yizhan.stations import vocab
from yizhan.stations.cells import QUOTE, restore_text
from yizhan.stations.hours import check_hours
from yizhan.stations.tables import Cancelled, ImportLimits, Part, read_file

COLUMNS = ["id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities", "opening_hours",
           "seats", "stars", "status"]
REQUIRED = ["id", "name", "kind", "lon", "lat"]
CHINESE_HEADERS = {
    "编号": "id", "驿站编号": "id", "名称": "name", "驿站名称": "name", "类型": "kind", "驿站类型": "kind",
    "经度": "lon", "纬度": "lat", "承办单位": "host", "依托单位": "host", "类别": "host", "地址": "address",
    "街道": "township", "乡镇": "township", "街道乡镇": "township", "设施": "amenities", "服务设施": "amenities",
    "开放时间": "opening_hours", "座位数": "seats", "座位": "seats", "星级": "stars", "状态": "status",
}
TRADITIONAL_HEADERS = {
    "編號": "id", "驛站編號": "id", "名稱": "name", "驛站名稱": "name", "類型": "kind", "驛站類型": "kind",
    "經度": "lon", "緯度": "lat", "承辦單位": "host", "依託單位": "host", "類別": "host", "鄉鎮": "township",
    "街道鄉鎮": "township", "設施": "amenities", "服務設施": "amenities", "開放時間": "opening_hours",
    "座位數": "seats", "星級": "stars", "狀態": "status",
}
"""The same headers in traditional characters (a Big5 file from Hong Kong or Taiwan, a converted sheet)."""
ALIASES = {"longitude": "lon", "lng": "lon", "x": "lon", "latitude": "lat", "y": "lat", "external_id": "id",
           "hours": "opening_hours", "host_type": "host"}
AMENITY_SPLIT = re.compile(r"[;；,，、|]")
STORED_AS = {"external_id": "id"}
"""The file's field of a ``stations`` column, where the names differ."""


def _column_limits() -> dict[str, int]:
    """Length limits of the text columns of ``stations``, characters, by column: its ``String(n)`` columns."""
    return {c.name: int(c.type.length) for c in Station.__table__.columns
            if isinstance(c.type, String) and c.type.length}


LIMITS = _column_limits()
"""Most characters each text column of ``stations`` holds, by column (``external_id``, ``name``, ...)."""
Contains = Callable[[np.ndarray, np.ndarray], np.ndarray]
CHINA = (73.0, 18.0, 135.5, 54.0)  # west, south, east, north
# pandas names a column with an empty header "Unnamed: N", and the second, third... of a repeated header "X.1", "X.2"
_BLANK_HEADER = re.compile(r"^(Unnamed: \d+(\.\d+)?)?$")
_REPEATED_HEADER = re.compile(r"^(.+)\.(\d+)$")
COORD_LABELS = {"wgs84": "WGS 84 (GPS)", "gcj02": "GCJ-02 (Amap, Tencent)", "bd09": "BD-09 (Baidu)"}
# A row "sits at" another system's position of its stored station when within this distance of it, metres.
# GCJ-02 differs from WGS 84 by 100-700 m in China (BD-09 by about 1.1-1.4 km), so a genuine move lands this close
# to that one point only by a rare coincidence, while a point copied from a map app lands within a metre or two.
OFFSET_TOLERANCE_M = 10.0
# Two systems are told apart at a point only where they differ by at least this much, metres (outside China the
# GCJ-02 formula is the identity).
MIN_SEPARATION_M = 50.0
_GEOD = Geod(ellps="WGS84")
NUMERIC = ("lon", "lat", "seats", "stars")
"""The numeric fields: full-width forms (``１１６．３２``, typed in a Chinese keyboard's full-width mode) are read as
the ASCII characters they stand for (Unicode NFKC); anything but a plain decimal number is refused by name."""
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_MINUS = str.maketrans({"\u2212": "-"})  # MINUS SIGN, which NFKC keeps


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


def _header_map(columns: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for c in columns:
        key = str(c).strip()
        low = key.lower()
        target = (CHINESE_HEADERS.get(key) or TRADITIONAL_HEADERS.get(key)
                  or (low if low in COLUMNS else ALIASES.get(low)))
        if target:
            mapping[c] = target
    return mapping


def accepted_columns() -> str:
    """The column names the importer knows, for messages."""
    return (f"{', '.join(COLUMNS)}; or the Chinese headers {', '.join(CHINESE_HEADERS)}; "
            f"or the aliases {', '.join(ALIASES)}")


def frame_from_file(path: Path | str, *, data: bytes | None = None, filename: str | None = None,
                    ignore_unknown_columns: bool = False) -> pd.DataFrame:
    """Read a registry file into a string DataFrame with canonical column names and a ``_row`` number.

    ``data`` lets a caller pass the bytes of an uploaded file; ``filename`` then gives its type.
    Row numbers are those a spreadsheet shows (the first line is row 1); GeoJSON features count from 1.
    See ``read_registry`` for unknown columns.
    """
    return read_registry(path, data=data, filename=filename, ignore_unknown_columns=ignore_unknown_columns)[0]


def header_score(cells: Sequence[str]) -> int:
    """How many of ``cells`` name a registry column (a header row names two or more)."""
    return len(_header_map([str(c) for c in cells]))


def read_table(path: Path | str | None, *, data: bytes | None = None,
               filename: str | None = None) -> tuple[pd.DataFrame, int]:
    """The rows of a CSV (UTF-8, GBK or Big5), XLSX or GeoJSON file, as strings under the file's own headers, and
    the number of its first row (the row below the header, 1 for GeoJSON features, whose Point coordinates become
    ``lon``, ``lat``); blank rows are left out. ``data`` gives the bytes of an upload, ``filename`` then its type.
    InvalidInput names the file and what is wrong with it (see ``tables``)."""
    table = read_file(path, data=data, filename=filename, score=header_score)
    df = pd.concat([p.frame for p in table.parts], ignore_index=True) if len(table.parts) > 1 else table.parts[0].frame
    cells = df.drop(columns="_row").fillna("").astype(str)
    df = df[(cells.apply(lambda c: c.str.strip()) != "").any(axis=1)] if len(df) else df
    first_row = int(df["_row"].iloc[0]) if len(df) else 2
    return df.drop(columns="_row").reset_index(drop=True), first_row


def _canonical_part(part: Part, source: str, hint: str) -> tuple[pd.DataFrame, list[str]]:
    """One part of a file (a CSV, a sheet) under the canonical column names, and its unknown columns."""
    df = part.frame
    where = f" (sheet {part.sheet!r})" if part.sheet else ""
    headers = [c for c in df.columns if c != "_row"]
    mapping = _header_map(headers)
    same: dict[str, list[str]] = {}
    for col, target in mapping.items():
        same.setdefault(target, []).append(str(col))
    clashes = [f"{' and '.join(cols)} are all {target!r}" for target, cols in same.items() if len(cols) > 1]
    names = [str(c) for c in headers]
    unknown: list[str] = []
    for i, col in enumerate(headers):
        if col in mapping:
            continue
        key = str(col).strip()
        repeated = _REPEATED_HEADER.match(key)
        if repeated and repeated.group(1) in names and repeated.group(1) in mapping:
            clashes.append(f"{repeated.group(1)!r} appears more than once")
        elif _BLANK_HEADER.match(key):
            values = df[col].fillna("").astype(str).str.strip()
            if (values != "").any():
                unknown.append(f"(no header, column {i + 1})")
        else:
            unknown.append(key)
    if clashes:
        raise InvalidInput(f"{source}{where}: several columns name the same field ({'; '.join(clashes)}); "
                           f"keep one of each")
    df = df.rename(columns=mapping)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InvalidInput(f"{source}{where}: missing required column(s) {', '.join(missing)}; "
                           f"expected {', '.join(REQUIRED)} (or 编号, 名称, 类型, 经度, 纬度); "
                           f"found {names}" + (f"; {hint}" if hint else ""))
    df = df[[c for c in [*COLUMNS, "_row"] if c in df.columns]].copy()
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df["_sheet"] = part.sheet or ""
    return df, unknown


def read_registry(path: Path | str, *, data: bytes | None = None, filename: str | None = None,
                  ignore_unknown_columns: bool = False,
                  limits: ImportLimits | None = None,
                  cancelled: Cancelled | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``frame_from_file``, also returning the names of the unknown columns that were left out.

    A column that is not one of ``COLUMNS``, ``CHINESE_HEADERS`` or ``ALIASES`` is an ``InvalidInput`` naming it
    unless ``ignore_unknown_columns``. Columns with an empty header and no values (trailing commas, Excel's
    empty columns) are dropped silently; with values they count as unknown. A workbook's sheets with the registry's
    headers are read one after the other (``_sheet`` names each row's sheet); ``sheets_read`` says which.
    ``cancelled`` is asked while the file is read (``tables.read_file``: ``ImportCancelled``).
    """
    source = Path(filename or str(path)).name
    table = read_file(path, data=data, filename=filename, score=header_score, limits=limits, cancelled=cancelled)
    frames, unknown = [], []
    for part in table.parts:
        df, more = _canonical_part(part, source, table.hint)
        frames.append(df)
        unknown += [u for u in more if u not in unknown]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if unknown and not ignore_unknown_columns:
        raise InvalidInput(f"{source}: unknown column(s) {', '.join(map(repr, unknown))}; accepted columns: "
                           f"{accepted_columns()}. Rename or remove them, or import without them with "
                           f"--ignore-unknown-columns (API form field ignore_unknown_columns=true)")
    df[COLUMNS] = df[COLUMNS].fillna("").astype(str).apply(lambda s: s.str.strip())
    if table.marked_text:  # an export's '=..., '+..., '-..., '@... reads back as it was stored
        for c in COLUMNS:
            marked = df[c].str.startswith(QUOTE)
            if marked.any():
                df.loc[marked, c] = df.loc[marked, c].map(restore_text)
    for c in NUMERIC:
        df[c] = _ascii_number_text(df[c])
    df = df[(df[COLUMNS] != "").any(axis=1)]  # blank spreadsheet lines
    if df.empty:
        raise InvalidInput(f"{source}: the file has a header but no station rows")
    df.attrs["sheets"] = table.sheets
    return df, unknown


def sheets_read(df: pd.DataFrame) -> list[str]:
    """The sheets of a workbook a ``read_registry`` frame was read from (empty for CSV and GeoJSON)."""
    return list(df.attrs.get("sheets", []))


def _ascii_number_text(values: pd.Series) -> pd.Series:
    """``values`` with full-width and other compatibility forms of digits, signs and points made ASCII (NFKC)."""
    plain = values.map(str.isascii).astype(bool)
    if plain.all():
        return values
    out = values.copy()
    out[~plain] = [unicodedata.normalize("NFKC", v).translate(_MINUS).strip() for v in values[~plain]]
    return out


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


def records_from_frame(df: pd.DataFrame, *, source: str, coord: str = "wgs84",
                       area_contains: Contains | None = None, area_name: str | None = None) -> list[StationRecord]:
    """Check every row; return records (lon/lat converted to WGS 84) or raise ImportRejected listing all problems.

    ``area_contains(lon, lat) -> bool array`` (arrays of WGS 84 degrees) rejects points outside the study area.
    """
    if coord not in COORD_SYSTEMS:
        raise InvalidInput(f"coord={coord!r}: expected one of {', '.join(COORD_SYSTEMS)}")
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

        def add(fieldname: str, value: object, expected: str, row: int = n, sheet: str = sheet) -> None:
            problems.append(RowProblem(row, fieldname + sheet, value, expected))

        for c in REQUIRED:
            if not r[c]:
                add(c, r[c], "a value is required")
        for c in COLUMNS:
            if "\x00" in r[c]:
                add(c, r[c].replace("\x00", "\\0"), "text without NUL (\\0) characters")
        if r["id"]:
            if r["id"] in seen:
                add("id", r["id"], f"a unique id (also used in row {seen[r['id']]})")
            else:
                seen[r["id"]] = n
        kind = vocab.canonical("kind", r["kind"]) if r["kind"] else None
        if r["kind"] and kind is None:
            add("kind", r["kind"], "one of large, small, mobile (大型, 小型, 流动)")
        host = None
        if r["host"]:
            host = vocab.canonical("host", r["host"])
            if host is None:
                add("host", r["host"], f"one of {', '.join(vocab.HOSTS)}")
        amenities: list[str] = []
        for a in filter(None, (x.strip() for x in AMENITY_SPLIT.split(r["amenities"]))):
            code = vocab.canonical("amenity", a)
            if code is None:
                add("amenities", a, f"known amenities separated by ';': {', '.join(vocab.AMENITIES)}")
            elif code not in amenities:
                amenities.append(code)
        hours = None
        if r["opening_hours"]:
            try:
                hours = check_hours(r["opening_hours"])
            except ValueError as exc:
                add("opening_hours", r["opening_hours"], str(exc))
        seats = stars = None
        if r["seats"]:
            x = _number(r["seats"])
            if x is None or not x.is_integer() or not 0 <= x <= 10000:
                add("seats", r["seats"], "a whole number from 0 to 10000")
            else:
                seats = int(x)
        if r["stars"]:
            x = _number(r["stars"])
            if x is None or not x.is_integer() or not 1 <= x <= 5:
                add("stars", r["stars"], "a whole number from 1 to 5")
            else:
                stars = int(x)
        status = "active"
        if r["status"]:
            status = vocab.canonical("status", r["status"]) or ""
            if not status:
                add("status", r["status"], "active or closed (运营 / 关闭)")
        stored = {"external_id": r["id"], "name": r["name"], "kind": kind, "host": host, "address": r["address"],
                  "township": r["township"], "opening_hours": hours, "status": status}
        for column, limit in LIMITS.items():
            text = stored[column] or ""
            if len(text) > limit:
                add(STORED_AS.get(column, column), text[:40] + "...",
                    f"at most {limit} characters (this one has {len(text)}); shorten it")
        lon, lat = _number(r["lon"]) if r["lon"] else None, _number(r["lat"]) if r["lat"] else None
        coords_ok = True
        for name, v, lo, hi in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
            if r[name] and (v is None or not math.isfinite(v)):
                add(name, r[name], "a finite number in decimal degrees")
                coords_ok = False
            elif v is not None and not lo <= v <= hi:
                swapped = name == "lat" and lon is not None and -90 <= lon <= 90 and -180 <= v <= 180
                add(name, r[name], f"{lo} to {hi} degrees" + ("; lon and lat look swapped" if swapped else ""))
                coords_ok = False
        if coords_ok and lon is not None and lat is not None:
            w, s, e, nn = CHINA
            if w <= lat <= e and s <= lon <= nn and not (w <= lon <= e and s <= lat <= nn):
                add("lon", r["lon"], f"a longitude; ({lon}, {lat}) looks like lat, lon swapped")
                coords_ok = False
        if len(problems) > bad or lon is None or lat is None or not coords_ok:
            continue
        wlon_f, wlat_f = float(wx[i]), float(wy[i])
        if not (math.isfinite(wlon_f) and math.isfinite(wlat_f)):  # a conversion that left the plane
            add("lon/lat", f"{lon}, {lat}", f"a point that {COORD_LABELS[coord]} can convert to WGS 84")
            continue
        if not inside[i]:
            add("lon/lat", f"{lon}, {lat}", f"a point inside area {area_name!r}" +
                ("" if coord != "wgs84" else " (if these are GCJ-02 or BD-09 coordinates, pass --coord)"))
            continue
        records.append(StationRecord(r["id"], r["name"], kind or "small", wlon_f, wlat_f, host, r["address"] or None,
                                     r["township"] or None, amenities, hours, seats, stars, status))
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
        raise InvalidInput(f"coord={coord!r}: expected one of {', '.join(COORD_SYSTEMS)}")
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
        raise InvalidInput(f"coord={declared!r}: expected one of {', '.join(COORD_SYSTEMS)}")
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
    _, _, moved = _GEOD.inv(slon, slat, wlon, wlat)
    fits: dict[str, np.ndarray] = {}
    for system in COORD_SYSTEMS:
        if system == declared:
            continue
        alon, alat = to_wgs84(raw_lon, raw_lat, system)
        _, _, residual = _GEOD.inv(slon, slat, alon, alat)
        _, _, separation = _GEOD.inv(wlon, wlat, alon, alat)
        fits[system] = (residual <= OFFSET_TOLERANCE_M) & (separation >= MIN_SEPARATION_M)
    fit_any = np.logical_or.reduce(list(fits.values()))
    likely = max(fits, key=lambda k: int(fits[k].sum()))
    n_fit = int(fits[likely].sum())
    moved_otherwise = int(((moved > OFFSET_TOLERANCE_M) & ~fit_any).sum())
    if n_fit == 0 or n_fit < moved_otherwise:
        return
    azimuth, _, _ = _GEOD.inv(slon, slat, wlon, wlat)
    problems = []
    for i in np.flatnonzero(fits[likely]):
        way = _COMPASS[int(((azimuth[i] % 360) + 22.5) // 45) % 8]
        problems.append(RowProblem(
            rows[i], "lon/lat", f"{raw_lon[i]:.6f}, {raw_lat[i]:.6f}",
            f"{COORD_LABELS[declared]} coordinates; read as {COORD_LABELS[likely]} this is stored station "
            f"{ids[i]!r} (as given it moved {moved[i]:.0f} m {way}, exactly the offset between the two)"))
    named = ", ".join(str(p.row) for p in problems[:5]) + (", ..." if len(problems) > 5 else "")
    override = "if these stations really moved, import with --trust-coords (API: trust_coords=true)"
    if 2 * n_fit >= len(matched):
        headline = (f"the coordinates look like {COORD_LABELS[likely]}, not {COORD_LABELS[declared]}: {n_fit} of "
                    f"{len(matched)} stations already stored moved by exactly the offset between the two systems "
                    f"(rows {named}); nothing was imported. Re-import with --coord {likely} "
                    f"(API form field coord={likely}); {override}")
    else:
        headline = (f"{n_fit} row(s) ({named}) look like {COORD_LABELS[likely]} coordinates in a "
                    f"{COORD_LABELS[declared]} file: each moved by exactly the offset between the two systems from "
                    f"its stored station, while the other {len(matched) - n_fit} stored stations did not; nothing "
                    f"was imported. Convert these rows to {COORD_LABELS[declared]} (or give the whole file in one "
                    f"system with --coord); {override}")
    raise CoordSystemMismatch(source, problems, declared=declared, likely=likely, headline=headline)
