"""Delivery demand: raw points (lon, lat, weight, time) imported into PostGIS and summed into grid cells.

Cells are squares of ``cell_size_m`` metres in the area's metric CRS, aggregated in PostGIS; each keeps
its total weight, point count, polygon and centre (stored in WGS 84).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine, text

from yizhan.areas import AreaInfo, resolve_area
from yizhan.db.models import SRID
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.geo.coords import COORD_SYSTEMS, to_wgs84

HEADERS = {"经度": "lon", "纬度": "lat", "权重": "weight", "订单量": "weight", "时间": "timestamp",
           "longitude": "lon", "lng": "lon", "latitude": "lat", "count": "weight", "orders": "weight",
           "time": "timestamp", "observed_at": "timestamp"}


@dataclass
class DemandSummary:
    """What a demand import stored: points read, points dropped outside the area, cells, total weight."""

    area: str
    points: int
    dropped_outside: int
    cells: int
    weight_total: float
    cell_size_m: float


def demand_frame_from_file(path: Path | str) -> pd.DataFrame:
    """Read demand points from CSV (UTF-8/GBK), GeoJSON or GeoParquet into ``lon, lat, weight, timestamp, _row``.

    ``lon``/``lat`` are degrees as written in the file (any supported coordinate system); weight defaults to 1.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise InvalidInput(f"{p}: no such file")
    if suffix in {".csv", ".txt"}:
        raw = p.read_bytes()
        if not raw.strip():
            raise InvalidInput(f"{p.name}: the file is empty")
        for enc in ("utf-8-sig", "gb18030"):
            try:
                textdata = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise InvalidInput(f"{p.name}: the file is neither UTF-8 nor GBK text")
        df = pd.read_csv(io.StringIO(textdata), dtype=str, keep_default_na=False)
        first = 2
    elif suffix in {".geojson", ".json", ".parquet", ".geoparquet"}:
        try:
            gdf = gpd.read_parquet(p) if "parquet" in suffix else gpd.read_file(p)
        except Exception as exc:
            raise InvalidInput(f"{p.name}: cannot read demand points: {exc}") from exc
        if gdf.crs is not None and gdf.crs.to_epsg() != SRID:
            gdf = gdf.to_crs(SRID)
        bad = ~gdf.geometry.geom_type.isin(["Point"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInput(f"{p.name}: feature {i + 1} is a {gdf.geometry.iloc[i].geom_type}; points (or a "
                               "grid of polygons only) expected")
        df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).astype(str)
        df["lon"], df["lat"] = gdf.geometry.x.astype(str), gdf.geometry.y.astype(str)
        first = 1
    else:
        raise InvalidInput(f"{p.name}: unsupported type {suffix or '(none)'}; expected .csv, .geojson or .parquet")
    df = df.rename(columns={c: HEADERS.get(str(c).strip(), HEADERS.get(str(c).strip().lower(), str(c).strip().lower()))
                            for c in df.columns})
    missing = [c for c in ("lon", "lat") if c not in df.columns]
    if missing:
        raise InvalidInput(f"{p.name}: missing column(s) {', '.join(missing)}; expected lon, lat[, weight, timestamp]")
    out = pd.DataFrame({"lon": df["lon"], "lat": df["lat"],
                        "weight": df.get("weight", "1"),
                        "timestamp": df.get("timestamp", "")})
    out["_row"] = np.arange(first, first + len(out))
    return out


def check_demand(df: pd.DataFrame, *, source: str, coord: str = "wgs84") -> pd.DataFrame:
    """Validate and convert to WGS 84: returns ``lon, lat, weight, observed_at``; ImportRejected lists bad rows."""
    if coord not in COORD_SYSTEMS:
        raise InvalidInput(f"coord={coord!r}: expected one of {', '.join(COORD_SYSTEMS)}")
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(float)
    w = pd.to_numeric(df["weight"].replace("", "1"), errors="coerce").to_numpy(float)
    ts = pd.to_datetime(df["timestamp"].replace("", None), errors="coerce", utc=True, format="mixed")
    rows = df["_row"].to_numpy()
    problems: list[RowProblem] = []
    checks = [
        ("lon", df["lon"], ~np.isfinite(lon) | (np.abs(lon) > 180), "a longitude in degrees, -180 to 180"),
        ("lat", df["lat"], ~np.isfinite(lat) | (np.abs(lat) > 90), "a latitude in degrees, -90 to 90"),
        ("weight", df["weight"], ~np.isfinite(w) | (w < 0), "a number >= 0"),
        ("timestamp", df["timestamp"], (df["timestamp"] != "").to_numpy() & ts.isna().to_numpy(),
         "an ISO date-time such as 2026-11-25T12:30:00+08:00"),
    ]
    for name, values, mask, expected in checks:
        for i in np.flatnonzero(mask)[:1000]:
            problems.append(RowProblem(int(rows[i]), name, values.iloc[i], expected))
    if problems:
        problems.sort(key=lambda p: p.row)
        raise ImportRejected(source, problems)
    wlon, wlat = to_wgs84(lon, lat, coord)
    return pd.DataFrame({"lon": wlon, "lat": wlat, "weight": w, "observed_at": ts, "_row": rows})


def _copy_points(conn: Connection, area_id: int, pts: pd.DataFrame) -> None:
    buf = io.StringIO()
    obs = pts["observed_at"].map(lambda t: "\\N" if pd.isna(t) else t.isoformat())
    pd.DataFrame({"a": area_id, "w": pts["weight"], "t": obs,
                  "g": [f"SRID={SRID};POINT({x!r} {y!r})" for x, y in zip(pts["lon"], pts["lat"], strict=True)]}
                 ).to_csv(buf, sep="\t", header=False, index=False)
    raw = conn.connection.driver_connection
    assert raw is not None, "an open connection has its psycopg connection"
    with raw.cursor() as cur, cur.copy("COPY demand_points (area_id, weight, observed_at, geom) FROM STDIN") as cp:
        cp.write(buf.getvalue())


def _check_cell_size(cell_size_m: float) -> None:
    if not math.isfinite(cell_size_m) or not 10 <= cell_size_m <= 5000:
        raise InvalidInput(f"cell size {cell_size_m} m: expected 10 to 5000 metres")


def aggregate_cells(conn: Connection, area: AreaInfo, cell_size_m: float) -> int:
    """Replace the area's cells by its points summed into ``cell_size_m`` squares (metres, area CRS)."""
    _check_cell_size(cell_size_m)
    conn.execute(text("DELETE FROM demand_cells WHERE area_id = :a"), {"a": area.id})
    return conn.execute(text(f"""
        INSERT INTO demand_cells (area_id, cell_key, cell_size_m, weight, points, geom, centroid)
        SELECT :a, :size || 'm:' || ix || ':' || iy, :size, sum(weight), count(*),
               ST_Transform(ST_MakeEnvelope(ix * :size, iy * :size, (ix + 1) * :size, (iy + 1) * :size, :crs),
                            {SRID}),
               ST_Transform(ST_SetSRID(ST_MakePoint((ix + 0.5) * :size, (iy + 0.5) * :size), :crs), {SRID})
        FROM (SELECT floor(ST_X(p) / :size)::bigint AS ix, floor(ST_Y(p) / :size)::bigint AS iy, weight
              FROM (SELECT ST_Transform(geom, :crs) AS p, weight FROM demand_points WHERE area_id = :a) t) g
        GROUP BY ix, iy"""), {"a": area.id, "size": float(cell_size_m), "crs": area.crs_epsg}).rowcount


def import_demand(engine: Engine, path: Path | str, *, area: str | None = None, coord: str = "wgs84",
                  cell_size_m: float = 200.0, append: bool = False, clip: bool = False) -> DemandSummary:
    """Import demand points into an area and rebuild its cells, in one transaction.

    By default the file replaces the area's points; ``append`` adds to them. Points outside the area are an
    error listing them, unless ``clip`` drops them (their count is reported).
    """
    _check_cell_size(cell_size_m)
    source = Path(path).name
    grid = _polygon_grid(Path(path))
    if grid is not None:
        return import_grid(engine, grid, source=source, area=area)
    pts = check_demand(demand_frame_from_file(path), source=source, coord=coord)
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        dropped = 0
        inside = info.contains(pts["lon"].to_numpy(), pts["lat"].to_numpy())
        if not inside.all():
            if not clip:
                outside = pts[~inside]
                raise ImportRejected(source, [
                    RowProblem(int(row), "lon/lat", f"{x:.6f}, {y:.6f}",
                               f"a point inside area {info.name!r} (or pass --clip to drop outside points)")
                    for row, x, y in outside[["_row", "lon", "lat"]].head(200).itertuples(index=False)])
            dropped = int((~inside).sum())
            pts = pts[inside]
        if pts.empty:
            raise InvalidInput(f"{source}: no demand points inside area {info.name!r}")
        if not append:
            conn.execute(text("DELETE FROM demand_points WHERE area_id = :a"), {"a": info.id})
        _copy_points(conn, info.id, pts)
        cells = aggregate_cells(conn, info, cell_size_m)
        total = conn.execute(text("SELECT coalesce(sum(weight), 0) FROM demand_cells WHERE area_id = :a"),
                             {"a": info.id}).scalar_one()
    return DemandSummary(info.name, len(pts), dropped, cells, float(total), cell_size_m)



def _polygon_grid(path: Path) -> gpd.GeoDataFrame | None:
    """The file's features when it is a GeoJSON/GPKG/GeoParquet of polygons (a ready grid), else None."""
    if path.suffix.lower() not in {".geojson", ".json", ".gpkg", ".parquet", ".geoparquet"} or not path.exists():
        return None
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
        conn.execute(text("DELETE FROM demand_points WHERE area_id = :a"), {"a": info.id})
        conn.execute(text("DELETE FROM demand_cells WHERE area_id = :a"), {"a": info.id})
        conn.execute(text(f"""
            INSERT INTO demand_cells (area_id, cell_key, cell_size_m, weight, points, geom, centroid)
            VALUES (:a, :k, :size, :w, 0, ST_GeomFromText(:g, {SRID}), ST_GeomFromText(:c, {SRID}))"""), [
            {"a": info.id, "k": k, "size": size, "w": float(wi), "g": geom.wkt, "c": geom.representative_point().wkt}
            for k, wi, geom in zip(keys, w, _polygons(cells.geometry, source), strict=True)])
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
