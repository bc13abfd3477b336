"""The map's two basemaps and their coordinate systems: OpenStreetMap in WGS 84, Amap (高德) in GCJ-02.

Every overlay is built once per system, so it lines up with whichever basemap is active; the GCJ-02 copies are
the WGS 84 lon/lat geometries with every vertex shifted by :func:`yizhan.geo.coords.from_wgs84`.
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from yizhan.geo.coords import from_wgs84

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
AMAP_TILES = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
AMAP_ATTRIBUTION = '© <a href="https://www.amap.com/">高德地图 AutoNavi</a>（GCJ-02）'
BASE_OSM = "OpenStreetMap (WGS 84)"
BASE_AMAP = "高德地图 Amap (GCJ-02)"
SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02")
"""Coordinate systems every overlay is built in: WGS 84 for the OSM basemap, GCJ-02 for the Amap basemap."""
SYSTEM_OF_BASE: dict[str, str] = {BASE_OSM: "wgs84", BASE_AMAP: "gcj02"}
SYSTEM_LABELS: dict[str, str] = {"wgs84": "WGS 84（OpenStreetMap）", "gcj02": "GCJ-02 火星坐标（高德地图）"}


def add_basemaps(m: folium.Map) -> dict[str, folium.TileLayer]:
    """Add the OSM (shown) and Amap (hidden) tile layers to ``m``; return them by coordinate system."""
    layers = {
        "wgs84": folium.TileLayer(tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name=BASE_OSM, max_zoom=19),
        "gcj02": folium.TileLayer(tiles=AMAP_TILES, attr=AMAP_ATTRIBUTION, name=BASE_AMAP, max_zoom=18,
                                  subdomains="1234", show=False),
    }
    for layer in layers.values():
        layer.add_to(m)
    return layers


def gcj_coords(xy: np.ndarray) -> np.ndarray:
    """(n, 2) WGS 84 lon/lat degrees shifted to GCJ-02 lon/lat."""
    lon, lat = from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
    return np.column_stack([lon, lat])


def shift_geom(geom: BaseGeometry, system: str) -> BaseGeometry:
    """``geom`` (WGS 84 lon/lat) in ``system`` ("wgs84" returns it unchanged, "gcj02" shifts every vertex)."""
    return geom if system == "wgs84" else shapely.transform(geom, gcj_coords)


def shift_frame(gdf: gpd.GeoDataFrame, system: str) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with its geometry in ``system`` (the CRS label stays EPSG:4326: GCJ-02 has no EPSG code)."""
    if system == "wgs84":
        return gdf
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    out = gdf.copy()
    out[gdf.geometry.name] = shapely.transform(geoms, gcj_coords)
    return out
