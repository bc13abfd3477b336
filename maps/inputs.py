"""What the map accepts: EPSG:4326 (WGS 84 lon/lat) layers with the columns each layer draws, and a consistent
run summary. A check that fails raises :class:`MapInputError` saying what to fix."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from yizhan.errors import InvalidInput

STATION_COLUMNS = (
    "external_id", "name", "kind", "host", "address", "township", "amenities", "opening_hours", "seats", "stars",
    "status",
)
CELL_COLUMNS = ("weight", "covered", "distance_m")
GAP_COLUMNS = ("rank", "demand", "area_m2", "cells", "nearest_station", "nearest_distance_m")
UNIT_COLUMNS = ("name", "covered_share", "demand", "stations")
SITE_COLUMNS = ("rank", "external_id", "name", "host_type", "gain", "covered_share_after")
SUMMARY_KEYS = (
    "run_id", "area", "mode", "radius_m", "stations", "demand_total", "demand_covered", "covered_share", "gaps",
    "created_at",
)


class MapInputError(InvalidInput, ValueError):
    """A map input is unusable (wrong CRS, missing column, inconsistent summary); the message says what to fix."""


def check_frame(what: str, gdf: gpd.GeoDataFrame, columns: Iterable[str], geom_types: tuple[str, ...]) -> None:
    """``gdf`` is a GeoDataFrame in EPSG:4326 with ``columns`` and only ``geom_types`` (empty geometries allowed)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise MapInputError(f"{what}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if gdf.crs is None:
        raise MapInputError(f"{what}: no CRS; expected EPSG:4326 (WGS 84 lon/lat) — use set_crs(4326) or to_crs(4326)")
    if gdf.crs.to_epsg() != 4326:
        raise MapInputError(f"{what}: CRS is {gdf.crs.to_string()}, expected EPSG:4326 — use {what}.to_crs(4326)")
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise MapInputError(f"{what}: missing column(s) {missing}")
    present = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    bad = sorted(set(present.geom_type) - set(geom_types))
    if bad:
        raise MapInputError(f"{what}: geometry must be {'/'.join(geom_types)}, found {bad}")


def check_summary(summary: Mapping[str, Any], radius_m: float) -> None:
    """``summary`` has :data:`SUMMARY_KEYS`, its radius (metres) equals ``radius_m`` and its share is in [0, 1]."""
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise MapInputError(f"summary: missing key(s) {missing}")
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise MapInputError(f"radius_m: expected a positive number of metres, got {radius_m!r}")
    if not math.isclose(float(summary["radius_m"]), radius_m, rel_tol=1e-9):
        raise MapInputError(f"summary radius_m={summary['radius_m']!r} differs from radius_m={radius_m!r}")
    share = float(summary["covered_share"])
    if not 0.0 <= share <= 1.0:
        raise MapInputError(f"summary covered_share={share!r}: expected a fraction in [0, 1]")


def check_boundary(boundary: BaseGeometry) -> None:
    """``boundary`` is a shapely Polygon/MultiPolygon whose bounds are lon/lat degrees."""
    if not isinstance(boundary, Polygon | MultiPolygon):
        raise MapInputError(f"boundary: expected a shapely Polygon/MultiPolygon, got {type(boundary).__name__}")
    minx, miny, maxx, maxy = boundary.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise MapInputError(f"boundary: bounds {boundary.bounds} are not lon/lat degrees — reproject it to EPSG:4326")


def check_lines(lines: BaseGeometry) -> None:
    """``lines`` is a shapely (Multi)LineString whose bounds are lon/lat degrees."""
    if lines.geom_type not in ("LineString", "MultiLineString"):
        raise MapInputError(f"streets: expected a shapely (Multi)LineString, got {lines.geom_type}")
    minx, miny, maxx, maxy = lines.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise MapInputError(f"streets: bounds {lines.bounds} are not lon/lat degrees — reproject them to EPSG:4326")
