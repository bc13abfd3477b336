"""Delivery demand: raw points (lon, lat, weight, time) imported into PostGIS and summed into grid cells.

Cells are squares of ``cell_size_m`` metres in the area's metric CRS, aggregated in PostGIS; each keeps
its total weight, point count, polygon and centre (stored in WGS 84).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
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
        import geopandas as gpd

        try:
            gdf = gpd.read_parquet(p) if "parquet" in suffix else gpd.read_file(p)
        except Exception as exc:
            raise InvalidInput(f"{p.name}: cannot read demand points: {exc}") from exc
        if gdf.crs is not None and gdf.crs.to_epsg() != SRID:
            gdf = gdf.to_crs(SRID)
        bad = ~gdf.geometry.geom_type.isin(["Point"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInput(f"{p.name}: feature {i + 1} is a {gdf.geometry.iloc[i].geom_type}; points expected")
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
    pts = check_demand(demand_frame_from_file(path), source=source, coord=coord)
    with engine.begin() as conn:
        info = resolve_area(conn, area)
        dropped = 0
        if info.boundary is not None:
            import shapely

            inside = shapely.covers(info.boundary, shapely.points(pts["lon"].to_numpy(), pts["lat"].to_numpy()))
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

