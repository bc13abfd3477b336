"""A demand file read into rows: the position, weight and time of each order as written, before any value is
checked (``data.demand.check_demand``).

Files:

- CSV (``.csv``, ``.txt``, ``.tsv``) and XLSX order exports, read by ``stations.tables`` (UTF-8, GBK or Big5;
  commas, tabs, semicolons or bars; title rows above the header; every sheet with the headers; size limits).
- GeoJSON, GeoPackage and GeoParquet points (any CRS the file declares, transformed to WGS 84 lon/lat).
- Shapefiles (``.shp``, or a ``.zip`` holding one), their text in the encoding of the ``.cpg`` or ``--encoding``
  or detected (``data.shapefiles``); the ``.prj`` gives the CRS, transformed to WGS 84 lon/lat.

The columns used are chosen by ``data.demand_columns``; in a file with point geometry the geometry gives the
position unless the caller names the longitude and latitude columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from yizhan.data.demand_columns import ColumnChoice, DemandColumns, choose_columns, header_score
from yizhan.data.shapefiles import read_point_shapefile
from yizhan.db.models import SRID
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.stations.tables import ImportLimits, read_file

TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
GEOMETRY_SUFFIXES = (".geojson", ".json", ".gpkg", ".parquet", ".geoparquet")
SHAPEFILE_SUFFIXES = (".shp", ".zip")
ROW_FIELDS = ("lon", "lat", "weight", "timestamp")
"""The text columns of ``DemandRows.frame``; ``timestamp`` is the choice's ``time``."""
_CHOICE_FIELD = {"lon": "lon", "lat": "lat", "weight": "weight", "timestamp": "time"}


@dataclass
class DemandRows:
    """The rows of a demand file.

    ``frame`` holds ``lon``, ``lat`` (degrees in the coordinate system the caller names, or WGS 84 from a point
    geometry), ``weight`` and ``timestamp`` as written (blank when the file has no such column), ``_row`` (the
    row a spreadsheet shows, or the feature number from 1) and, for a workbook read from several sheets,
    ``_sheet``. ``columns`` gives the file's column of each field (``lon``, ``lat``, ``weight``, ``timestamp``),
    by sheet (``""`` for a file of one part); ``used`` says in one line which columns were used, ``notes`` what
    else the reader noticed (a position pair left out, the encoding of a shapefile).
    """

    frame: pd.DataFrame
    columns: dict[str, dict[str, str]]
    used: str
    notes: list[str] = field(default_factory=list)
    geographic: bool = True
    """Whether ``lon``/``lat`` are degrees as the file wrote them (so ``--coord`` applies), not a projected
    geometry the reader transformed."""


def demand_rows_from_file(path: Path | str, *, columns: DemandColumns = DemandColumns(),
                          encoding: str | None = None, limits: ImportLimits = ImportLimits()) -> DemandRows:
    """Read the demand file ``path`` (see the module's docstring). ``columns`` names columns instead of the
    header tables; ``encoding`` (``gbk``, ``utf-8``) is a shapefile's when it has no ``.cpg`` or a wrong one;
    ``limits`` bound the rows read and a workbook's or zip's unpacked size. InvalidInput (ImportRejected when
    rows are named) says what is wrong, in one line naming the file."""
    p = Path(path)
    source = p.name
    suffix = p.suffix.lower()
    if not p.exists():
        raise InvalidInput(f"{source}: 文件不存在 / no such file")
    if encoding is not None and suffix not in SHAPEFILE_SUFFIXES:
        raise InvalidInput(f"{source}: --encoding 只用于 shapefile / --encoding is for shapefiles (.shp, .zip); the "
                           f"encoding of a CSV file is found by itself (UTF-8, GBK or Big5)")
    if suffix in TABLE_SUFFIXES:
        return _table_rows(p, source, columns, limits)
    if suffix in GEOMETRY_SUFFIXES:
        try:
            gdf = gpd.read_parquet(p) if "parquet" in suffix else gpd.read_file(p)
        except Exception as exc:  # pyogrio's and pyarrow's errors for a damaged file
            raise InvalidInput(f"{source}: 无法读取需求点 / cannot read demand points: {exc}") from exc
        if len(gdf) > limits.max_rows:
            raise InvalidInput(f"{source}: {len(gdf):,} features, more than the limit of {limits.max_rows:,} "
                               f"(YIZHAN_MAX_IMPORT_ROWS); split the file")
        return _geometry_rows(gdf, source, columns, [])
    if suffix in SHAPEFILE_SUFFIXES:
        shp = read_point_shapefile(p, encoding=encoding, limits=limits)
        how = {"--encoding": "--encoding", ".cpg": "由 .cpg / from the .cpg", "detected": "自动识别 / detected"}
        note = f"编码 / encoding: {shp.encoding.upper()} ({how[shp.encoding_from]})"
        return _geometry_rows(shp.frame, source, columns, [note])
    raise InvalidInput(f"{source}: 不支持的文件类型 / unsupported file type {suffix or '(none)'}; expected .csv, "
                       f".xlsx, .geojson, .gpkg, .parquet, .shp or a .zip holding a shapefile")


def _table_rows(path: Path, source: str, columns: DemandColumns, limits: ImportLimits) -> DemandRows:
    """The rows of a CSV file or workbook, a part (a sheet) and a chunk of rows at a time: only the four columns
    used are kept, so a wide platform export costs no more memory than its positions."""
    table = read_file(path, score=lambda cells: header_score(cells, columns), limits=limits)
    parts: list[tuple[str, pd.DataFrame, ColumnChoice]] = []
    for part in table.parts:  # a part's rows are read before the next part is
        sheet = part.sheet or ""
        where = f" (sheet {sheet!r})" if sheet else ""
        choice = choose_columns(part.headers, source=f"{source}{where}", columns=columns, hint=part.hint)
        kept = [_used_rows(chunk, choice) for chunk in part.chunks]
        rows = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0] if kept else _used_rows(
            pd.DataFrame(columns=[*part.headers, "_row"], dtype=str), choice)
        parts.append((sheet, rows, choice))
    several = len(parts) > 1
    used: list[str] = []
    notes: list[str] = []
    for sheet, rows, choice in parts:
        if several:
            rows["_sheet"] = sheet
        line = choice.describe() + (f" ({sheet})" if several else "")
        used += [line] if line not in used else []
        notes += [n for n in choice.notes if n not in notes]
    if table.sheets:
        notes.append(f"读取的工作表 / sheets read: {', '.join(table.sheets)}")
    frame = pd.concat([r for _, r, _ in parts], ignore_index=True) if several else parts[0][1]
    if frame.empty:
        raise InvalidInput(f"{source}: 文件有表头但没有订单行 / the file has a header but no order rows")
    return DemandRows(frame, {(sheet if several else ""): _names(choice) for sheet, _, choice in parts},
                      "; ".join(used), notes)


def _used_rows(chunk: pd.DataFrame, choice: ColumnChoice) -> pd.DataFrame:
    """The columns of ``chunk`` that ``choice`` uses, as ``ROW_FIELDS`` (blank for a field the file lacks) and
    ``_row``; rows blank in every used column (blank lines) left out."""
    rows = pd.DataFrame({name: (chunk[col] if (col := _column(choice, name)) else "") for name in ROW_FIELDS},
                        index=chunk.index)
    if choice.date is not None and choice.time is not None:
        rows["timestamp"] = _date_and_clock(chunk[choice.date], chunk[choice.time])
    rows["_row"] = chunk["_row"].to_numpy()
    blank = np.ones(len(rows), dtype=bool)
    for name in ROW_FIELDS:
        if _column(choice, name):
            blank &= (rows[name] == "").to_numpy()  # the reader strips leading spaces
    return (rows[~blank] if blank.any() else rows).reset_index(drop=True)


def _date_and_clock(dates: pd.Series, clocks: pd.Series) -> pd.Series:
    """One time cell from a date cell and a time-of-day cell (``2026-11-25`` + ``12:30``); a workbook's date
    cell (``2026-11-25 00:00:00``) loses its midnight first; a blank time of day leaves the date alone, and a
    time cell that holds a date itself (``2026-11-25 12:30``) is taken as it is."""
    day = dates.astype(str).str.strip().str.replace(r" 00:00:00$", "", regex=True)
    clock = clocks.astype(str).str.strip()
    whole = clock.str.contains(r"[-/年]|^[0-9]{8}", regex=True).to_numpy(dtype=bool)
    joined = day.where(clock == "", day + " " + clock)
    return joined.where(~whole, clock)


def _column(choice: ColumnChoice, name: str) -> str | None:
    column: str | None = getattr(choice, _CHOICE_FIELD[name])
    return column


def _names(choice: ColumnChoice) -> dict[str, str]:
    return {name: col for name in ROW_FIELDS if (col := _column(choice, name))}


def _text(values: pd.Series) -> pd.Series:
    """An attribute column as the text a CSV of it would hold; blank for a null."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S%z").fillna("")
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    return values.astype(str).where(values.notna(), "")


def _geometry_rows(gdf: gpd.GeoDataFrame, source: str, columns: DemandColumns, notes: list[str]) -> DemandRows:
    """The rows of a file of point features: positions from the geometry (in WGS 84) unless ``columns`` names the
    longitude and latitude columns; weight and time from the attributes."""
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    choice = choose_columns(list(attrs.columns), source=source, columns=columns, position=False)
    rows = pd.DataFrame({name: (_text(attrs[col]) if (col := _column(choice, name)) else "")
                         for name in ("weight", "timestamp")}, index=attrs.index)
    geographic = True
    if choice.lon is not None and choice.lat is not None:
        rows["lon"], rows["lat"] = _text(attrs[choice.lon]), _text(attrs[choice.lat])
        used = choice.describe()
    else:
        geoms = gdf.geometry
        bad = ~geoms.geom_type.isin(["Point"]).to_numpy() | geoms.is_empty.to_numpy()
        if bad.any():
            raise ImportRejected(source, [
                RowProblem(int(i) + 1, "geometry", geoms.iloc[i].geom_type if geoms.iloc[i] is not None else "(none)",
                           "点 / a Point (one order is one point; a ready grid is polygons only)")
                for i in np.flatnonzero(bad)[:1000]])
        crs = gdf.crs
        where = "点几何 / point geometry"
        if crs is not None and crs.to_epsg() != SRID:
            geographic = bool(crs.is_geographic)
            where += f" ({crs.to_string()} → WGS 84)"
            geoms = geoms.to_crs(SRID)
        rows["lon"], rows["lat"] = geoms.x.to_numpy(), geoms.y.to_numpy()
        used = ", ".join(filter(None, [f"经度 longitude, 纬度 latitude={where}", choice.describe()]))
    rows["_row"] = np.arange(1, len(rows) + 1)
    if rows.empty:
        raise InvalidInput(f"{source}: 文件中没有要素 / the file has no features")
    names = _names(choice)
    if choice.lon is None:
        names |= {"lon": "geometry", "lat": "geometry"}
    return DemandRows(rows[[*ROW_FIELDS, "_row"]].reset_index(drop=True), {"": names}, used, notes, geographic)
