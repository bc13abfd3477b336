"""Candidate sites for new stations: existing premises that could host one ("waking up idle social resources").

From an OSM extract (fuel stations, banks, convenience shops, supermarkets, post offices, community centres,
townhalls, government and union offices) or from a CSV/XLSX/GeoJSON file of sites the union already has
agreements with. Each candidate has a host type; planners may exclude host types or draw no-go polygons.
Stored per area in PostGIS as WGS 84 lon/lat points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.errors
import shapely.geometry
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from yizhan.areas import AreaInfo
from yizhan.db.models import SRID
from yizhan.errors import ImportRejected, InvalidInput, RowProblem
from yizhan.geo.coords import COORD_SYSTEMS, to_wgs84
from yizhan.stations.columns import read_table

HOST_TYPES: dict[str, str] = {
    "fuel": "加油站",
    "bank": "银行网点",
    "convenience": "便利店",
    "supermarket": "超市",
    "shop": "商铺",
    "post_office": "邮局",
    "community_centre": "社区服务中心",
    "townhall": "街道办事处",
    "social_centre": "社区活动中心",
    "government": "政务服务中心",
    "party_service_centre": "党群服务中心",
    "union_office": "工会",
    "other": "其他",
}
OSM_HOST_TYPES: dict[tuple[str, str], str] = {
    ("amenity", "fuel"): "fuel",
    ("amenity", "bank"): "bank",
    ("shop", "convenience"): "convenience",
    ("shop", "supermarket"): "supermarket",
    ("amenity", "post_office"): "post_office",
    ("amenity", "community_centre"): "community_centre",
    ("amenity", "townhall"): "townhall",
    ("amenity", "social_centre"): "social_centre",
    ("office", "government"): "government",
    ("office", "administrative"): "government",
    ("office", "union"): "union_office",
}
_SYNONYMS = {"petrol_station": "fuel", "gas_station": "fuel", "加油站": "fuel", "银行": "bank",
             "便利店": "convenience", "商店": "shop", "商铺": "shop", "超市": "supermarket", "邮局": "post_office",
             "邮政": "post_office", "社区": "community_centre", "党群": "party_service_centre",
             "party_centre": "party_service_centre", "工会": "union_office", "街道办": "townhall"}
_HEADERS = {"id": "id", "编号": "id", "external_id": "id", "name": "name", "名称": "name",
            "host_type": "host_type", "host": "host_type", "类型": "host_type", "承办单位": "host_type",
            "依托单位": "host_type", "lon": "lon", "lng": "lon", "longitude": "lon", "经度": "lon",
            "lat": "lat", "latitude": "lat", "纬度": "lat", "address": "address", "地址": "address"}
COLUMNS = ["external_id", "name", "host_type", "address", "geometry"]


def host_type_code(value: object) -> str | None:
    """The host-type code of a code, its Chinese label or a common synonym; None when unknown."""
    s = str(value).strip()
    low = s.lower()
    if low in HOST_TYPES:
        return low
    for code, label in HOST_TYPES.items():
        if s == label:
            return code
    return _SYNONYMS.get(low, _SYNONYMS.get(s))


def check_host_types(values: list[str] | None) -> list[str]:
    """Host-type codes of ``values``; InvalidInput naming the unknown ones."""
    codes: list[str] = []
    bad: list[str] = []
    for v in values or []:
        c = host_type_code(v)
        (codes if c else bad).append(c or v)
    if bad:
        raise InvalidInput(f"host type: unknown {', '.join(map(repr, bad))}; expected any of {', '.join(HOST_TYPES)}")
    return codes


def candidates_from_extract(path: str | Path) -> gpd.GeoDataFrame:
    """Host POIs of an OSM extract (.osm or .osm.pbf) as candidates: ``external_id`` "osm:n123"/"osm:w45",
    ``name`` (the host-type label when unnamed), ``host_type``, ``address`` (None), Point geometry in EPSG:4326."""
    from yizhan.geo.osm import pois_from_extract

    pois = pois_from_extract(path)
    host = pd.Series([None] * len(pois), index=pois.index, dtype=object)
    for (key, value), code in OSM_HOST_TYPES.items():
        hit = host.isna() & pois[key].eq(value)
        host[hit] = code
    pois = pois[host.notna()]
    host = host[host.notna()]
    names = [n if n else HOST_TYPES[h] for n, h in zip(pois["name"], host, strict=True)]
    return gpd.GeoDataFrame({"external_id": "osm:" + pois["osm_id"], "name": names, "host_type": host.to_numpy(),
                             "address": None}, geometry=pois.geometry.to_numpy(), crs=SRID).reset_index(drop=True)


def candidates_from_file(path: str | Path | None = None, *, data: bytes | None = None, filename: str | None = None,
                         coord: str = "wgs84", default_host_type: str = "other") -> gpd.GeoDataFrame:
    """Candidate sites from a file: columns ``id, name, lon, lat`` (or 编号, 名称, 经度, 纬度; GeoJSON points
    need ``id`` and ``name`` properties), optional ``host_type`` (类型) and ``address`` (地址). ``coord`` is
    the coordinate system of lon/lat (wgs84, gcj02, bd09); stored as WGS 84. Every bad row is reported."""
    if coord not in COORD_SYSTEMS:
        raise InvalidInput(f"coord: {coord!r}; expected one of {', '.join(COORD_SYSTEMS)}")
    name = Path(filename or str(path)).name
    df, first_row = read_table(path, data=data, filename=filename)
    df = df.rename(columns={c: _HEADERS[str(c).strip().lower()] for c in df.columns
                            if str(c).strip().lower() in _HEADERS})
    missing = [c for c in ("id", "name", "lon", "lat") if c not in df.columns]
    if missing:
        raise InvalidInput(f"{name}: missing column(s) {', '.join(missing)}; expected id, name, lon, lat "
                           "(optional host_type, address)")
    if df.empty:
        raise InvalidInput(f"{name}: no rows")
    problems: list[RowProblem] = []
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(float)
    hosts = []
    seen: dict[str, int] = {}
    for n, row in enumerate(df.itertuples(index=False)):
        i = first_row + n  # the row number a spreadsheet shows
        rid = str(row.id).strip()
        if not rid or rid.lower() == "nan" or len(rid) > 100:
            problems.append(RowProblem(i, "id", row.id, "a non-empty id of up to 100 characters"))
        elif rid in seen:
            problems.append(RowProblem(i, "id", rid, f"a unique id (also on row {seen[rid]})"))
        seen.setdefault(rid, i)
        if not str(row.name).strip() or len(str(row.name)) > 200:
            problems.append(RowProblem(i, "name", row.name, "a name of 1 to 200 characters"))
        x, y = lon[n], lat[n]
        if not (np.isfinite(x) and -180 <= x <= 180):
            problems.append(RowProblem(i, "lon", row.lon, "longitude in degrees, -180 to 180"))
        if not (np.isfinite(y) and -90 <= y <= 90):
            problems.append(RowProblem(i, "lat", row.lat, "latitude in degrees, -90 to 90"))
        raw = getattr(row, "host_type", "") if "host_type" in df.columns else ""
        code = host_type_code(raw) if str(raw).strip() else default_host_type
        if code is None:
            problems.append(RowProblem(i, "host_type", raw, f"one of {', '.join(HOST_TYPES)} (or its Chinese name)"))
        hosts.append(code or "other")
    if problems:
        raise ImportRejected(name, problems)
    x, y = to_wgs84(lon, lat, coord)
    address = df["address"].astype(str).str.slice(0, 300) if "address" in df.columns else None
    return gpd.GeoDataFrame({"external_id": df["id"].astype(str).str.strip(),
                             "name": df["name"].astype(str).str.strip(), "host_type": hosts, "address": address},
                            geometry=shapely.points(x, y), crs=SRID)


def filter_candidates(cands: gpd.GeoDataFrame, area: AreaInfo, *, exclude_host_types: list[str] | None = None,
                      no_go: BaseGeometry | None = None) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Candidates inside the area, not of an excluded host type, not in a no-go polygon (EPSG:4326); with
    how many each rule removed."""
    excluded = set(check_host_types(exclude_host_types))
    lon, lat = cands.geometry.x.to_numpy(), cands.geometry.y.to_numpy()
    outside = ~area.contains(lon, lat)
    by_host = cands["host_type"].isin(excluded).to_numpy() & ~outside
    in_no_go = (shapely.covers(no_go, shapely.points(lon, lat)) if no_go is not None and not no_go.is_empty
                else np.zeros(len(cands), dtype=bool)) & ~outside & ~by_host
    keep = ~(outside | by_host | in_no_go)
    return cands[keep].reset_index(drop=True), {"outside_area": int(outside.sum()),
                                                "excluded_host_type": int(by_host.sum()),
                                                "in_no_go_area": int(in_no_go.sum())}


def no_go_from_file(path: str | Path) -> BaseGeometry:
    """No-go polygons (GeoJSON, GPKG, Shapefile; any CRS) merged into one geometry in EPSG:4326."""
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several kinds
        raise InvalidInput(f"{path}: cannot read no-go polygons (GeoJSON, GPKG or Shapefile expected): {exc}") from exc
    return no_go_from_frame(gdf, str(path))


def no_go_from_frame(gdf: gpd.GeoDataFrame, source: str) -> BaseGeometry:
    """The polygons of ``gdf`` merged, in EPSG:4326; InvalidInput when there are none."""
    if gdf.crs is None:
        gdf = gdf.set_crs(SRID)
    geoms = gdf.to_crs(SRID).geometry
    polys = geoms[geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise InvalidInput(f"{source}: no polygons for no-go areas")
    merged: BaseGeometry = shapely.make_valid(polys.union_all())
    return merged


def no_go_from_geojson(obj: dict[str, Any] | None, *, coord: str = "wgs84") -> BaseGeometry | None:
    """No-go polygons from a GeoJSON geometry, Feature or FeatureCollection whose lon/lat are in ``coord``
    (wgs84, gcj02, bd09); merged, in EPSG:4326. InvalidInput says what is wrong."""
    if obj is None:
        return None
    try:
        if obj.get("type") == "FeatureCollection":
            geoms = [shapely.geometry.shape(f["geometry"]) for f in obj["features"]]
        elif obj.get("type") == "Feature":
            geoms = [shapely.geometry.shape(obj["geometry"])]
        else:
            geoms = [shapely.geometry.shape(obj)]
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise InvalidInput(f"no_go: not a GeoJSON polygon, feature or feature collection ({exc})") from exc
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys or len(polys) != len(geoms):
        raise InvalidInput("no_go: expected Polygon or MultiPolygon geometries only")
    merged = shapely.make_valid(shapely.union_all(polys))
    xy = shapely.get_coordinates(merged)
    if not (np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()):
        raise InvalidInput("no_go: coordinates must be finite lon, lat degrees")
    if coord != "wgs84":
        merged = shapely.transform(merged, lambda c: np.column_stack(to_wgs84(c[:, 0], c[:, 1], coord)))
    return merged


def store_candidates(conn: Connection, area: AreaInfo, cands: gpd.GeoDataFrame, *, source: str) -> dict[str, int]:
    """Insert or update candidates of ``area`` by ``external_id`` (one transaction: the caller's). Candidates
    outside the area are rejected, naming them. Returns counts: rows, inserted, updated."""
    outside = ~area.contains(cands.geometry.x.to_numpy(), cands.geometry.y.to_numpy())
    if outside.any():
        probs = [RowProblem(int(i) + 2, "lon/lat", f"{p.x:.6f},{p.y:.6f}", f"a point inside area {area.name!r}")
                 for i, p in zip(np.flatnonzero(outside)[:100], cands.geometry[outside][:100], strict=True)]
        raise ImportRejected(f"{source} ({int(outside.sum())} candidate(s) outside area {area.name!r})", probs)
    rows = [{"a": area.id, "id": r.external_id, "n": r.name[:200], "h": r.host_type,
             "addr": r.address if isinstance(r.address, str) else None, "s": source[:200], "x": r.geometry.x,
             "y": r.geometry.y} for r in cands.itertuples()]
    if not rows:
        return {"rows": 0, "inserted": 0, "updated": 0}
    before = conn.execute(text("SELECT count(*) FROM candidate_sites WHERE area_id = :a"), {"a": area.id}).scalar_one()
    conn.execute(text(f"""
        INSERT INTO candidate_sites (area_id, external_id, name, host_type, address, source, geom, updated_at)
        VALUES (:a, :id, :n, :h, :addr, :s, ST_SetSRID(ST_MakePoint(:x, :y), {SRID}), now())
        ON CONFLICT (area_id, external_id) DO UPDATE SET name = EXCLUDED.name, host_type = EXCLUDED.host_type,
            address = EXCLUDED.address, source = EXCLUDED.source, geom = EXCLUDED.geom, updated_at = now()"""), rows)
    after = conn.execute(text("SELECT count(*) FROM candidate_sites WHERE area_id = :a"), {"a": area.id}).scalar_one()
    return {"rows": len(rows), "inserted": int(after - before), "updated": len(rows) - int(after - before)}


def load_candidates(conn: Connection, area_id: int) -> gpd.GeoDataFrame:
    """The area's stored candidates (EPSG:4326), ordered by id, with a ``source`` column."""
    df = gpd.read_postgis(text("SELECT external_id, name, host_type, address, source, geom FROM candidate_sites "
                               "WHERE area_id = :a ORDER BY external_id"), conn, geom_col="geom", crs=SRID,
                          params={"a": area_id})
    return df.rename_geometry("geometry")


def candidate_counts(conn: Connection, area_id: int) -> dict[str, int]:
    """Stored candidates of an area by host type."""
    rows = conn.execute(text("SELECT host_type, count(*) FROM candidate_sites WHERE area_id = :a GROUP BY 1 "
                             "ORDER BY 2 DESC, 1"), {"a": area_id}).all()
    return {r[0]: int(r[1]) for r in rows}
