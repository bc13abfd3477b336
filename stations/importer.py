"""Checking the rows of a station registry file (read by ``stations.columns``) into validated records.

Every bad row is reported (row number, field, value, what was expected); nothing is stored unless all rows are
good. ``check_coord_system`` catches a file whose coordinates are in another system than declared (GCJ-02 pasted
from Amap into a WGS 84 file) by comparing it with the stations already stored. The lengths of text fields are
those of the ``stations`` table's columns (``LIMITS``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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
from yizhan.stations.columns import COLUMNS, REQUIRED, frame_from_file, sheets_read
from yizhan.stations.hours import check_hours

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
COORD_LABELS = {"wgs84": "WGS 84 (GPS)", "gcj02": "GCJ-02 (Amap, Tencent)", "bd09": "BD-09 (Baidu)"}
# A row "sits at" another system's position of its stored station when within this distance of it, metres.
# GCJ-02 differs from WGS 84 by 100-700 m in China (BD-09 by about 1.1-1.4 km), so a genuine move lands this close
# to that one point only by a rare coincidence, while a point copied from a map app lands within a metre or two.
OFFSET_TOLERANCE_M = 10.0
# Two systems are told apart at a point only where they differ by at least this much, metres (outside China the
# GCJ-02 formula is the identity).
MIN_SEPARATION_M = 50.0
_GEOD = Geod(ellps="WGS84")
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
                  "township": r["township"], "opening_hours": hours, "status": status, "host_name": None, "phone": None,
                  "opening_hours_text": None}
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
