"""Read OpenStreetMap extracts (.osm XML or .osm.pbf) with pyosmium: bounds, POIs and buildings.

All coordinates are WGS 84 lon/lat degrees (EPSG:4326), in (lon, lat) order. OSM ids are returned as strings
with a type prefix: "n123" (node), "w456" (way), "r789" (relation). Data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import osmium
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from yizhan.errors import InvalidInput
from yizhan.geo.projection import WGS84

POI_KEYS = ("amenity", "shop", "office")
EXPECTED_FORMAT = "an OpenStreetMap extract in .osm (XML) or .osm.pbf format"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def checked_extract(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p}: 找不到文件 / file not found; expected {EXPECTED_FORMAT}")
    return p


def reading_error(path: Path, exc: Exception) -> InvalidInput:
    return InvalidInput(f"{path}: 无法读取，应为 OSM 文件 (.osm 或 .osm.pbf) / cannot be read ({exc}); expected "
                        f"{EXPECTED_FORMAT}")


def iterate_extract(path: Path, processor: osmium.FileProcessor) -> Iterator[Any]:
    """Iterate a FileProcessor, turning libosmium read errors into InvalidInput."""
    try:
        yield from processor
    except (RuntimeError, ValueError, OSError) as exc:
        raise reading_error(path, exc) from exc


def extract_processor(path: Path, entities: Any = osmium.osm.ALL) -> osmium.FileProcessor:
    try:
        return osmium.FileProcessor(str(path), entities)
    except (RuntimeError, ValueError, OSError) as exc:
        raise reading_error(path, exc) from exc


def _id_key(osm_id: str) -> tuple[int, int]:
    return "nwr".index(osm_id[0]), int(osm_id[1:])


def extract_bounds(path: str | Path) -> tuple[float, float, float, float]:
    """Bounding box of an extract.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.

    Returns
    -------
    tuple of float
        ``(west, south, east, north)`` in WGS 84 degrees: the header's bounding box when the file has one,
        otherwise the extent of all node locations (which includes nodes of ways reaching beyond the area).

    Raises
    ------
    InvalidInput
        If the file is missing, unreadable or holds no nodes.
    """
    p = checked_extract(path)
    proc = extract_processor(p, osmium.osm.NODE)
    try:
        header_box = proc.header.box()
    except (RuntimeError, ValueError, OSError) as exc:
        raise reading_error(p, exc) from exc
    if header_box.valid():
        return (header_box.bottom_left.lon, header_box.bottom_left.lat,
                header_box.top_right.lon, header_box.top_right.lat)
    west = south = math.inf
    east = north = -math.inf
    for node in iterate_extract(p, proc):
        loc = node.location
        if loc.valid():
            west, east = min(west, loc.lon), max(east, loc.lon)
            south, north = min(south, loc.lat), max(north, loc.lat)
    if not math.isfinite(west):
        raise InvalidInput(f"{p}: holds no node locations; expected {EXPECTED_FORMAT} with data")
    return west, south, east, north


def _ring(way: Any) -> BaseGeometry | None:
    """Polygon of a closed way from its node locations (lon/lat), or None when locations are missing or too few.

    A self-intersecting ring is repaired with ``shapely.make_valid``, which may give a MultiPolygon or a collection.
    """
    coords = []
    for nd in way.nodes:
        if not nd.location.valid():
            return None
        coords.append((nd.location.lon, nd.location.lat))
    if len(coords) < 4:
        return None
    poly = Polygon(coords)
    return poly if poly.is_valid else shapely.make_valid(poly)


def _name(tags: Any) -> str:
    return tags.get("name") or tags.get("name:zh") or ""


def pois_from_extract(path: str | Path) -> gpd.GeoDataFrame:
    """Points of interest tagged amenity, shop or office: nodes, and closed ways as their centroid.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id`` (str, "n…"/"w…"), ``name`` (str, "" when unnamed; falls back to name:zh),
        ``amenity``, ``shop``, ``office`` (str or None) and ``geometry`` (Point, EPSG:4326 lon/lat),
        sorted by OSM type then id.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable.
    """
    p = checked_extract(path)
    rows: list[dict[str, Any]] = []
    proc = extract_processor(p, osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for obj in iterate_extract(p, proc):
        tags = obj.tags
        if not any(k in tags for k in POI_KEYS):
            continue
        if obj.is_node():
            if not obj.location.valid():
                continue
            geom, osm_id = Point(obj.location.lon, obj.location.lat), f"n{obj.id}"
        elif obj.is_closed():
            poly = _ring(obj)
            if poly is None or poly.is_empty:
                continue
            geom, osm_id = poly.centroid, f"w{obj.id}"
        else:
            continue
        rows.append({"osm_id": osm_id, "name": _name(tags), **{k: tags.get(k) for k in POI_KEYS}, "geometry": geom})
    frame = _frame(rows, ["osm_id", "name", *POI_KEYS, "geometry"])
    for key in POI_KEYS:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), None)
    return frame


def _levels(value: str | None) -> float:
    if not value:
        return math.nan
    m = _NUMBER.search(value)
    return float(m.group()) if m else math.nan


def buildings_from_extract(path: str | Path) -> gpd.GeoDataFrame:
    """Building footprints: closed ways and multipolygon relations tagged ``building``.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id`` (str, "w…"/"r…"), ``building`` (str, the tag value such as "yes" or "university"),
        ``levels`` (float from building:levels, NaN when absent or not a number) and ``geometry`` (Polygon or
        MultiPolygon, EPSG:4326 lon/lat), sorted by OSM type then id. Incomplete relations are left out.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable.
    """
    p = checked_extract(path)
    factory = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    proc = (extract_processor(p, osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION)
            .with_areas(osmium.filter.KeyFilter("building"))
            .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
            .with_filter(osmium.filter.KeyFilter("building")))
    for area in iterate_extract(p, proc):
        try:
            multi = cast(MultiPolygon, shapely.from_wkb(factory.create_multipolygon(area)))  # WKB of a MultiPolygon
        except RuntimeError:  # broken rings in the source data
            continue
        if multi.is_empty:
            continue
        geom: Polygon | MultiPolygon = multi.geoms[0] if len(multi.geoms) == 1 else multi
        prefix = "w" if area.from_way() else "r"
        rows.append({
            "osm_id": f"{prefix}{area.orig_id()}",
            "building": area.tags.get("building"),
            "levels": _levels(area.tags.get("building:levels")),
            "geometry": geom,
        })
    frame = _frame(rows, ["osm_id", "building", "levels", "geometry"])
    frame["levels"] = frame["levels"].astype(float)
    return frame


def named_streets_from_extract(path: str | Path) -> gpd.GeoDataFrame:
    """Named ``highway=*`` ways as lines, e.g. to describe where a point is ("成府路附近").

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id`` (str, "w…"), ``name`` (str), ``highway`` (str) and ``geometry`` (LineString,
        EPSG:4326 lon/lat), sorted by id. Ways with fewer than two located nodes are left out.

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable.
    """
    p = checked_extract(path)
    rows: list[dict[str, Any]] = []
    proc = extract_processor(p, osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for obj in iterate_extract(p, proc):
        if not obj.is_way() or "highway" not in obj.tags or not _name(obj.tags):
            continue
        coords = [(nd.location.lon, nd.location.lat) for nd in obj.nodes if nd.location.valid()]
        if len(coords) >= 2:
            rows.append({"osm_id": f"w{obj.id}", "name": _name(obj.tags), "highway": obj.tags.get("highway"),
                         "geometry": LineString(coords)})
    return _frame(rows, ["osm_id", "name", "highway", "geometry"])


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> gpd.GeoDataFrame:
    rows.sort(key=lambda r: _id_key(r["osm_id"]))
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in columns[:-1]}, geometry=[], crs=WGS84)
    return gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=WGS84)
