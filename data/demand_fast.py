"""The fast path of a demand import: order points read with pyarrow in batches, checked and transformed in numpy,
summed into cells in numpy and written with PostgreSQL binary COPY.

``fast_points`` takes the files it can read as the general reader (``data.demand_files``) would and returns None
for every other file, which the general path then reads, so no behaviour is lost:

- a UTF-8 CSV (``.csv``, ``.txt``) whose first line is its header, separated by commas, whose columns
  ``data.demand_columns.choose_columns`` finds (not a date and a time of day in two columns);
- a GeoParquet of points in WGS 84 (weight and time from its attributes), or a Parquet file with longitude and
  latitude columns.

Values follow the rules of ``data.demand.check_demand``: longitude -180 to 180, latitude -90 to 90 degrees, a
weight >= 0 (blank: one order), times as ``data.demand_times`` reads them (without an offset: local time of the
app's time zone). A CSV in which any value breaks a rule (or is written in a form the fast reader does not take:
full-width digits, a quoted line break, a blank line's numbering) is left to the general path, which names each
bad row; a Parquet file's rows are numbered from 1, so its bad values are checked by the caller's check (the same
messages). Cells are the squares ``data.demand.aggregate_cells`` makes: ``cell_size_m`` metres in the area's
metric CRS, keyed ``{size}m:{ix}:{iy}``, the polygon and centre transformed to WGS 84.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import shapely
from psycopg import Connection as PgConnection
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from pyproj import CRS, Transformer

from yizhan.areas import AreaInfo
from yizhan.data.demand_columns import ColumnChoice, DemandColumns, choose_columns, header_score
from yizhan.data.demand_points import PG_EPOCH_US
from yizhan.data.demand_times import times_from_text, zone_of
from yizhan.db.binary_copy import HEADER as COPY_HEADER
from yizhan.db.binary_copy import TRAILER as COPY_TRAILER
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput
from yizhan.geo.coords import to_wgs84
from yizhan.stations.tables import ImportLimits

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
BLOCK_BYTES = 16 << 20
"""Bytes of a CSV file pyarrow parses at a time (a batch)."""
PARQUET_BATCH_ROWS = 1 << 18
"""Rows of a Parquet file read at a time (a batch): the server stores one batch while the next is read."""
Check = Callable[[pd.DataFrame, dict[str, dict[str, str]]], object]
"""The general check of a frame of text rows (``data.demand.check_demand``): raises ImportRejected naming rows."""


class Declined(Exception):
    """The file is one the fast path leaves to the general path (raised when opening it, or by its batches when a
    later batch shows it: the caller then drops what it stored of the file and reads it the general way)."""


@dataclass
class FastPoints:
    """A file's points, checked: ``lon``, ``lat`` WGS 84 degrees, ``weight`` orders, ``micros`` the order time in
    microseconds since 2000-01-01 UTC (meaningful where ``has_time``), ``rows`` the row of each point as messages
    name it, or None when the file's numbering is not known (a CSV: the general path names rows). ``columns``,
    ``used`` and ``notes`` as ``data.demand_files.DemandRows`` has them; ``seconds`` the time of each phase."""

    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    micros: np.ndarray
    has_time: np.ndarray
    rows: np.ndarray | None
    columns: dict[str, dict[str, str]]
    used: str
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lon)

    def take(self, keep: np.ndarray) -> FastPoints:
        """The points where ``keep`` is True."""
        return FastPoints(self.lon[keep], self.lat[keep], self.weight[keep], self.micros[keep], self.has_time[keep],
                          None if self.rows is None else self.rows[keep], self.columns, self.used, self.notes,
                          self.seconds)


@dataclass
class FastFile:
    """A file the fast path reads, opened: ``batches`` yields its points checked and converted to WGS 84, a batch at
    a time as it is read (``Declined`` or ``InvalidInput`` may come from any batch); ``numbered`` whether the points
    carry their rows (a Parquet file's); ``columns``, ``used``, ``notes`` as ``FastPoints`` has them; ``seconds``
    the time of each phase so far (read, check, transform), shared with the batches."""

    batches: Iterator[FastPoints]
    numbered: bool
    columns: dict[str, dict[str, str]]
    used: str
    notes: list[str]
    seconds: dict[str, float]


def fast_file(path: Path | str, *, source: str, columns: DemandColumns = DemandColumns(), coord: str = "wgs84",
              timezone: str, limits: ImportLimits = ImportLimits(), check: Check) -> FastFile | None:
    """``path`` opened for the fast path (see the module's docstring), its points to come in batches converted from
    ``coord`` to WGS 84; None when the general path is to read the file. ``check`` names the bad rows of a Parquet
    file (it raises). InvalidInput for a file over ``limits.max_rows`` rows (a CSV's when the batch passing it is
    read)."""
    p = Path(path)
    suffix = p.suffix.lower()
    zone_of(timezone)  # an unknown zone is refused whether or not the file has times, as by the general path
    try:
        if suffix in CSV_SUFFIXES and p.is_file():
            return _csv_file(p, source, columns, coord, timezone, limits)
        if suffix in PARQUET_SUFFIXES and p.is_file():
            return _parquet_file(p, source, columns, coord, timezone, limits, check)
    except Declined:
        return None
    return None


def fast_points(path: Path | str, *, source: str, columns: DemandColumns = DemandColumns(), coord: str = "wgs84",
                timezone: str, limits: ImportLimits = ImportLimits(), check: Check) -> FastPoints | None:
    """All the checked points of ``path`` (``fast_file``'s batches joined); None when the general path is to read
    the file."""
    opened = fast_file(path, source=source, columns=columns, coord=coord, timezone=timezone, limits=limits,
                       check=check)
    if opened is None:
        return None
    try:
        parts = list(opened.batches)
    except Declined:
        return None
    if not parts:
        return None

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in parts])

    return FastPoints(joined("lon"), joined("lat"), joined("weight"), joined("micros"), joined("has_time"),
                      joined("rows") if opened.numbered else None, opened.columns, opened.used, opened.notes,
                      opened.seconds)


def _batch(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray, micros: np.ndarray, has_time: np.ndarray,
           rows: np.ndarray | None, coord: str, seconds: dict[str, float]) -> FastPoints:
    """One batch's checked arrays converted from ``coord`` to WGS 84 (timed as ``transform``)."""
    t = time.perf_counter()
    wlon, wlat = to_wgs84(lon, lat, coord)
    seconds["transform"] = seconds.get("transform", 0.0) + time.perf_counter() - t
    return FastPoints(np.asarray(wlon, np.float64), np.asarray(wlat, np.float64), weight, micros,
                      has_time.astype(bool), rows, {}, "", [], seconds)


# --- CSV -----------------------------------------------------------------------------------------------------

def _csv_choice(path: Path, source: str, columns: DemandColumns) -> ColumnChoice:
    """The columns of a CSV file whose first line is a plain comma-separated UTF-8 header; Declined otherwise."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Declined from exc
    if any(ch in text for ch in "'\t;|") or b"\n" not in head:
        raise Declined
    cells = [c[1:-1] if len(c) > 1 and c[0] == c[-1] == '"' else c for c in text.split(",")]
    if any('"' in c for c in cells):
        raise Declined  # a quoted comma or quote in a header: the general reader
    if any(not c or c != c.strip() for c in cells) or len(set(cells)) != len(cells) or header_score(cells,
                                                                                                  columns) < 2:
        raise Declined
    try:
        choice = choose_columns(cells, source=source, columns=columns)
    except InvalidInput as exc:
        raise Declined from exc
    if choice.date is not None or choice.lon is None or choice.lat is None:
        raise Declined
    return choice


def _csv_file(path: Path, source: str, columns: DemandColumns, coord: str, timezone: str,
              limits: ImportLimits) -> FastFile:
    t0 = time.perf_counter()
    choice = _csv_choice(path, source, columns)
    lon_col, lat_col = choice.lon, choice.lat
    assert lon_col is not None and lat_col is not None
    types: dict[str, pa.DataType] = {lon_col: pa.float64(), lat_col: pa.float64()}
    if choice.weight is not None:
        types[choice.weight] = pa.float64()
    if choice.time is not None:
        types[choice.time] = pa.string()
    try:  # the first block is read here
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                                parse_options=pacsv.ParseOptions(delimiter=","),
                                convert_options=pacsv.ConvertOptions(include_columns=list(types), column_types=types,
                                                                     null_values=[""], strings_can_be_null=False,
                                                                     quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Declined from exc
    seconds = {"read": time.perf_counter() - t0, "check": 0.0, "transform": 0.0}

    def batches() -> Iterator[FastPoints]:
        count = 0
        source_batches = _batches(reader)
        while True:
            t = time.perf_counter()
            batch = next(source_batches, None)
            seconds["read"] += time.perf_counter() - t
            if batch is None:
                break
            t = time.perf_counter()
            count += batch.num_rows
            if count > limits.max_rows:
                raise InvalidInput(f"{source}: 超过 {limits.max_rows:,} 行 / more than {limits.max_rows:,} rows, the "
                                   f"limit of one import (YIZHAN_MAX_IMPORT_ROWS); split the file")
            lon = _floats(batch.column(lon_col))
            lat = _floats(batch.column(lat_col))
            weight = _floats(batch.column(choice.weight), blank=1.0) if choice.weight else np.ones(batch.num_rows)
            if choice.time is not None:
                micros, has_time = _text_times(batch.column(choice.time), timezone)
            else:
                micros, has_time = np.zeros(batch.num_rows, np.int64), np.zeros(batch.num_rows, bool)
            if not _valid(lon, lat, weight):
                raise Declined
            seconds["check"] += time.perf_counter() - t
            yield _batch(lon, lat, weight, micros, has_time, None, coord, seconds)
        if count == 0:
            raise Declined  # a header without rows: the general path says so

    names = {f: c for f, c in (("lon", lon_col), ("lat", lat_col), ("weight", choice.weight),
                               ("timestamp", choice.time)) if c}
    return FastFile(batches(), False, {"": names}, choice.describe(), list(choice.notes), seconds)


def _batches(reader: Any) -> Iterator[pa.RecordBatch]:
    """The reader's batches; Declined for anything pyarrow refuses (a value that is not a number, a row of another
    width, invalid UTF-8, a quoted line break), which the general reader names by row."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise Declined from exc
        yield batch


def _floats(values: pa.Array | pa.ChunkedArray, blank: float = np.nan) -> np.ndarray:
    """A float64 column as numpy, a null (blank cell) as ``blank``."""
    if values.null_count:
        values = pc.fill_null(values, blank)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _valid(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray) -> bool:
    """``data.demand.check_demand``'s rules for the position and weight."""
    return bool(np.isfinite(lon).all() and np.isfinite(lat).all() and (np.abs(lon) <= 180).all()
                and (np.abs(lat) <= 90).all() and np.isfinite(weight).all() and (weight >= 0).all())


def _text_times(values: pa.Array | pa.ChunkedArray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Time cells as microseconds since 2000-01-01 UTC and a mask of the cells holding a time (blank: none).
    ISO 8601 cells all without an offset (local time of ``timezone``) or all with one are read by pyarrow; any
    other batch by ``data.demand_times.times_from_text``. Declined when a cell is unreadable."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    has = np.asarray(pc.not_equal(arr, "").to_numpy(zero_copy_only=False), dtype=bool)
    stamps = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    micros = np.zeros(len(arr), np.int64)
    if not has.any():
        return micros, has
    try:
        naive = stamps.cast(pa.timestamp("us"))
        local = pd.DatetimeIndex(naive.to_numpy(zero_copy_only=False)[has])
        utc = local.tz_localize(zone_of(timezone), ambiguous="NaT", nonexistent="NaT")
        if utc.isna().any():
            raise Declined  # a local time that does not exist (a daylight-saving change): refused by row
        micros[has] = utc.as_unit("us").asi8 - PG_EPOCH_US
        return micros, has
    except pa.ArrowInvalid:
        pass
    try:
        aware = stamps.cast(pa.timestamp("us", tz="UTC"))
        micros[has] = np.asarray(aware.cast(pa.int64()).to_numpy(zero_copy_only=False))[has] - PG_EPOCH_US
        return micros, has
    except pa.ArrowInvalid:
        pass
    times, bad = times_from_text(pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object), timezone)
    if bad.any():
        raise Declined
    instants = times.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
    micros[has] = instants[has].astype(np.int64) - PG_EPOCH_US
    return micros, has


# --- Parquet -------------------------------------------------------------------------------------------------

def _parquet_file(path: Path, source: str, columns: DemandColumns, coord: str, timezone: str,
                  limits: ImportLimits, check: Check) -> FastFile:
    t0 = time.perf_counter()
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise Declined from exc
    meta = pf.schema_arrow.metadata or {}
    geo = json.loads(meta[b"geo"]) if b"geo" in meta else None
    geom_col = _point_column(geo) if geo is not None else None
    names = [n for n in pf.schema_arrow.names if n != geom_col and not n.startswith("__index_level_")]
    try:
        choice = choose_columns(names, source=source, columns=columns, position=geom_col is None)
    except InvalidInput as exc:
        raise Declined from exc
    if geom_col is not None and (choice.lon is not None or choice.date is not None):
        raise Declined  # positions named by the caller beside a geometry: the general path
    if geom_col is None and (choice.lon is None or choice.lat is None or choice.date is not None):
        raise Declined
    total = pf.metadata.num_rows
    if total > limits.max_rows:
        raise InvalidInput(f"{source}: {total:,} 个要素，超过 {limits.max_rows:,} / {total:,} features, more than the "
                           f"limit of {limits.max_rows:,} (YIZHAN_MAX_IMPORT_ROWS); split the file")
    if total == 0:
        raise Declined
    wanted = [c for c in (geom_col, choice.lon, choice.lat, choice.weight, choice.time) if c is not None]
    seconds = {"read": time.perf_counter() - t0, "check": 0.0, "transform": 0.0}
    names_by_field = _field_names(choice, geom_col)

    def batches() -> Iterator[FastPoints]:
        source_batches = pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted, use_pandas_metadata=False)
        first = 1
        while True:
            t = time.perf_counter()
            try:
                batch = next(source_batches, None)
            except pa.ArrowException as exc:
                raise Declined from exc
            seconds["read"] += time.perf_counter() - t
            if batch is None:
                break
            t = time.perf_counter()
            n = batch.num_rows
            if geom_col is not None:
                lon, lat = _wkb_points(batch.column(geom_col))
            else:
                lon, lat = _numbers(batch.column(choice.lon)), _numbers(batch.column(choice.lat))
            weight = _numbers(batch.column(choice.weight), nan_is_blank=True) if choice.weight else np.ones(n)
            micros, has_time = _column_times(batch.column(choice.time), timezone) if choice.time else (
                np.zeros(n, np.int64), np.zeros(n, bool))
            if not _valid(lon, lat, weight):
                if geom_col is not None:
                    raise Declined  # the general reader names a bad geometry or attribute by feature
                check(_text_rows(batch, choice, first), {"": names_by_field})
                raise Declined
            seconds["check"] += time.perf_counter() - t
            yield _batch(lon, lat, weight, micros, has_time, np.arange(first, first + n), coord, seconds)
            first += n

    used = choice.describe()
    if geom_col is not None:
        used = ", ".join(filter(None, ["经度 longitude, 纬度 latitude=点几何 / point geometry", used]))
    return FastFile(batches(), True, {"": names_by_field}, used, list(choice.notes), seconds)


def _point_column(geo: dict[str, Any]) -> str:
    """The primary geometry column of GeoParquet metadata when it holds WKB in WGS 84; Declined otherwise."""
    name = geo.get("primary_column")
    meta = (geo.get("columns") or {}).get(name)
    if not isinstance(name, str) or not isinstance(meta, dict) or meta.get("encoding", "WKB").upper() != "WKB":
        raise Declined
    if meta.get("geometry_types") not in (None, [], ["Point"]) or "crs" not in meta or meta["crs"] is None:
        raise Declined
    if CRS.from_user_input(meta["crs"]).to_epsg() != SRID:
        raise Declined
    return name


def _wkb_points(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude, latitude of a column of WKB points; Declined for anything but 2D points."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if arr.null_count:
        raise Declined
    if pa.types.is_binary(arr.type) and len(arr):
        offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
        if (np.diff(offsets) == 21).all():
            raw = np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(-1, 21)
            if (raw[:, 0] == 1).all() and (raw[:, 1:5].view("<u4")[:, 0] == 1).all():
                return raw[:, 5:13].copy().view("<f8")[:, 0], raw[:, 13:21].copy().view("<f8")[:, 0]
    geoms = shapely.from_wkb(arr.to_numpy(zero_copy_only=False), on_invalid="ignore")
    if (shapely.get_type_id(geoms) != 0).any() or shapely.is_empty(geoms).any() or shapely.has_z(geoms).any():
        raise Declined
    return shapely.get_x(geoms), shapely.get_y(geoms)


def _numbers(values: pa.Array | pa.ChunkedArray, *, nan_is_blank: bool = False) -> np.ndarray:
    """A numeric column as float64 (a null or, for a weight, NaN is a blank cell: one order); Declined for text."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise Declined
    out = _floats(values.cast(pa.float64()), blank=1.0 if nan_is_blank else np.nan)
    if nan_is_blank and np.isnan(out).any():
        out = np.where(np.isnan(out), 1.0, out)
    return out


def _column_times(values: pa.Array | pa.ChunkedArray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """A Parquet time column as the general reader reads it: an aware timestamp is its instant and a naive one local
    time of ``timezone``, both to the second (it writes them as text without fractions); text as in a CSV."""
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_times(values.cast(pa.string()), timezone)
    if not pa.types.is_timestamp(kind):
        raise Declined
    has = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    micros = np.zeros(len(values), np.int64)
    seconds = values.cast(pa.timestamp("s", tz=kind.tz), safe=False)
    if kind.tz is not None:
        stamps = pd.DatetimeIndex(np.asarray(seconds.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False))[has])
    else:
        local = pd.DatetimeIndex(np.asarray(seconds.to_numpy(zero_copy_only=False))[has])
        stamps = local.tz_localize(zone_of(timezone), ambiguous="NaT", nonexistent="NaT").tz_convert(None)
        if stamps.isna().any():
            raise Declined
    micros[has] = stamps.as_unit("us").asi8 - PG_EPOCH_US
    return micros, has


def _field_names(choice: ColumnChoice, geom_col: str | None) -> dict[str, str]:
    names = {f: c for f, c in (("lon", choice.lon), ("lat", choice.lat), ("weight", choice.weight),
                               ("timestamp", choice.time)) if c}
    if geom_col is not None:
        names |= {"lon": "geometry", "lat": "geometry"}
    return names


def _text_rows(batch: pa.RecordBatch, choice: ColumnChoice, first: int) -> pd.DataFrame:
    """A batch of a Parquet file of lon/lat columns as the general check takes it: each field's cells as text
    (blank for a null), rows numbered from ``first``."""
    def text(col: str | None) -> pd.Series | str:
        if col is None:
            return ""
        values = batch.column(col).to_pandas()
        return values.astype(str).where(values.notna(), "")
    frame = pd.DataFrame({"lon": text(choice.lon), "lat": text(choice.lat), "weight": text(choice.weight),
                          "timestamp": text(choice.time)})
    frame["_row"] = np.arange(first, first + batch.num_rows)
    return frame


# --- cells ---------------------------------------------------------------------------------------------------

@dataclass
class FastCells:
    """Demand cells: grid indices ``ix``, ``iy`` (squares of ``size`` metres in the area's CRS, ``ix * size`` the
    west edge), summed ``weight`` and ``points``."""

    ix: np.ndarray
    iy: np.ndarray
    weight: np.ndarray
    points: np.ndarray
    size: float

    def __len__(self) -> int:
        return len(self.ix)

DENSE_CELLS = 1 << 23
"""Most squares of an area's box that ``CellSums`` sums into one array per field (about 100 MB); a larger box (a
province at a small cell size) keeps its points' squares to sum them at the end."""


class CellSums:
    """Points summed by square of ``cell_size_m`` metres as their batches come (``add``), so the cells are ready when
    the last batch is stored: into one array per field over the squares of the area's box (its boundary's box in
    the area's CRS, widened by two squares), each batch's points added in their order (``np.add.at``: the same sums,
    to the last bit, as one ``np.bincount`` over all the points); the points of squares beyond that box, or all of
    them when the box has more than ``DENSE_CELLS`` squares or the area no boundary, kept and summed at the end
    (``cells_at``). ``cells`` gives the cells in the order ``cells_at`` gives them (ix, then iy)."""

    def __init__(self, area: AreaInfo, cell_size_m: float) -> None:
        self.size = float(cell_size_m)
        self.ixs: list[np.ndarray] = []
        self.iys: list[np.ndarray] = []
        self.ws: list[np.ndarray] = []
        self.x0 = self.y0 = self.width = self.height = 0
        self.sums: np.ndarray | None = None
        self.counts: np.ndarray | None = None
        if area.boundary is None:
            return
        west, south, east, north = area.boundary.bounds
        edge = np.linspace(0.0, 1.0, 257)  # the box's edges, densely: a projected box's sides are curves
        lon = np.concatenate([west + (east - west) * edge, np.full(257, east), west + (east - west) * edge,
                              np.full(257, west)])
        lat = np.concatenate([np.full(257, south), south + (north - south) * edge, np.full(257, north),
                              south + (north - south) * edge])
        x, y = metres(lon, lat, area.crs_epsg)
        ix, iy = grid_indices(x, y, self.size)
        self.x0, self.y0 = int(ix.min()) - 2, int(iy.min()) - 2
        self.width, self.height = int(ix.max()) + 3 - self.x0, int(iy.max()) + 3 - self.y0
        if self.width * self.height <= DENSE_CELLS:
            self.sums = np.zeros(self.width * self.height)
            self.counts = np.zeros(self.width * self.height, np.int64)

    def add(self, ix: np.ndarray, iy: np.ndarray, weight: np.ndarray) -> None:
        """Add points in squares ``ix``, ``iy`` with their weights."""
        if self.sums is None or self.counts is None:
            self._keep(ix, iy, weight)
            return
        cx, cy = ix - self.x0, iy - self.y0
        box = (cx >= 0) & (cx < self.width) & (cy >= 0) & (cy < self.height)
        if not box.all():
            self._keep(ix[~box], iy[~box], weight[~box])
            cx, cy, weight = cx[box], cy[box], weight[box]
        code = cx * self.height + cy
        np.add.at(self.sums, code, weight)
        np.add.at(self.counts, code, 1)

    def _keep(self, ix: np.ndarray, iy: np.ndarray, weight: np.ndarray) -> None:
        self.ixs.append(ix.astype(np.int32))
        self.iys.append(iy.astype(np.int32))
        self.ws.append(np.asarray(weight, np.float64))

    def cells(self) -> FastCells:
        """The sums by square, in the order of the squares (ix, then iy)."""
        parts: list[FastCells] = []
        if self.counts is not None and self.sums is not None:
            used = np.flatnonzero(self.counts)
            parts.append(FastCells(used // self.height + self.x0, used % self.height + self.y0, self.sums[used],
                                   self.counts[used], self.size))
        if self.ixs:
            parts.append(cells_at(np.concatenate(self.ixs), np.concatenate(self.iys), np.concatenate(self.ws),
                                  cell_size_m=self.size))
        if len(parts) == 1:
            return parts[0]
        ix, iy, weight, points = (np.concatenate([getattr(p, f) for p in parts]).astype(
            np.float64 if f == "weight" else np.int64) for f in ("ix", "iy", "weight", "points"))
        order = np.lexsort((iy, ix))
        return FastCells(ix[order], iy[order], weight[order], points[order], self.size)


SPLIT_POINTS = 1 << 17
"""Points from which ``metres`` transforms two halves on two threads."""


def metres(lon: np.ndarray, lat: np.ndarray, crs_epsg: int) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 lon, lat degrees as x, y metres (east, north) in EPSG ``crs_epsg``. From ``SPLIT_POINTS`` points, the
    second half is transformed on a thread of its own (PROJ releases the GIL), each thread with its own
    transformer: an import's batch uses the core the server leaves while it stores the batch before (10 M points:
    1.6 s on one thread), and the numbers are those of one call."""
    x = np.array(lon, dtype=np.float64, copy=True, ndmin=1)
    y = np.array(lat, dtype=np.float64, copy=True, ndmin=1)

    def transform(part: slice) -> None:
        Transformer.from_crs(SRID, crs_epsg, always_xy=True).transform(x[part], y[part], inplace=True)

    n = len(x)
    if n < SPLIT_POINTS:
        transform(slice(0, n))
        return x, y
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(transform, slice(n // 2, n))
        transform(slice(0, n // 2))
        second.result()
    return x, y


def grid_cells(x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, cell_size_m: float) -> FastCells:
    """The points (x, y metres in the area's CRS) summed into squares of ``cell_size_m`` metres: a point is in the
    square ``floor(x / size)``, ``floor(y / size)``."""
    ix, iy = grid_indices(x, y, cell_size_m)
    return cells_at(ix, iy, weight, cell_size_m=cell_size_m)


def grid_indices(x: np.ndarray, y: np.ndarray, cell_size_m: float) -> tuple[np.ndarray, np.ndarray]:
    """The squares of ``cell_size_m`` metres holding the points (x, y metres): ``floor(x / size)``,
    ``floor(y / size)``."""
    return (np.floor(np.asarray(x) / cell_size_m).astype(np.int64),
            np.floor(np.asarray(y) / cell_size_m).astype(np.int64))


def cells_at(ix: np.ndarray, iy: np.ndarray, weight: np.ndarray, *, cell_size_m: float) -> FastCells:
    """Points summed by square (grid indices ``ix``, ``iy`` of squares of ``cell_size_m`` metres)."""
    ix, iy = ix.astype(np.int64, copy=False), iy.astype(np.int64, copy=False)
    x0, y0 = int(ix.min()), int(iy.min())
    width, height = int(ix.max()) - x0 + 1, int(iy.max()) - y0 + 1
    if width * height <= 4 * len(ix) + 1_000_000:
        code = (ix - x0) * height + (iy - y0)
        sums = np.bincount(code, weights=weight, minlength=width * height)
        counts = np.bincount(code, minlength=width * height)
        used = np.flatnonzero(counts)
        return FastCells(used // height + x0, used % height + y0, sums[used], counts[used], float(cell_size_m))
    pairs, inverse = np.unique(np.stack([ix, iy], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return FastCells(pairs[:, 0], pairs[:, 1], np.bincount(inverse, weights=weight), np.bincount(inverse),
                     float(cell_size_m))


# --- binary COPY of cells ------------------------------------------------------------------------------------

_EWKB_POINT = 0x20000001
_EWKB_POLYGON = 0x20000003


_CELL_HEAD = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("ll", ">i4"), ("l", ">i4"), ("lk", ">i4")])
_CELL_TAIL = np.dtype([("ls", ">i4"), ("s", ">f8"), ("lw", ">i4"), ("w", ">f8"), ("lp", ">i4"), ("p", ">i4"),
                       ("lg", ">i4"), ("gbo", "u1"), ("gt", "<u4"), ("gsrid", "<u4"), ("rings", "<u4"),
                       ("npts", "<u4"), ("ring", "<f8", (10,)), ("lc", ">i4"), ("cbo", "u1"), ("ct", "<u4"),
                       ("csrid", "<u4"), ("cx", "<f8"), ("cy", "<f8"), ("lx", ">i4"), ("x", ">f8"), ("ly", ">i4"),
                       ("y", ">f8")])


CELL_ROWS = 1 << 15
"""Cells transformed and encoded at a time (about 8 MB): the server takes one part while the next is made, and the
buffers of a part are reused for the next instead of touching fresh memory for all the cells at once."""


def copy_cells(conn: PgConnection[Any], area: AreaInfo, cells: FastCells, layer_id: int, *,
               table: str | None = None) -> None:
    """Append the cells to ``demand_cells`` in demand layer ``layer_id`` by binary COPY, or load them into ``table``
    (the layer's own table, created in the open transaction and not attached yet: ``data.layers.new_layer``;
    written frozen): each square's polygon (corners west-south, west-north, east-north, east-south, as PostGIS's
    envelope) and centre transformed to WGS 84 lon/lat, and the centre in metres of the area's CRS (``x``, ``y``).
    The rows go in the cells' order, so their ids (from ``demand_cells_id_seq``) follow it."""
    size = cells.size
    back = Transformer.from_crs(area.crs_epsg, SRID, always_xy=True)
    prefix = np.frombuffer((repr(size).removesuffix(".0") + "m:").encode(), np.uint8)
    statement = sql.SQL("COPY {} (area_id, layer_id, cell_key, cell_size_m, weight, points, geom, centroid, x, y) "
                        "FROM STDIN (FORMAT BINARY{})").format(sql.Identifier(table or "demand_cells"),
                                                              sql.SQL(", FREEZE") if table else sql.SQL(""))
    with conn.cursor() as cur, cur.copy(statement, writer=QueuedLibpqWriter(cur)) as cp:
        cp.write(COPY_HEADER)
        for start in range(0, len(cells), CELL_ROWS):
            part = slice(start, start + CELL_ROWS)
            cp.write(memoryview(_cell_rows(area.id, layer_id, prefix, size, back, cells.ix[part], cells.iy[part],
                                           cells.weight[part], cells.points[part])))
        cp.write(COPY_TRAILER)


def _cell_rows(area_id: int, layer_id: int, prefix: np.ndarray, size: float, back: Transformer, ix: np.ndarray,
               iy: np.ndarray, weight: np.ndarray, points: np.ndarray) -> bytes:
    """Cells' rows in PostgreSQL's binary COPY format (without the file header and trailer), their squares
    transformed to WGS 84 by ``back``; see ``copy_cells``."""
    n = len(ix)
    x0, y0 = ix * size, iy * size
    x1, y1 = (ix + 1) * size, (iy + 1) * size
    lon, lat = back.transform(np.stack([x0, x0, x1, x1], axis=1).astype(np.float64).ravel(),
                              np.stack([y0, y1, y1, y0], axis=1).astype(np.float64).ravel())
    cx, cy = (ix + 0.5) * size, (iy + 0.5) * size
    clon, clat = back.transform(cx, cy)
    ring = np.empty((n, 10))  # four corners, then the first again (the ring closed)
    ring[:, 0:8:2], ring[:, 1:8:2] = np.reshape(lon, (-1, 4)), np.reshape(lat, (-1, 4))
    ring[:, 8:] = ring[:, :2]
    ix_text, ix_len = _ascii(ix)
    iy_text, iy_len = _ascii(iy)
    head = np.empty(n, _CELL_HEAD)
    head["n"], head["la"], head["a"], head["ll"], head["l"] = 10, 4, area_id, 4, layer_id
    head["lk"] = len(prefix) + ix_len + 1 + iy_len
    tail = np.empty(n, _CELL_TAIL)
    tail["ls"], tail["s"], tail["lw"], tail["w"], tail["lp"], tail["p"] = 8, size, 8, weight, 4, points
    tail["lg"], tail["gbo"], tail["gt"], tail["gsrid"], tail["rings"], tail["npts"] = 97, 1, _EWKB_POLYGON, SRID, 1, 5
    tail["ring"] = ring
    tail["lc"], tail["cbo"], tail["ct"], tail["csrid"], tail["cx"], tail["cy"] = 25, 1, _EWKB_POINT, SRID, clon, clat
    tail["lx"], tail["x"], tail["ly"], tail["y"] = 8, cx, 8, cy
    parts = [head.view(np.uint8).reshape(n, _CELL_HEAD.itemsize), np.broadcast_to(prefix, (n, len(prefix))),
             ix_text, np.full((n, 1), ord(":"), np.uint8), iy_text, tail.view(np.uint8).reshape(n, _CELL_TAIL.itemsize)]
    rows = np.concatenate(parts, axis=1)
    keep = np.ones(rows.shape, dtype=bool)  # the padding of the key's numbers left out, the rows kept in order
    at = _CELL_HEAD.itemsize + len(prefix)
    keep[:, at:at + ix_text.shape[1]] = np.arange(ix_text.shape[1]) < ix_len[:, None]
    at += ix_text.shape[1] + 1
    keep[:, at:at + iy_text.shape[1]] = np.arange(iy_text.shape[1]) < iy_len[:, None]
    return rows[keep].tobytes()


def _ascii(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integers written in decimal ASCII as Python's ``str`` writes them (``-22``): an (n, width) uint8 array, each
    number left-aligned and padded with zeros, and the length of each."""
    n = len(values)
    negative = values < 0
    rest = np.abs(values.astype(np.int64))
    digits = np.ones(n, np.int64)
    more = rest // 10
    while (more > 0).any():
        digits += more > 0
        more //= 10
    lengths = digits + negative
    text = np.zeros((n, int(lengths.max(initial=1))), np.uint8)
    text[negative, 0] = ord("-")
    rows = np.arange(n)
    for k in range(int(digits.max(initial=1))):
        has = k < digits
        text[rows[has], (lengths - 1 - k)[has]] = ord("0") + rest[has] % 10
        rest //= 10
    return text, lengths
