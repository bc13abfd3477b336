"""Delivery demand: raw points (lon, lat, weight, time) imported into PostGIS and summed into grid cells.

Files are read by ``data.demand_files`` (CSV, XLSX, GeoJSON, GeoParquet, shapefiles; the columns by the headers
clerks and platforms write, ``data.demand_columns``), times by ``data.demand_times`` (a time without an offset is
local time of the app's time zone). Cells are squares of ``cell_size_m`` metres in the area's metric CRS, or
(``h3_res``) H3 hexagons (``data.h3_cells``), the points summed into them in numpy; each keeps its total weight,
point count, polygon and centre (stored in WGS 84).
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from yizhan.areas import AreaInfo, resolve_area
from yizhan.data.demand_columns import DemandColumns
from yizhan.data.demand_fast import (
    CellSums,
    Declined,
    FastCells,
    FastFile,
    FastPoints,
    copy_cells,
    fast_file,
    grid_cells,
    grid_indices,
    metres,
)
from yizhan.data.demand_files import demand_rows_from_file
from yizhan.data.demand_points import (
    PG_EPOCH_US,
    PointBlock,
    StoredPoints,
    append_points,
    drop_points,
    load_points,
    point_columns,
    replace_points,
    stored_points,
    swap_points,
)
from yizhan.data.demand_times import expected_time, times_from_text
from yizhan.data.h3_cells import H3Cells, H3Sums, check_resolution, copy_h3_cells, h3_cells
from yizhan.data.h3_cells import cell_size_m as h3_cell_size_m
from yizhan.data.layers import attach_cells, cells_table, close_layer, new_layer
from yizhan.db.engine import driver_of
from yizhan.db.models import SRID
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.geo.boundary_test import BoundaryTest
from yizhan.geo.coords import COORD_SYSTEMS, to_wgs84
from yizhan.settings import DEFAULT_TIMEZONE
from yizhan.stations.tables import ImportLimits

if TYPE_CHECKING:  # geopandas is imported where a grid is read: a file of points does not wait for it
    import geopandas as gpd

MAX_PROBLEMS = 1000
"""Bad rows listed at most per field."""
__all__ = ["StoredPoints", "stored_points"]  # read here by the coverage runs; defined in data.demand_points


@dataclass
class DemandSummary:
    """What a demand import stored: points read, points dropped outside the area, cells, total weight; for a
    file of points, ``columns`` says which of its columns were used and ``notes`` what else the reader noticed."""

    area: str
    points: int
    dropped_outside: int
    cells: int
    weight_total: float
    cell_size_m: float
    columns: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict, compare=False)
    """Wall seconds of each phase of a fast import (``data.demand_fast``): read, check, transform, area test,
    metres, cells (the batches' sums and their merge) or H3 cells, COPY points (what the COPY took beyond those: the
    encoding and the wait for the server), COPY cells, index cells, close layer, swap, commit; empty for the general
    path."""


MIN_CELL_SIZE_M, MAX_CELL_SIZE_M = 10.0, 5000.0
"""The demand cell edges an import takes (metres)."""


def demand_frame_from_file(path: Path | str, *, columns: DemandColumns = DemandColumns(),
                           encoding: str | None = None, limits: ImportLimits = ImportLimits()) -> pd.DataFrame:
    """The rows of a demand file as ``lon, lat, weight, timestamp, _row`` (``data.demand_files``).

    ``lon``/``lat`` are degrees as written in the file (any supported coordinate system) or WGS 84 from a point
    geometry; weight and timestamp are the text of their cells (blank when the file has no such column).
    """
    return demand_rows_from_file(path, columns=columns, encoding=encoding, limits=limits).frame


def _plain_numbers(values: pd.Series) -> pd.Series:
    """Numbers typed in a Chinese keyboard's full-width mode (``１１６．３２``) as the ASCII they stand for (NFKC)."""
    if values.dtype.kind in "fiu":
        return values
    values = values.astype(str)
    wide = ~values.str.isascii().to_numpy(dtype=bool)
    if wide.any():
        values = values.copy()
        values[wide] = [unicodedata.normalize("NFKC", v).replace("\u2212", "-").strip() for v in values[wide]]
    return values


def check_demand(df: pd.DataFrame, *, source: str, coord: str = "wgs84", timezone: str = DEFAULT_TIMEZONE,
                 columns: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Validate and convert to WGS 84: returns ``lon, lat, weight, observed_at, _row``; ImportRejected lists bad
    rows.

    ``df`` is a ``demand_frame_from_file`` frame; ``coord`` the coordinate system of its ``lon``/``lat`` degrees;
    a ``timestamp`` without an offset is local time of ``timezone`` (``data.demand_times``); ``observed_at`` is
    the instant in UTC (NaT without a time). ``columns`` gives the file's column of each field (by sheet, ``""``
    for a file of one part) for the messages.
    """
    if coord not in COORD_SYSTEMS:
        raise InvalidInput(f"coord={coord!r}: 坐标系须为 / expected one of {', '.join(COORD_SYSTEMS)}")
    lon_text, lat_text = _plain_numbers(df["lon"]), _plain_numbers(df["lat"])
    weight_text = _plain_numbers(df["weight"])
    lon = pd.to_numeric(lon_text, errors="coerce").to_numpy(float)
    lat = pd.to_numeric(lat_text, errors="coerce").to_numpy(float)
    if weight_text.dtype.kind not in "fiu":
        weight_text = weight_text.where(weight_text.str.strip() != "", "1")  # blank: one order
    w = pd.to_numeric(weight_text, errors="coerce").to_numpy(float)
    ts, bad_time = times_from_text(df["timestamp"], timezone)
    rows = df["_row"].to_numpy()
    sheets = df["_sheet"].to_numpy() if "_sheet" in df.columns else None
    names = columns or {}
    problems: list[RowProblem] = []
    checks = [
        ("lon", df["lon"], ~np.isfinite(lon) | (np.abs(lon) > 180), "经度，-180 至 180 度 / a longitude in degrees, "
                                                                    "-180 to 180"),
        ("lat", df["lat"], ~np.isfinite(lat) | (np.abs(lat) > 90), "纬度，-90 至 90 度 / a latitude in degrees, "
                                                                  "-90 to 90"),
        ("weight", df["weight"], ~np.isfinite(w) | (w < 0), "不小于 0 的数（空白为 1）/ a number >= 0 (blank: 1)"),
        ("timestamp", df["timestamp"], bad_time, expected_time(timezone)),
    ]
    for name, values, mask, expected in checks:
        for i in np.flatnonzero(mask)[:MAX_PROBLEMS]:
            sheet = str(sheets[i]) if sheets is not None else ""
            column = names.get(sheet, {}).get(name, name)
            problems.append(RowProblem(int(rows[i]), f"{sheet}!{column}" if sheet else column, values.iloc[i],
                                       expected))
    if problems:
        problems.sort(key=lambda p: p.row)
        raise ImportRejected(source, problems)
    wlon, wlat = to_wgs84(lon, lat, coord)
    return pd.DataFrame({"lon": wlon, "lat": wlat, "weight": w, "observed_at": ts.reset_index(drop=True),
                         "_row": rows})


def _store_points(conn: Connection, area: AreaInfo, pts: pd.DataFrame, *, append: bool) -> int:
    """The checked points (``check_demand``'s frame) stored as the area's points, or added to them with ``append``
    (``data.demand_points``); their number."""
    x, y = metres(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float), area.crs_epsg)
    stamps = pts["observed_at"]
    has = stamps.notna().to_numpy(bool)
    micros = np.zeros(len(pts), np.int64)
    if has.any():
        micros[has] = stamps[has].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]").astype(
            np.int64) - PG_EPOCH_US
    block = PointBlock(pts["lon"].to_numpy(float), pts["lat"].to_numpy(float), x, y, pts["weight"].to_numpy(float),
                       micros, has)
    raw = driver_of(conn)
    return append_points(raw, area.id, [block]) if append else replace_points(raw, area.id, [block])


def _check_cell_size(cell_size_m: float) -> None:
    if not math.isfinite(cell_size_m) or not MIN_CELL_SIZE_M <= cell_size_m <= MAX_CELL_SIZE_M:
        raise InvalidInput(f"cell size {cell_size_m} m: expected {MIN_CELL_SIZE_M:g} to {MAX_CELL_SIZE_M:g} metres")


def aggregate_cells(conn: Connection, area: AreaInfo, cell_size_m: float, *, source: str = "") -> int:
    """Sum the area's stored points into ``cell_size_m`` squares (metres, area CRS) as a new demand layer
    (``data.layers``) that replaces its current cells; the number of cells."""
    _check_cell_size(cell_size_m)
    got = point_columns(conn, area.id, ("x", "y", "weight"))
    layer = new_layer(conn, area, source=source, cell_size_m=cell_size_m, attach=False)
    if len(got["x"]):
        cells = grid_cells(got["x"], got["y"], got["weight"], cell_size_m=cell_size_m)
        copy_cells(driver_of(conn), area, cells, layer, table=cells_table(layer))
    attach_cells(conn, layer)
    return close_layer(conn, layer, lattice=True)[0]


def h3_params(res: int) -> dict[str, object]:
    """A layer's ``params`` for cells of H3 resolution ``res``."""
    return {"h3": True, "h3_res": int(res)}


def write_h3_layer(conn: Connection, area: AreaInfo, cells: H3Cells, *, source: str) -> tuple[int, float]:
    """The H3 cells as a new demand layer of the area (``data.layers``, no lattice: its gaps are found on the
    polygons; its params record ``h3`` and the resolution) that replaces its current cells; their count and total
    weight."""
    layer = new_layer(conn, area, source=source, cell_size_m=h3_cell_size_m(cells.res), attach=False,
                      params=h3_params(cells.res))
    copy_h3_cells(driver_of(conn), area, cells, layer, table=cells_table(layer))
    attach_cells(conn, layer)
    return close_layer(conn, layer, lattice=False)


def aggregate_h3(conn: Connection, area: AreaInfo, res: int, *, source: str = "") -> tuple[int, float]:
    """Sum the area's stored points into H3 cells of resolution ``res`` (``data.h3_cells``) as a new demand layer
    that replaces its current cells; the number of cells and their total weight."""
    got = point_columns(conn, area.id, ("lon", "lat", "weight"))
    cells = h3_cells(got["lon"], got["lat"], got["weight"], check_resolution(res))
    return write_h3_layer(conn, area, cells, source=source)


def import_demand(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                  cell_size_m: float = 200.0, append: bool = False, clip: bool = False,
                  timezone: str = DEFAULT_TIMEZONE, columns: DemandColumns = DemandColumns(),
                  encoding: str | None = None, limits: ImportLimits = ImportLimits(),
                  fast: bool = True, h3_res: int | None = None) -> DemandSummary:
    """Import demand points into an area and rebuild its cells, in one transaction.

    By default the file replaces the area's points; ``append`` adds to them. Points outside the area are an
    error listing them, unless ``clip`` drops them (their count is reported). ``coord`` is the coordinate system
    of the file's longitude/latitude degrees (``wgs84``, ``gcj02``, ``bd09``); ``timezone`` the zone of times
    written without an offset (the app's ``settings.timezone``); ``columns`` names the file's columns instead of
    the header tables; ``encoding`` a shapefile's text encoding; ``limits`` the rows and unpacked MB read
    (``ImportLimits.from_settings``). A file of polygons is a ready grid (``import_grid``).

    A UTF-8 CSV with its header on the first line, or a GeoParquet/Parquet file of points, is read by the fast
    path (``data.demand_fast``: pyarrow, numpy, binary COPY) with the same rules and result; ``fast=False`` reads
    it by the general path (the benchmark's comparison).

    ``h3_res`` makes the cells H3 hexagons of that resolution (7 to 10: ``data.h3_cells``) instead of squares; the
    summary's ``cell_size_m`` is then the square root of their average area.
    """
    if h3_res is not None:
        check_resolution(h3_res)
    else:
        _check_cell_size(cell_size_m)
    source = Path(path).name
    if fast and encoding is None and coord in COORD_SYSTEMS:
        opened = fast_file(path, source=source, columns=columns, coord=coord, timezone=timezone, limits=limits,
                           check=lambda frame, names: check_demand(frame, source=source, coord=coord,
                                                                   timezone=timezone, columns=names))
        summary = None if opened is None else _import_fast(engine, opened, source=source, area=area,
                                                           cell_size_m=cell_size_m, append=append, clip=clip,
                                                           timezone=timezone, h3_res=h3_res)
        if summary is not None:
            return summary
    grid = _polygon_grid(Path(path))
    if grid is not None:
        return import_grid(engine, grid, source=source, area=area)
    read = demand_rows_from_file(path, columns=columns, encoding=encoding, limits=limits)
    if not read.geographic and coord != "wgs84":
        raise InvalidInput(f"{source}: --coord {coord} 只用于经纬度 / applies to longitude/latitude degrees, but this "
                           f"file's points are in a projected CRS (its .prj), transformed to WGS 84 as they are; "
                           f"import it without --coord")
    pts = check_demand(read.frame, source=source, coord=coord, timezone=timezone, columns=read.columns)
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        dropped = 0
        inside = info.contains(pts["lon"].to_numpy(), pts["lat"].to_numpy())
        if not inside.all():
            if not clip:
                where = _position_field(read.columns)
                outside = pts[~inside]
                raise ImportRejected(source, [
                    RowProblem(int(row), where, f"{x:.6f}, {y:.6f}",
                               f"区域 {info.name!r} 内的点（或加 --clip 丢弃区域外的点）/ a point inside area "
                               f"{info.name!r} (or pass --clip to drop outside points)")
                    for row, x, y in outside[["_row", "lon", "lat"]].head(200).itertuples(index=False)])
            dropped = int((~inside).sum())
            pts = pts[inside]
        if pts.empty:
            raise InvalidInput(f"{source}: 区域 {info.name!r} 内没有需求点 / no demand points inside area "
                               f"{info.name!r}")
        _store_points(conn, info, pts, append=append)
        if h3_res is not None:
            cells, total = aggregate_h3(conn, info, h3_res, source=source)
            cell_size_m = h3_cell_size_m(h3_res)
        else:
            cells = aggregate_cells(conn, info, cell_size_m, source=source)
            total = conn.execute(text("SELECT coalesce(sum(weight), 0) FROM area_cells WHERE area_id = :a"),
                                 {"a": info.id}).scalar_one()
    notes = list(read.notes)
    if any("timestamp" in names for names in read.columns.values()):
        notes.append(f"不带时区的时间按 {timezone} 当地时间 / times without an offset are local time in {timezone}")
    return DemandSummary(info.name, len(pts), dropped, cells, float(total), cell_size_m, read.used, notes)


def _import_fast(engine: Engine, opened: FastFile, *, source: str, area: str | None, cell_size_m: float,
                 append: bool, clip: bool, timezone: str, h3_res: int | None = None) -> DemandSummary | None:
    """The rest of ``import_demand`` for a file the fast path opened (``data.demand_fast``), in one transaction: its
    batches are read, checked, tested against the area and stored by binary COPY while the file is being read (the
    server stores one batch while the next is read), then the cells, summed in numpy (with ``append`` all the
    area's stored points are summed again), are written and the new points swapped in. A point outside the
    area is an error naming up to 200 of them (their rows) unless ``clip`` drops them, as in the general path; that
    error, and any other, rolls everything back. None, with nothing stored, when a batch shows that the general path
    is to read the file, or when points lie outside the area of a file whose rows the fast path cannot number: the
    general path then names them. With ``h3_res`` the cells are H3 hexagons (``data.h3_cells``)."""
    seconds = opened.seconds
    if h3_res is not None:
        cell_size_m = h3_cell_size_m(h3_res)
    try:
        with engine.begin() as conn:
            info = resolve_area(conn, area)
            stream = _Stream(opened, info, clip=clip, source=source, cell_size_m=cell_size_m, h3_res=h3_res)
            raw = driver_of(conn)
            start, busy = time.perf_counter(), stream.busy()
            if append:
                count = append_points(raw, info.id, stream.blocks())
                seconds["COPY points"] = time.perf_counter() - start - (stream.busy() - busy)
                _some_inside(count, source, info)
                t = time.perf_counter()
                if h3_res is not None:
                    cells, total = aggregate_h3(conn, info, h3_res, source=source)
                else:
                    cells = aggregate_cells(conn, info, cell_size_m, source=source)
                    total = conn.execute(text("SELECT coalesce(sum(weight), 0) FROM area_cells WHERE area_id = :a"),
                                         {"a": info.id}).scalar_one()
                seconds["cells"] = seconds.get("cells", 0.0) + time.perf_counter() - t
            else:
                loaded = load_points(raw, info.id, stream.blocks())
                seconds["COPY points"] = time.perf_counter() - start - (stream.busy() - busy)
                count = loaded.count
                _some_inside(count, source, info)
                t = time.perf_counter()
                grid = stream.cells()
                seconds["cells"] = seconds.get("cells", 0.0) + time.perf_counter() - t
                t = time.perf_counter()
                layer = new_layer(conn, info, source=source, cell_size_m=cell_size_m, attach=False,
                                  params=None if h3_res is None else h3_params(h3_res))
                if isinstance(grid, H3Cells):
                    copy_h3_cells(raw, info, grid, layer, table=cells_table(layer))
                else:
                    copy_cells(raw, info, grid, layer, table=cells_table(layer))
                seconds["COPY cells"] = time.perf_counter() - t
                t = time.perf_counter()
                attach_cells(conn, layer)
                seconds["index cells"] = time.perf_counter() - t
                t = time.perf_counter()
                cells, total = close_layer(conn, layer, lattice=h3_res is None)
                seconds["close layer"] = time.perf_counter() - t
                t = time.perf_counter()
                swap_points(raw, loaded)
                seconds["swap"] = time.perf_counter() - t
            t = time.perf_counter()
        seconds["commit"] = time.perf_counter() - t
    except Declined:
        return None
    notes = list(opened.notes)
    if any("timestamp" in names for names in opened.columns.values()):
        notes.append(f"不带时区的时间按 {timezone} 当地时间 / times without an offset are local time in {timezone}")
    return DemandSummary(info.name, count, stream.dropped, cells, float(total), cell_size_m, opened.used, notes,
                         dict(seconds))


def _some_inside(count: int, source: str, area: AreaInfo) -> None:
    if count == 0:
        raise InvalidInput(f"{source}: 区域 {area.name!r} 内没有需求点 / no demand points inside area {area.name!r}")


class _Stream:
    """A fast file's batches made into blocks to store: each batch tested against the area (``clip`` drops the
    points outside it, else they are collected, up to 200, and raised as one ImportRejected after the last batch),
    its metres in the area's CRS computed and its points summed into their squares of ``cell_size_m`` metres, or
    with ``h3_res`` into their H3 cells (while the server stores the batch before), each timed in the file's
    ``seconds`` (metres, cells, H3 cells). ``busy`` is the time spent reading, checking and preparing the blocks,
    so that the caller can tell the time the COPY itself took."""

    def __init__(self, opened: FastFile, area: AreaInfo, *, clip: bool, source: str, cell_size_m: float,
                 h3_res: int | None = None) -> None:
        self.opened, self.area, self.clip, self.source, self.size = opened, area, clip, source, cell_size_m
        self.dropped = 0
        self.sums: CellSums | H3Sums = CellSums(area, cell_size_m) if h3_res is None else H3Sums(h3_res)
        self.within = BoundaryTest(area.boundary) if area.boundary is not None else None

    def busy(self) -> float:
        s = self.opened.seconds
        return sum(s.get(k, 0.0) for k in ("read", "check", "transform", "area test", "metres", "cells", "H3 cells"))

    def cells(self) -> FastCells | H3Cells:
        """The points stored, summed by square (as they were stored: ``CellSums``) or by H3 cell (``H3Sums``)."""
        return self.sums.cells()

    def blocks(self) -> Iterator[PointBlock]:
        seconds = self.opened.seconds
        problems: list[RowProblem] = []
        for batch in self.opened.batches:
            t = time.perf_counter()
            ok = (self.within(batch.lon, batch.lat) if self.within is not None
                  else np.ones(len(batch.lon), dtype=bool))
            seconds["area test"] = seconds.get("area test", 0.0) + time.perf_counter() - t
            if not ok.all():
                if not self.clip:
                    if batch.rows is None:
                        raise Declined
                    problems += self._outside(batch, ok, 200 - len(problems))
                    continue
                self.dropped += int((~ok).sum())
                batch = batch.take(ok)
            if problems or not len(batch):
                continue
            t = time.perf_counter()
            x, y = metres(batch.lon, batch.lat, self.area.crs_epsg)
            seconds["metres"] = seconds.get("metres", 0.0) + time.perf_counter() - t
            t = time.perf_counter()
            if isinstance(self.sums, H3Sums):
                self.sums.add_points(batch.lon, batch.lat, batch.weight)
                seconds["H3 cells"] = seconds.get("H3 cells", 0.0) + time.perf_counter() - t
            else:
                self.sums.add(*grid_indices(x, y, self.size), batch.weight)
                seconds["cells"] = seconds.get("cells", 0.0) + time.perf_counter() - t
            yield PointBlock(batch.lon, batch.lat, x, y, batch.weight, batch.micros, batch.has_time)
        if problems:
            raise ImportRejected(self.source, problems)

    def _outside(self, batch: FastPoints, ok: np.ndarray, room: int) -> list[RowProblem]:
        assert batch.rows is not None
        where = _position_field(self.opened.columns)
        name = self.area.name
        return [RowProblem(int(batch.rows[i]), where, f"{batch.lon[i]:.6f}, {batch.lat[i]:.6f}",
                           f"区域 {name!r} 内的点（或加 --clip 丢弃区域外的点）/ a point inside area {name!r} (or pass "
                           f"--clip to drop outside points)") for i in np.flatnonzero(~ok)[:max(room, 0)]]


def _position_field(columns: Mapping[str, Mapping[str, str]]) -> str:
    """The file's longitude/latitude columns as a message names them (``收货经度/收货纬度``, ``lon/lat``)."""
    names = next(iter(columns.values()), {})
    lon, lat = names.get("lon", "lon"), names.get("lat", "lat")
    return lon if lon == lat else f"{lon}/{lat}"


def _polygon_grid(path: Path) -> gpd.GeoDataFrame | None:
    """The file's features when it is a GeoJSON/GPKG/GeoParquet of polygons (a ready grid), else None."""
    if path.suffix.lower() not in {".geojson", ".json", ".gpkg", ".parquet", ".geoparquet"} or not path.exists():
        return None
    import geopandas as gpd
    try:
        gdf = gpd.read_parquet(path) if "parquet" in path.suffix.lower() else gpd.read_file(path)
    except Exception as exc:
        raise InvalidInput(f"{path.name}: cannot read demand data: {exc}") from exc
    if gdf.empty or not gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        return None
    return gdf


def import_grid(engine: Engine, grid: gpd.GeoDataFrame, *, source: str, area: str | None = None,
                weight_column: str = "weight") -> DemandSummary:
    """Store a ready demand grid (polygons with a weight, any CRS) as the area's cells, replacing its demand.

    The cell size recorded is the square root of the mean cell area in the area's CRS (metres).
    """
    if grid.crs is None:
        raise InvalidInput(f"{source}: the grid has no CRS; save it with one (EPSG:4326 expected)")
    cols = {str(c).lower(): c for c in grid.columns}
    wcol = cols.get(weight_column) or cols.get("权重") or cols.get("count")
    if wcol is None:
        raise InvalidInput(f"{source}: a demand grid needs a {weight_column!r} column (number >= 0 per cell)")
    w = pd.to_numeric(grid[wcol], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise ImportRejected(source, [RowProblem(int(i) + 1, str(wcol), grid[wcol].iloc[i], "a number >= 0")
                                      for i in bad[:200]])
    key_col = cols.get("cell_id") or cols.get("id")
    keys = grid[key_col].astype(str).tolist() if key_col is not None else [f"cell:{i + 1}" for i in range(len(grid))]
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"{source}: cell ids in column {key_col!r} repeat; each cell needs its own id")
    cells = grid.to_crs(SRID)
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        size = float(np.sqrt(grid.to_crs(info.crs_epsg).area.mean()))
        drop_points(driver_of(conn), info.id)
        layer = new_layer(conn, info, source=source, cell_size_m=size)
        centres = grid.to_crs(info.crs_epsg).geometry.centroid
        conn.execute(text(f"""
            INSERT INTO demand_cells (area_id, layer_id, cell_key, cell_size_m, weight, points, geom, centroid, x, y)
            VALUES (:a, :layer, :k, :size, :w, 0, ST_GeomFromText(:g, {SRID}), ST_GeomFromText(:c, {SRID}), :x,
                    :y)"""), [
            {"a": info.id, "layer": layer, "k": k, "size": size, "w": float(wi), "g": geom.wkt,
             "c": geom.representative_point().wkt, "x": float(x), "y": float(y)}
            for k, wi, geom, x, y in zip(keys, w, _polygons(cells.geometry, source), centres.x, centres.y,
                                         strict=True)])
        close_layer(conn, layer)
    return DemandSummary(info.name, 0, 0, len(cells), float(w.sum()), size)


def _polygons(geoms: gpd.GeoSeries, source: str) -> list[BaseGeometry]:
    """Cells are single polygons; a one-part multipolygon is unwrapped, a many-part one is refused."""
    out: list[BaseGeometry] = []
    for i, g in enumerate(geoms, start=1):
        if g.geom_type == "MultiPolygon":
            if len(g.geoms) != 1:
                raise InvalidInput(f"{source}: feature {i} has {len(g.geoms)} parts; a grid cell must be one polygon")
            g = g.geoms[0]
        out.append(g)
    return out
