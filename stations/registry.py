"""The station registry in PostGIS: upsert, look-up, listing, exact nearest-station search, and the language of an
area's registry (``registry_lang``, which its exports follow).

Distances are geodesic metres on the WGS 84 spheroid (PostGIS geography), never degrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from yizhan.db.engine import driver_of
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput, NotFound
from yizhan.stations import vocab
from yizhan.stations.hours import is_open, round_the_clock
from yizhan.stations.importer import StationRecord
from yizhan.stations.schema import STATION_COLUMNS, Station, station_from_row


@dataclass
class ImportSummary:
    """What an import did: rows read, stations inserted and updated, in which area."""

    area: str
    rows: int
    inserted: int
    updated: int
    unchanged: int = 0
    """Of ``updated``, the stations the file gave exactly as they were stored (their rows left as they were)."""


COPY_CHUNK_ROWS = 10_000
"""Rows turned into COPY text at a time: the text of a chunk is all that is held, not that of the whole file."""


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_line(r: StationRecord) -> str:
    return "\t".join(_copy_text(v) for v in (
        r.external_id, r.name, r.kind, r.host, r.host_name, r.address, r.township, ";".join(r.amenities),
        r.opening_hours, r.opening_hours_text, r.seats, r.stars, r.status, r.phone, repr(r.lon), repr(r.lat))) + "\n"


@contextmanager
def copy_stations(conn: Connection) -> Iterator[Callable[[Iterable[StationRecord]], int]]:
    """Stream station records into a temporary table inside the caller's transaction, for ``merge_copied``.

    Yields ``write(records) -> count``, which may be called any number of times, each call one COPY statement
    (short: the caller's work between calls, such as checking the next rows, is outside every statement and its
    timeout); the records are sent in chunks of ``COPY_CHUNK_ROWS``, so neither they nor their text need to be
    held at once.
    """
    conn.execute(text(
        "CREATE TEMP TABLE _stations_in (external_id text, name text, kind text, host text, host_name text, "
        "address text, township text, amenities text, opening_hours text, opening_hours_text text, seats int, "
        "stars smallint, status text, phone text, lon float8, lat float8) ON COMMIT DROP"))
    raw = driver_of(conn)

    def write(records: Iterable[StationRecord]) -> int:
        n = 0
        with raw.cursor() as cur, cur.copy("COPY _stations_in FROM STDIN") as copy:
            chunk: list[str] = []
            for r in records:
                chunk.append(_copy_line(r))
                if len(chunk) == COPY_CHUNK_ROWS:
                    copy.write("".join(chunk))
                    n += len(chunk)
                    chunk = []
            if chunk:
                copy.write("".join(chunk))
                n += len(chunk)
        return n

    yield write


LANGS = ("zh", "en")
"""The languages of a registry (``areas.registry_lang``): its exports' headers and labels."""
_FIELDS = ("name", "kind", "host", "host_name", "address", "township", "amenities", "opening_hours",
           "opening_hours_text", "seats", "stars", "status", "phone", "geom")
"""The columns of ``stations`` an import writes (besides the area and the external id that identify the row)."""


def check_lang(lang: str) -> str:
    """``lang`` if it is one of ``LANGS``; else ``InvalidInput`` naming it and what is accepted."""
    if lang not in LANGS:
        raise InvalidInput(f"lang: 语言 {lang!r} 不可用，可用 zh（中文）或 en（英文） / lang {lang!r} is not "
                           f"accepted; expected zh (Chinese) or en (English)")
    return lang


def merge_copied(conn: Connection, area_id: int, area_name: str, rows: int, *,
                 lang: str | None = None) -> ImportSummary:
    """Insert or update the records ``copy_stations`` sent, by external id, in one statement; stations not among
    them stay. ``rows`` is the number of rows the file had (for the summary).

    A stored station is rewritten (and its ``updated_at`` set) only when one of its fields differs from the
    record's, the phone or the host's name alone included; a station the file gives unchanged keeps its row as it
    was. ``updated`` counts the file's stations that were already stored, changed or not; ``unchanged`` those of
    them the file gave as stored. ``lang`` (``zh`` or ``en``, the language of the file's headers), when given,
    becomes the area's ``registry_lang`` in the same transaction: its exports follow it (``registry_lang``)."""
    if lang is not None:
        check_lang(lang)
    fields = ", ".join(_FIELDS)
    changed = " OR ".join(f"stations.{f} IS DISTINCT FROM EXCLUDED.{f}" for f in _FIELDS)
    inserted, merged = conn.execute(text(f"""
        WITH merged AS (
            INSERT INTO stations (area_id, external_id, {fields}, updated_at)
            SELECT :area_id, external_id, name, kind, host, host_name, address, township,
                   COALESCE(string_to_array(NULLIF(amenities, ''), ';'), '{{}}'), opening_hours,
                   opening_hours_text, seats, stars, status, phone, ST_SetSRID(ST_MakePoint(lon, lat), {SRID}), now()
            FROM _stations_in
            ON CONFLICT (area_id, external_id) DO UPDATE SET
                {", ".join(f"{f} = EXCLUDED.{f}" for f in _FIELDS)}, updated_at = now()
            WHERE {changed}
            RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted), count(*) FROM merged"""), {"area_id": area_id}).one()
    copied = conn.execute(text("SELECT count(*) FROM _stations_in")).scalar_one()
    conn.execute(text("DROP TABLE _stations_in"))
    if lang is not None:
        conn.execute(text("UPDATE areas SET registry_lang = :lang WHERE id = :a"), {"lang": lang, "a": area_id})
    return ImportSummary(area_name, rows, int(inserted), int(copied) - int(inserted), int(copied) - int(merged))


def registry_lang(conn: Connection, area_id: int) -> str:
    """The language of an area's registry (``zh`` or ``en``): that of its last import's headers
    (``areas.registry_lang``), or ``en`` when no import since the language was recorded says (a registry written
    by the sample, demo or national builders, whose values are English codes, or imported before; its exports
    stay as they were). Exports default to it."""
    lang = conn.execute(text("SELECT registry_lang FROM areas WHERE id = :a"), {"a": area_id}).scalar()
    return lang if lang in LANGS else "en"


def upsert_stations(conn: Connection, area_id: int, area_name: str,
                    records: Iterable[StationRecord], *, lang: str | None = None) -> ImportSummary:
    """Insert or update ``records`` by external id in one statement inside the caller's transaction.

    Rows are streamed with COPY into a temporary table (``copy_stations``), then merged (``merge_copied``, which
    also records ``lang`` when given); stations not in ``records`` stay.
    """
    with copy_stations(conn) as write:
        n = write(records)
    return merge_copied(conn, area_id, area_name, n, lang=lang)


def get_station(conn: Connection, external_id: str, *, area: str | None = None) -> Station:
    """One station by its external id (and area, when ids repeat across areas)."""
    rows = conn.execute(text(f"SELECT {STATION_COLUMNS} FROM stations s JOIN areas a ON a.id = s.area_id "
                             "WHERE s.external_id = :id AND (CAST(:area AS text) IS NULL OR a.name = :area)"),
                        {"id": external_id, "area": area}).all()
    if not rows:
        raise NotFound(f"no station with id {external_id!r}" + (f" in area {area!r}" if area else ""))
    if len(rows) > 1:
        raise InvalidInput(f"station id {external_id!r} exists in several areas "
                           f"({', '.join(r.area for r in rows)}): pass area=")
    return station_from_row(rows[0])


def list_stations(conn: Connection, *, area: str | None = None, kind: str | None = None,
                  status: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[Station]]:
    """A page of stations ordered by area and id, and the total count matching the filters."""
    where = ("(CAST(:area AS text) IS NULL OR a.name = :area) AND (CAST(:kind AS text) IS NULL OR s.kind = :kind) "
             "AND (CAST(:status AS text) IS NULL OR s.status = :status)")
    params = {"area": area, "kind": kind, "status": status, "limit": limit, "offset": offset}
    total = conn.execute(text(f"SELECT count(*) FROM stations s JOIN areas a ON a.id = s.area_id WHERE {where}"),
                         params).scalar_one()
    rows = conn.execute(text(f"SELECT {STATION_COLUMNS} FROM stations s JOIN areas a ON a.id = s.area_id WHERE {where} "
                             "ORDER BY a.name, s.external_id LIMIT :limit OFFSET :offset"), params).all()
    return int(total), [station_from_row(r) for r in rows]


def stations_frame(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    """All stations of an area as a GeoDataFrame in EPSG:4326 (lon, lat); ``station_id`` is the primary key.
    Codes as stored (``kind``, ``host``, ``amenities`` a list, ``status``), with ``host_name``, ``phone`` and
    ``opening_hours_text`` as written."""
    df = pd.read_sql(text(
        "SELECT s.id AS station_id, s.external_id, s.name, s.kind, s.host, s.host_name, s.address, s.township, "
        "s.amenities, s.opening_hours, s.opening_hours_text, s.seats, s.stars, s.status, s.phone, "
        "ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat FROM stations s WHERE s.area_id = :a ORDER BY s.external_id"),
        conn, params={"a": area_id})
    df["amenities"] = [list(v or []) for v in df["amenities"]]
    for c in ("seats", "stars"):
        df[c] = df[c].astype("Int64")
    points = gpd.points_from_xy(df.pop("lon").to_numpy(float), df.pop("lat").to_numpy(float), crs=SRID)
    return gpd.GeoDataFrame(df, geometry=points)


EXPORT_COLUMNS = ("id", "name", "kind", "lon", "lat", "host", "host_name", "address", "township", "amenities",
                  "opening_hours", "opening_hours_text", "seats", "stars", "status", "phone")
"""The columns of an export, in order: the import file's own (``stations.columns``), English names."""


def export_frame(conn: Connection, area_id: int) -> pd.DataFrame:
    """Stations of an area in the import file layout (``EXPORT_COLUMNS``: ``id, name, kind, lon, lat, ...``),
    ordered by id: lon/lat WGS 84 degrees rounded to 7 decimals (about a centimetre), codes as stored, amenities
    joined by ``;``, missing values None (NA for seats and stars). ``stations.export`` writes it in a language."""
    gdf = stations_frame(conn, area_id)
    out = pd.DataFrame({
        "id": gdf["external_id"], "name": gdf["name"], "kind": gdf["kind"],
        "lon": gdf.geometry.x.round(7), "lat": gdf.geometry.y.round(7),
        "host": gdf["host"], "host_name": gdf["host_name"], "address": gdf["address"], "township": gdf["township"],
        "amenities": gdf["amenities"].apply(";".join), "opening_hours": gdf["opening_hours"],
        "opening_hours_text": gdf["opening_hours_text"], "seats": gdf["seats"], "stars": gdf["stars"],
        "status": gdf["status"], "phone": gdf["phone"],
    }, columns=list(EXPORT_COLUMNS))
    return out


@dataclass
class StationFilter:
    """Which stations a rider's search considers: active ones, with all ``amenities``, open at ``open_at``
    (naive = local time in ``tz``), of ``kind``, in ``area``; with ``all_day`` only those open round the clock
    for the week from ``open_at`` (or from now)."""

    amenities: list[str] | None = None
    open_at: datetime | None = None
    kind: str | None = None
    area: str | None = None
    tz: str = "Asia/Shanghai"
    all_day: bool = False
    _all_day_from: datetime | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.all_day:  # one instant for the whole search, not a clock read per station checked
            object.__setattr__(self, "_all_day_from", self.open_at or datetime.now(ZoneInfo(self.tz)))
        unknown = [a for a in (self.amenities or []) if a not in vocab.AMENITIES]
        if unknown:
            raise InvalidInput(f"amenity: unknown {', '.join(unknown)}; expected any of {', '.join(vocab.AMENITIES)}")
        if self.kind is not None and self.kind not in vocab.KINDS:
            raise InvalidInput(f"kind: {self.kind!r} is not one of {', '.join(vocab.KINDS)}")
        if self.open_at is not None and not 1900 <= self.open_at.year <= 2200:
            raise InvalidInput(f"open_at: {self.open_at.isoformat()} is out of range; expected a date between "
                               "1900 and 2200")

    def sql(self, placeholder: str = ":{}") -> tuple[str, dict[str, Any]]:
        """WHERE conditions and parameters. Only the filters asked for: a generic plan with ``@> '{}'`` would
        scan the whole amenities index. ``placeholder`` formats a parameter name (SQLAlchemy ``:{}``, psycopg
        ``%({})s``)."""
        p = placeholder.format
        conds = ["s.status = 'active'"]
        if self.amenities:
            conds.append(f"s.amenities @> CAST({p('amen')} AS text[])")
        if self.kind is not None:
            conds.append(f"s.kind = {p('kind')}")
        if self.area is not None:
            conds.append(f"s.area_id = (SELECT id FROM areas WHERE name = {p('area')})")
        return " AND ".join(conds), {"amen": list(self.amenities or []), "kind": self.kind, "area": self.area}

    def passes(self, opening_hours: str | None) -> bool:
        """The opening-hours part, checked in Python (OSM syntax is not SQL)."""
        if self.open_at is not None and not is_open(opening_hours, self.open_at, tz=self.tz):
            return False
        return self._all_day_from is None or round_the_clock(opening_hours, self._all_day_from, tz=self.tz)

    @property
    def by_hours(self) -> bool:
        """Whether the opening hours decide (checked in Python by ``passes``)."""
        return self.open_at is not None or self.all_day


_POINT = f"CAST(ST_SetSRID(ST_MakePoint(:lon, :lat), {SRID}) AS geography)"
_SELECT = (f"SELECT {STATION_COLUMNS}, ST_Distance(s.geog, {_POINT}, true) AS distance_m "
           "FROM stations s JOIN areas a ON a.id = s.area_id")


def stations_within(conn: Connection, lon: float, lat: float, distance_m: float, flt: StationFilter, *,
                    limit: int | None = None) -> list[Station]:
    """Stations passing ``flt`` within ``distance_m`` geodesic metres of (lon, lat), nearest first, each with
    ``distance_m``. Uses the geography GiST index (``ST_DWithin`` on the stored column, no cast)."""
    where, params = flt.sql()
    rows = conn.execute(text(f"{_SELECT} WHERE {where} AND ST_DWithin(s.geog, {_POINT}, :bound) "
                             "ORDER BY distance_m, s.external_id"),
                        {**params, "lon": lon, "lat": lat, "bound": distance_m}).all()
    out = []
    for r in rows:
        if flt.passes(r.opening_hours):
            out.append(station_from_row(r, r.distance_m))
            if limit is not None and len(out) == limit:
                break
    return out


def nearest_stations(conn: Connection, lon: float, lat: float, *, k: int = 5, amenities: list[str] | None = None,
                     open_at: datetime | None = None, kind: str | None = None, area: str | None = None,
                     tz: str = "Asia/Shanghai", all_day: bool = False) -> list[Station]:
    """The ``k`` active stations nearest to (lon, lat) (WGS 84 degrees), exactly ordered by geodesic metres.

    Step 1 walks the geography GiST index (``<->``, sphere distance) until ``k`` candidates pass every
    filter; the k-th of their spheroid distances, D, bounds the answer. Step 2 takes every station within
    D on the spheroid (``ST_DWithin`` on the indexed geography column) and sorts by exact distance, so a
    sphere/spheroid disagreement in step 1 can never change the result. Each result has ``distance_m``.
    """
    flt = StationFilter(amenities, open_at, kind, area, tz, all_day)
    where, params = flt.sql()
    params.update(lon=lon, lat=lat)
    limit = max(4 * k, 32) if flt.by_hours else k
    while True:
        rows = conn.execute(text(f"{_SELECT} WHERE {where} ORDER BY s.geog <-> {_POINT} LIMIT :limit"),
                            {**params, "limit": limit}).all()
        good = sorted(r.distance_m for r in rows if flt.passes(r.opening_hours))
        if len(good) >= k or len(rows) < limit:
            break
        limit *= 4
    if not good:
        return []
    return stations_within(conn, lon, lat, good[min(k, len(good)) - 1] + 1e-6, flt, limit=k)
