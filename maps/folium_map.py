"""Folium map of one coverage run: stations, service rings, demand heat, gaps, study area, legend and summary.

Every input is WGS 84 lon/lat (EPSG:4326); Leaflet/Folium take (lat, lon) pairs, and the conversion happens only
inside this module. All JavaScript and CSS are served from the vendored copies in ``maps/static`` (see its README)
under a relative ``asset_prefix`` URL, so the page works offline; the OpenStreetMap tiles are the only external
resource.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from collections.abc import Callable, Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import jinja2
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.plugins import HeatMap, MarkerCluster
from pyproj import Transformer
from scipy.spatial import cKDTree
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from yizhan.errors import InvalidInput
from yizhan.geo.coords import from_wgs84
from yizhan.maps.style import (
    AREA_COLOUR,
    CLOSED_COLOUR,
    GAP_SCALE,
    KIND_COLOURS,
    MODE_LABELS,
    OTHER_KIND_COLOUR,
    PROFILE_LABELS,
    SERVICE_AREA_COLOUR,
    SHARE_SCALE,
    SITE_COLOUR,
    STREET_COLOUR,
)
from yizhan.stations.vocab import KINDS, label

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""Vendored Leaflet/Folium JS, CSS and fonts; the API serves it at ``/yizhan-assets``."""

ASSET_DIR_NAME = "yizhan-assets"
"""Directory name :func:`write_map` copies :data:`STATIC_DIR` to, beside the HTML file."""

CLUSTER_THRESHOLD = 500
"""Stations are drawn in a MarkerCluster when there are more than this many."""

COMPACT_THRESHOLD = 5000
"""Above this many stations (national registry scale) the stations are shipped as compact JSON arrays and the
markers, cluster and popups are built in JavaScript, and no service rings are drawn."""

RANK_LABELS = 10
"""Gaps with rank 1..RANK_LABELS get a rank number drawn on the map."""

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

LAYER_STATIONS = "驿站 Stations"
LAYER_HEAT = "配送需求热力 Demand heat"
LAYER_GAPS = "覆盖缺口 Gaps"
LAYER_AREA = "研究区 Area"
LAYER_UNITS = "街道覆盖率 Townships"
LAYER_STREETS = "街道线（离线）Streets, offline"
LAYER_SITES = "推荐新址 Recommended sites"

# name → file under the asset prefix; the names are the keys folium uses, so each link replaces the CDN one.
_MAP_JS: tuple[tuple[str, str], ...] = (
    ("leaflet", "leaflet-1.9.3/leaflet.js"),
    ("jquery", "jquery-3.7.1/jquery.min.js"),
    ("bootstrap", "bootstrap-5.2.2/bootstrap.bundle.min.js"),
    ("awesome_markers", "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.js"),
)
_MAP_CSS: tuple[tuple[str, str], ...] = (
    ("leaflet_css", "leaflet-1.9.3/leaflet.css"),
    ("bootstrap_css", "bootstrap-5.2.2/bootstrap.min.css"),
    ("awesome_markers_font_css", "fontawesome-free-6.2.0/css/all.min.css"),
    ("awesome_markers_css", "leaflet.awesome-markers-2.0.4/leaflet.awesome-markers.css"),
    ("awesome_rotate_css", "folium-0.20.0/leaflet.awesome.rotate.min.css"),
)
_HEAT_JS: tuple[tuple[str, str], ...] = (("leaflet-heat.js", "leaflet.heat-0.2.0/leaflet-heat.js"),)
_CLUSTER_JS: tuple[tuple[str, str], ...] = (
    ("markerclusterjs", "leaflet.markercluster-1.1.0/leaflet.markercluster.js"),
)
_CLUSTER_CSS: tuple[tuple[str, str], ...] = (
    ("markerclustercss", "leaflet.markercluster-1.1.0/MarkerCluster.css"),
    ("markerclusterdefaultcss", "leaflet.markercluster-1.1.0/MarkerCluster.Default.css"),
)

_STATION_COLUMNS = (
    "external_id", "name", "kind", "host", "address", "township", "amenities", "opening_hours", "seats", "stars",
    "status",
)
_CELL_COLUMNS = ("weight", "covered", "distance_m")
_GAP_COLUMNS = ("rank", "demand", "area_m2", "cells", "nearest_station", "nearest_distance_m")
_UNIT_COLUMNS = ("name", "covered_share", "demand", "stations")
_SITE_COLUMNS = ("rank", "external_id", "name", "host_type", "gain", "covered_share_after")
_SUMMARY_KEYS = (
    "run_id", "area", "mode", "radius_m", "stations", "demand_total", "demand_covered", "covered_share", "gaps",
    "created_at",
)
_EXTERNAL_SCHEMES = ("http://", "https://", "//")


class MapInputError(InvalidInput, ValueError):
    """A map input is unusable (wrong CRS, missing column, inconsistent summary); the message says what to fix."""


def map_from_layers(
    *,
    stations: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    summary: Mapping[str, Any],
    radius_m: float,
    boundary: Polygon | MultiPolygon | None = None,
    asset_prefix: str = ASSET_DIR_NAME,
    service_area: Polygon | MultiPolygon | None = None,
    units: gpd.GeoDataFrame | None = None,
    streets: BaseGeometry | None = None,
    sites: gpd.GeoDataFrame | None = None,
) -> folium.Map:
    """Build the planners' Folium map of one coverage run (or of a recommendation, with ``sites``).

    Parameters
    ----------
    stations : geopandas.GeoDataFrame
        EPSG:4326 Point geometry (x = lon, y = lat, degrees) with columns ``external_id, name, kind, host, address,
        township, amenities (list of codes), opening_hours, seats, stars, status``. Closed stations are drawn
        grey and hollow and get no service ring.
    cells : geopandas.GeoDataFrame
        EPSG:4326 demand grid cells (Polygon) with ``weight`` (demand, ≥ 0), ``covered`` (bool) and
        ``distance_m`` (metres to the nearest station). Drawn as a heat map of cell centroids weighted by weight.
    gaps : geopandas.GeoDataFrame
        EPSG:4326 Polygon/MultiPolygon with ``rank`` (1 = biggest unmet demand), ``demand``, ``area_m2`` (m²),
        ``cells``, ``nearest_station`` (name) and ``nearest_distance_m`` (metres).
    summary : mapping
        Run summary with keys ``run_id, area, mode, radius_m, stations, demand_total, demand_covered,
        covered_share (0–1), gaps, created_at``.
    radius_m : float
        Service radius in metres; must equal ``summary["radius_m"]``.
    boundary : shapely Polygon or MultiPolygon, optional
        Study area in EPSG:4326 (lon, lat degrees).
    service_area : shapely Polygon or MultiPolygon, optional
        EPSG:4326 area reached along the streets (a network run): drawn as its own layer, and the straight-line
        rings are then drawn as thin outlines for comparison.
    units : geopandas.GeoDataFrame, optional
        EPSG:4326 townships (Polygon/MultiPolygon) with ``name``, ``covered_share`` (0–1), ``demand`` and
        ``stations`` (e.g. ``units_frame`` joined with ``units_table`` on name): drawn as a choropleth of the
        covered share with a tooltip.
    sites : geopandas.GeoDataFrame, optional
        EPSG:4326 Points of recommended new sites with ``rank, external_id, name, host_type, gain`` (demand newly
        covered) and ``covered_share_after`` (0–1): drawn as numbered markers with dashed rings of ``radius_m``.
    asset_prefix : str
        URL prefix (relative, or absolute path such as ``/yizhan-assets``) under which the files of
        :data:`STATIC_DIR` are served. :func:`write_map` expects the default.

    Returns
    -------
    folium.Map
        The map, fitted to the data, whose JS/CSS links all point under ``asset_prefix``. It has two base layers,
        OpenStreetMap (WGS 84) and Amap (GCJ-02); every overlay is built in both coordinate systems and the page
        shows the set matching the active base layer (open it with ``#gcj02`` to start on Amap). Above
        :data:`COMPACT_THRESHOLD` stations the stations are built in JavaScript from compact arrays and no rings
        are drawn.

    Raises
    ------
    MapInputError
        (a ``ValueError``) if a layer is not in EPSG:4326, lacks a column, has the wrong geometry type, or the
        summary is missing keys or disagrees with ``radius_m``.
    """
    _check_frame("stations", stations, _STATION_COLUMNS, ("Point",))
    _check_frame("cells", cells, _CELL_COLUMNS, ("Polygon", "MultiPolygon"))
    _check_frame("gaps", gaps, _GAP_COLUMNS, ("Polygon", "MultiPolygon"))
    if units is not None:
        _check_frame("units", units, _UNIT_COLUMNS, ("Polygon", "MultiPolygon"))
    if sites is not None:
        _check_frame("sites", sites, _SITE_COLUMNS, ("Point",))
    _check_summary(summary, radius_m)
    if boundary is not None:
        _check_boundary(boundary)
    if service_area is not None:
        _check_boundary(service_area)
    prefix = asset_prefix.rstrip("/")
    compact = len(stations) > COMPACT_THRESHOLD
    network = service_area is not None

    m = folium.Map(tiles=None, control_scale=True, zoom_start=13, location=_centre(stations, cells, gaps, boundary))
    m.default_js = _links(prefix, _MAP_JS)
    m.default_css = _links(prefix, _MAP_CSS)
    tiles = {
        "wgs84": folium.TileLayer(tiles=OSM_TILES, attr=OSM_ATTRIBUTION, name=BASE_OSM, max_zoom=19).add_to(m),
        "gcj02": folium.TileLayer(tiles=AMAP_TILES, attr=AMAP_ATTRIBUTION, name=BASE_AMAP, max_zoom=18,
                                  subdomains="1234", show=False).add_to(m),
    }
    folium.map.CustomPane("yz-heat", z_index=350, pointer_events=False).add_to(m)

    nearest = nearest_station_m(stations)
    pairs: list[tuple[folium.FeatureGroup, dict[str, Any]]] = []

    def paired(parent: folium.FeatureGroup, build: Callable[[str], Any]) -> None:
        """Fill ``parent`` with one child group per coordinate system; only the WGS 84 one is shown at first."""
        children = {}
        for system in SYSTEMS:
            child = folium.FeatureGroup(name=f"{parent.layer_name} [{system}]", control=False,
                                        show=system == SYSTEMS[0])
            for layer in build(system):
                layer.add_to(child)
            child.add_to(parent)
            children[system] = child
        parent.add_to(m)
        pairs.append((parent, children))

    if streets is not None:
        _check_lines(streets)
        paired(folium.FeatureGroup(name=LAYER_STREETS), lambda sy: _street_layers(_shift_geom(streets, sy)))
    if units is not None:
        paired(folium.FeatureGroup(name=LAYER_UNITS), lambda sy: _unit_layers(_shift_frame(units, sy)))
    if boundary is not None:
        paired(folium.FeatureGroup(name=LAYER_AREA), lambda sy: _area_layers(_shift_geom(boundary, sy)))
    paired(folium.FeatureGroup(name=LAYER_HEAT), lambda sy: _heat_layers(_shift_frame(cells, sy), prefix))
    paired(folium.FeatureGroup(name=LAYER_GAPS), lambda sy: _gap_layers(_shift_frame(gaps, sy)))
    if service_area is not None:
        paired(folium.FeatureGroup(name=_service_area_name(summary)),
               lambda sy: _service_area_layers(_shift_geom(service_area, sy)))
    if not compact:
        paired(folium.FeatureGroup(name=f"{_distance(radius_m)} 服务半径 Rings"),
               lambda sy: _ring_layers(_shift_frame(stations, sy), radius_m, outline_only=network))
    station_group = folium.FeatureGroup(name=LAYER_STATIONS)
    if compact:
        clusters = {}
        for system in SYSTEMS:
            # no chunkedLoading: markercluster 1.1.0 breaks ("reading 'lat'") when the view changes mid-load
            cluster = _cluster(prefix, name=f"{LAYER_STATIONS} [{system}]", show=system == SYSTEMS[0])
            cluster.add_to(station_group)
            clusters[system] = cluster
        station_group.add_to(m)
        pairs.append((station_group, clusters))
    else:
        paired(station_group, lambda sy: _station_layers(_shift_frame(stations, sy), prefix, nearest))
    if sites is not None:
        paired(folium.FeatureGroup(name=LAYER_SITES), lambda sy: _site_layers(_shift_frame(sites, sy), radius_m))
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    _Glue(m, pairs, station_group, stations, nearest, compact=compact, tiles=tiles).add_to(m)

    root = m.get_root()
    root.header.add_child(Element(_PANEL_CSS), name="yz_panel_css")
    root.html.add_child(Element(_legend_html(gaps, radius_m, network=network, units=units is not None,
                                             rings=not compact, sites=sites is not None)), name="yz_legend")
    root.html.add_child(Element(_summary_html(summary)), name="yz_summary")

    bounds = _bounds(stations, cells, gaps, boundary, radius_m)
    if bounds is not None:
        m.fit_bounds(bounds, padding=(24, 24))
    return m


def write_map(m: folium.Map, path: Path) -> Path:
    """Write the map's HTML to ``path`` and copy the assets to ``path.parent / "yizhan-assets"``.

    The result opens offline from disk. The map must have been built with the default ``asset_prefix``.

    Parameters
    ----------
    m : folium.Map
        A map from :func:`map_from_layers`.
    path : pathlib.Path
        Target HTML file; its directory is created if needed.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    MapInputError
        If the page references an external script/stylesheet, or an asset that is not in :data:`STATIC_DIR`
        under ``yizhan-assets/``; nothing is written then.
    """
    path = Path(path)
    page = m.get_root().render()
    external = external_urls(page)
    if external:
        raise MapInputError(f"map links external scripts/stylesheets {external}; build it with map_from_layers")
    missing = [u for u in asset_urls(page) if not _vendored(u)]
    if missing:
        raise MapInputError(
            f"map links assets not found under {ASSET_DIR_NAME}/ in {STATIC_DIR}: {missing}; "
            f"build it with asset_prefix={ASSET_DIR_NAME!r} to write it to disk"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(STATIC_DIR, path.parent / ASSET_DIR_NAME, dirs_exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def asset_urls(page: str) -> list[str]:
    """Every URL a page loads as ``<script src>`` or ``<link href>``, in document order."""
    parser = _LinkParser()
    parser.feed(page)
    parser.close()
    return parser.urls


def external_urls(page: str) -> list[str]:
    """The ``<script src>``/``<link href>`` URLs of a page that are absolute http(s) or protocol-relative.

    URLs inside JavaScript strings (the tile URL template) are not links and are not returned.
    """
    return [u for u in asset_urls(page) if u.lower().startswith(_EXTERNAL_SCHEMES)]


# --- inputs ---------------------------------------------------------------------------------------------------------


def _check_frame(what: str, gdf: gpd.GeoDataFrame, columns: Iterable[str], geom_types: tuple[str, ...]) -> None:
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


def _check_summary(summary: Mapping[str, Any], radius_m: float) -> None:
    missing = [k for k in _SUMMARY_KEYS if k not in summary]
    if missing:
        raise MapInputError(f"summary: missing key(s) {missing}")
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise MapInputError(f"radius_m: expected a positive number of metres, got {radius_m!r}")
    if not math.isclose(float(summary["radius_m"]), radius_m, rel_tol=1e-9):
        raise MapInputError(f"summary radius_m={summary['radius_m']!r} differs from radius_m={radius_m!r}")
    share = float(summary["covered_share"])
    if not 0.0 <= share <= 1.0:
        raise MapInputError(f"summary covered_share={share!r}: expected a fraction in [0, 1]")


def _check_boundary(boundary: BaseGeometry) -> None:
    if not isinstance(boundary, Polygon | MultiPolygon):
        raise MapInputError(f"boundary: expected a shapely Polygon/MultiPolygon, got {type(boundary).__name__}")
    minx, miny, maxx, maxy = boundary.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise MapInputError(f"boundary: bounds {boundary.bounds} are not lon/lat degrees — reproject it to EPSG:4326")


def _check_lines(lines: BaseGeometry) -> None:
    if lines.geom_type not in ("LineString", "MultiLineString"):
        raise MapInputError(f"streets: expected a shapely (Multi)LineString, got {lines.geom_type}")
    minx, miny, maxx, maxy = lines.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise MapInputError(f"streets: bounds {lines.bounds} are not lon/lat degrees — reproject them to EPSG:4326")


# --- layers ---------------------------------------------------------------------------------------------------------


def _links(prefix: str, files: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, f"{prefix}/{rel}") for name, rel in files]


def _cluster(prefix: str, **kwargs: Any) -> MarkerCluster:
    cluster = MarkerCluster(control=False, disable_clustering_at_zoom=15, spiderfy_on_max_zoom=True, **kwargs)
    cluster.default_js = _links(prefix, _CLUSTER_JS)
    cluster.default_css = _links(prefix, _CLUSTER_CSS)
    return cluster


def _station_layers(stations: gpd.GeoDataFrame, prefix: str, nearest: np.ndarray) -> list[Any]:
    markers = []
    for i, (geom, row) in enumerate(zip(stations.geometry, stations.itertuples(index=False), strict=True)):
        if geom is None or geom.is_empty:
            continue
        closed = row.status == "closed"
        colour = KIND_COLOURS.get(row.kind, OTHER_KIND_COLOUR)
        style: dict[str, Any] = (
            {"color": CLOSED_COLOUR, "weight": 2, "fill_color": "#ffffff", "fill_opacity": 0.7, "dash_array": "3,2",
             "class_name": "yz-station yz-station-closed"}
            if closed
            else {"color": "#ffffff", "weight": 1.5, "fill_color": colour, "fill_opacity": 1.0,
                  "class_name": f"yz-station yz-station-{_css_token(row.kind)}"}
        )
        marker = folium.CircleMarker(
            location=(geom.y, geom.x),
            radius=7,
            popup=folium.Popup(_station_popup(row, _nearest_text(stations, nearest, i)), max_width=320),
            tooltip=folium.Tooltip(_esc(_text(row.name) or row.external_id)),
            **style,
        )
        marker.options["yzIdx"] = i  # the search box finds the marker of station i in each coordinate system
        markers.append(marker)
    if len(stations) > CLUSTER_THRESHOLD:
        cluster = _cluster(prefix)
        for marker in markers:
            marker.add_to(cluster)
        return [cluster]
    return markers


def _site_layers(sites: gpd.GeoDataFrame, radius_m: float) -> list[Any]:
    """Recommended sites: a dashed ring of the radius and a numbered marker each, rank 1 on top."""
    layers: list[Any] = []
    rows = sorted(zip(sites.geometry, sites.itertuples(index=False), strict=True), key=lambda p: -int(p[1].rank))
    for geom, row in rows:
        if geom is None or geom.is_empty:
            continue
        ring = folium.Circle(location=(geom.y, geom.x), radius=float(radius_m), color=SITE_COLOUR, weight=2,
                             dash_array="6,4", fill=False, class_name="yz-site-ring")
        ring.options["interactive"] = False
        layers.append(ring)
        popup = (
            '<table class="yz-popup">'
            f"<tr><th>推荐排名 Rank</th><td><b>{int(row.rank)}</b></td></tr>"
            f"<tr><th>名称 Name</th><td>{_esc(_text(row.name))}</td></tr>"
            f"<tr><th>编号 Id</th><td>{_esc(row.external_id)}</td></tr>"
            f"<tr><th>承办类型 Host</th><td>{_esc(row.host_type)}</td></tr>"
            f"<tr><th>新增覆盖需求 Newly covered</th><td>{_number(float(row.gain))}</td></tr>"
            f"<tr><th>累计覆盖率 Covered after</th><td>{float(row.covered_share_after) * 100:.1f}%</td></tr>"
            f"<tr><th>坐标 Lon, lat</th><td>{geom.x:.6f}, {geom.y:.6f}</td></tr></table>"
        )
        layers.append(folium.Marker(
            location=(geom.y, geom.x),
            icon=folium.DivIcon(html=f"<div>{int(row.rank)}</div>", icon_size=(26, 26), icon_anchor=(13, 13),
                                class_name="yz-site"),
            tooltip=folium.Tooltip(f"推荐 {int(row.rank)}: {_esc(_text(row.name))}"),
            popup=folium.Popup(popup, max_width=320),
        ))
    return layers


def _service_area_name(summary: Mapping[str, Any]) -> str:
    profile = str(summary.get("profile") or "walk")
    return f"{_distance(float(summary['radius_m']))} {PROFILE_LABELS.get(profile, profile)}服务范围 Service area"


def _service_area_layers(area: BaseGeometry) -> list[Any]:
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(area), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": SERVICE_AREA_COLOUR, "weight": 1, "fillColor": SERVICE_AREA_COLOUR,
                                   "fillOpacity": 0.18, "interactive": False, "className": "yz-service-area"},
    )]


def _ring_layers(stations: gpd.GeoDataFrame, radius_m: float, *, outline_only: bool = False) -> list[Any]:
    # hundreds of overlapping tinted discs would hide the heat map; beside a service area they are outlines
    fill = len(stations) <= CLUSTER_THRESHOLD and not outline_only
    rings = []
    for geom, row in zip(stations.geometry, stations.itertuples(index=False), strict=True):
        if geom is None or geom.is_empty or row.status == "closed":
            continue
        colour = KIND_COLOURS.get(row.kind, OTHER_KIND_COLOUR)
        ring = folium.Circle(
            location=(geom.y, geom.x), radius=float(radius_m), color=colour, weight=1.5, opacity=0.8, fill=fill,
            fill_opacity=0.06 if fill else 0.0, class_name="yz-ring",
        )
        ring.options["interactive"] = False  # folium's path_options drops it; clicks must reach the gaps below
        rings.append(ring)
    return rings


def _heat_layers(cells: gpd.GeoDataFrame, prefix: str) -> list[Any]:
    geoms = np.asarray(cells.geometry.values, dtype=object)
    weights = cells["weight"].to_numpy(dtype=float, na_value=np.nan)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & np.isfinite(weights) & (weights > 0)
    if not keep.any():
        return []
    centres = shapely.centroid(geoms[keep])
    w = weights[keep] / weights[keep].max()
    data = np.column_stack([shapely.get_y(centres), shapely.get_x(centres), w]).tolist()
    heat = HeatMap(data, radius=25, blur=20, min_opacity=0.05, control=False, pane="yz-heat")
    heat.default_js = _links(prefix, _HEAT_JS)
    return [heat]


def _gap_layers(gaps: gpd.GeoDataFrame) -> list[Any]:
    layers: list[Any] = []
    features = []
    labels: list[tuple[int, float, float]] = []  # (rank, lat, lon)
    lo, hi = _demand_range(gaps)
    for i, (geom, row) in enumerate(zip(gaps.geometry, gaps.itertuples(index=False), strict=True)):
        if geom is None or geom.is_empty:
            continue
        demand = float(row.demand)
        features.append({
            "type": "Feature",
            "id": f"gap-{i}",
            "geometry": mapping(geom),
            "properties": {
                "rank": int(row.rank),
                "demand": _number(demand),
                "area_km2": f"{float(row.area_m2) / 1e6:.2f}",
                "cells": int(row.cells),
                "nearest": _esc(_text(row.nearest_station) or "—"),
                "distance": _distance(float(row.nearest_distance_m)),
                "colour": _scale_colour(demand, lo, hi),
            },
        })
        if int(row.rank) <= RANK_LABELS:
            spot = geom.representative_point()
            labels.append((int(row.rank), spot.y, spot.x))
    if features:
        fields = ["rank", "demand", "area_km2", "cells", "nearest", "distance"]
        aliases = [
            "缺口排名 Rank", "未覆盖需求 Demand", "面积 km²", "需求网格 Cells", "最近驿站 Nearest", "距离 Distance",
        ]
        layers.append(folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=LAYER_GAPS,
            control=False,
            style_function=_gap_style,
            highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.75},
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
            popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
        ))
    for rank, lat, lon in sorted(labels, reverse=True):  # rank 1 drawn last, on top
        layers.append(folium.Marker(
            location=(lat, lon),
            icon=folium.DivIcon(html=f"<div>{rank}</div>", icon_size=(24, 24), icon_anchor=(12, 12),
                                class_name="yz-gap-rank"),
            interactive=False,
        ))
    return layers


def _gap_style(feature: dict[str, Any]) -> dict[str, Any]:
    colour = feature["properties"]["colour"]
    return {"color": "#7a0019", "weight": 1.2, "fillColor": colour, "fillOpacity": 0.6, "className": "yz-gap"}


def _street_layers(streets: BaseGeometry) -> list[Any]:
    """The area's own streets as thin grey lines: a basemap that needs no tiles (offline office networks)."""
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(streets), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": STREET_COLOUR, "weight": 1, "opacity": 0.9, "interactive": False,
                                   "className": "yz-streets"},
    )]


def _area_layers(boundary: BaseGeometry) -> list[Any]:
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(boundary), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": AREA_COLOUR, "weight": 2, "dashArray": "6,4", "fill": False,
                                   "interactive": False, "className": "yz-area"},
    )]


def _unit_layers(units: gpd.GeoDataFrame) -> list[Any]:
    features = []
    for i, (geom, row) in enumerate(zip(units.geometry, units.itertuples(index=False), strict=True)):
        if geom is None or geom.is_empty:
            continue
        share = float(row.covered_share) if not _missing(row.covered_share) else math.nan
        features.append({
            "type": "Feature",
            "id": f"unit-{i}",
            "geometry": mapping(geom),
            "properties": {
                "name": _esc(_text(row.name) or "—"),
                "share": f"{share * 100:.1f}%" if math.isfinite(share) else "—",
                "demand": _number(float(row.demand)) if not _missing(row.demand) else "—",
                "stations": _int(row.stations) if not _missing(row.stations) else "—",
                "colour": _share_colour(share),
            },
        })
    if not features:
        return []
    fields = ["name", "share", "demand", "stations"]
    aliases = ["街道 Township", "覆盖率 Covered", "配送需求 Demand", "驿站 Stations"]
    return [folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        control=False,
        style_function=lambda f: {"color": "#555555", "weight": 1, "fillColor": f["properties"]["colour"],
                                  "fillOpacity": 0.35, "className": "yz-unit"},
        highlight_function=lambda _f: {"weight": 2.5, "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
    )]


# --- coordinate systems ---------------------------------------------------------------------------------------------


def _gcj_coords(xy: np.ndarray) -> np.ndarray:
    lon, lat = from_wgs84(xy[:, 0], xy[:, 1], "gcj02")
    return np.column_stack([lon, lat])


def _shift_geom(geom: BaseGeometry, system: str) -> BaseGeometry:
    """``geom`` (WGS 84 lon/lat) in ``system`` ("wgs84" returns it unchanged, "gcj02" shifts every vertex)."""
    return geom if system == "wgs84" else shapely.transform(geom, _gcj_coords)


def _shift_frame(gdf: gpd.GeoDataFrame, system: str) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with its geometry in ``system`` (the CRS label stays EPSG:4326: GCJ-02 has no EPSG code)."""
    if system == "wgs84":
        return gdf
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    out = gdf.copy()
    out[gdf.geometry.name] = shapely.transform(geoms, _gcj_coords)
    return out


# --- stations -------------------------------------------------------------------------------------------------------

_ECEF = Transformer.from_crs(4326, 4978, always_xy=True)


def nearest_station_m(stations: gpd.GeoDataFrame) -> np.ndarray:
    """Straight-line distance in metres from each station to the nearest *other* active station (NaN if none).

    Distances are chords in the metric geocentric CRS EPSG:4978 (ECEF), which equal the ground distance to
    within millimetres at station spacings and work at any extent (no UTM zone needed).
    """
    n = len(stations)
    out = np.full(n, np.nan)
    geoms = np.asarray(stations.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any():
        return out
    lon = np.where(ok, shapely.get_x(np.where(ok, geoms, None)), np.nan)
    lat = np.where(ok, shapely.get_y(np.where(ok, geoms, None)), np.nan)
    active = ok & (stations["status"].to_numpy() == "active")
    idx_active = np.flatnonzero(active)
    if len(idx_active) == 0:
        return out
    x, y, z = _ECEF.transform(lon, lat, np.zeros(n))
    xyz = np.column_stack([x, y, z])
    tree = cKDTree(xyz[idx_active])
    query = np.flatnonzero(ok)
    k = min(2, len(idx_active))
    dist, pos = tree.query(xyz[query], k=k)
    dist, pos = dist.reshape(len(query), k), pos.reshape(len(query), k)
    self_hit = idx_active[pos[:, 0]] == query
    first = np.where(self_hit, 1, 0)
    valid = first < k
    chosen = np.where(valid, dist[np.arange(len(query)), np.minimum(first, k - 1)], np.nan)
    out[query] = chosen
    return out


def _nearest_text(stations: gpd.GeoDataFrame, nearest: np.ndarray, i: int) -> str:
    d = nearest[i]
    return f"{d:,.0f} m" if math.isfinite(d) else "—"


# --- page script: coordinate-system switch, station search, compact stations ---------------------------------------


class _Glue(MacroElement):
    """The page's own script: shows the overlay set matching the base layer, builds the compact station layer, and
    adds the station search box. Options in the URL hash: ``#gcj02`` starts on Amap, ``search=<name>`` opens the
    first matching station (both for links and for headless tests)."""

    _template = jinja2.Template("""
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this.map_name }};
  var pairs = {{ this.pairs }};
  var bases = {{ this.bases }};
  var baseLayers = {{ this.tiles }};
  var labels = {{ this.labels }};
  var stationGroup = {{ this.station_group }};
  var names = {{ this.names }};
  var data = {{ this.data }};
  var current = "wgs84";
  var markers = {wgs84: [], gcj02: []};

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function popupHtml(i) {
    var v = data.vocab, st = data.status[i], seats = data.seats[i], stars = data.stars[i], d = data.nearest[i];
    var rows = [
      ["名称", esc(names[i] || "—")], ["类型", esc(v.kinds[data.kind[i]])],
      ["承办单位", esc(v.hosts[data.host[i]] || "—")], ["地址", esc(data.address[i] || "—")],
      ["开放时间", esc(data.hours[i] || "未填报")], ["设施", esc(v.amenities[data.amenities[i]] || "—")],
      ["座位", seats === null ? "—" : seats + " 个"],
      ["星级", stars === null ? "—" : new Array(stars + 1).join("★") + " (" + stars + ")"],
      ["状态", esc(v.statuses[st])], ["距最近驿站", d === null ? "—" : d.toLocaleString("en") + " m（直线）"],
      ["编号", esc(data.ids[i] || "—")]
    ];
    return '<div class="yz-popup"><table>' + rows.map(function (r) {
      return "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>";
    }).join("") + "</table></div>";
  }
  function openStation(m) {  // a free popup: works whether or not the marker is currently drawn or clustered
    var bound = m.getPopup && m.getPopup();
    L.popup({maxWidth: 320}).setLatLng(m.getLatLng())
      .setContent(bound ? bound.getContent() : popupHtml(m.options.yzIdx)).openOn(map);
  }

  if (data) {  // compact: build the markers here, popups on demand
    ["wgs84", "gcj02"].forEach(function (sy) {
      var ll = data[sy], v = data.vocab, list = [];
      for (var i = 0; i < names.length; i++) {
        if (ll[2 * i] === null) continue;
        var closed = v.statuses_code[data.status[i]] === "closed";
        var kind = v.kind_codes[data.kind[i]];
        var opts = closed
          ? {radius: 6, color: "{{ this.closed_colour }}", weight: 2, fillColor: "#ffffff", fillOpacity: 0.7,
             dashArray: "3,2", className: "yz-station yz-station-closed", yzIdx: i}
          : {radius: 6, color: "#ffffff", weight: 1.5, fillColor: v.colours[data.kind[i]], fillOpacity: 1,
             className: "yz-station yz-station-" + kind, yzIdx: i};
        var m = L.circleMarker([ll[2 * i], ll[2 * i + 1]], opts);
        list.push(m);
        markers[sy][i] = m;
      }
      var cluster = pairs[pairs.length - 1].sets[sy];
      cluster.on("click", function (e) { if (e.layer && e.layer.options.yzIdx !== undefined) openStation(e.layer); });
      cluster.addLayers(list);
    });
  } else {
    var walk = function (layer, sy) {  // groups and marker clusters down to the station markers
      if (layer.eachLayer) { layer.eachLayer(function (l) { walk(l, sy); }); return; }
      if (layer.options && layer.options.yzIdx !== undefined) { markers[sy][layer.options.yzIdx] = layer; }
    };
    var st = pairs[pairs.length - 1].sets;
    walk(st.wgs84, "wgs84");
    walk(st.gcj02, "gcj02");
  }

  function use(sy) {
    pairs.forEach(function (p) {
      for (var other in p.sets) {
        if (other !== sy && p.parent.hasLayer(p.sets[other])) { p.parent.removeLayer(p.sets[other]); }
      }
      if (!p.parent.hasLayer(p.sets[sy])) { p.parent.addLayer(p.sets[sy]); }
    });
    if (current !== sy) { map.closePopup(); }
    current = sy;
    var el = document.getElementById("yz-crs");
    if (el) { el.textContent = labels[sy]; }
    map.getContainer().setAttribute("data-yz-crs", sy);
  }
  map.on("baselayerchange", function (e) { if (bases[e.name]) { use(bases[e.name]); } });
  use(current);

  function go(i) {
    var m = markers[current][i];
    if (!m) { return; }
    if (!map.hasLayer(stationGroup)) { map.addLayer(stationGroup); }
    map.getContainer().setAttribute("data-yz-found", String(i));
    map.setView(m.getLatLng(), Math.max(map.getZoom(), 16), {animate: false});  // clusters open from zoom 15
    openStation(m);
  }
  function matches(q) {
    var out = [];
    q = q.trim().toLowerCase();
    if (!q) { return out; }
    for (var i = 0; i < names.length && out.length < 10; i++) {
      if (names[i] && names[i].toLowerCase().indexOf(q) >= 0 && markers[current][i]) { out.push(i); }
    }
    return out;
  }
  var Search = L.Control.extend({
    options: {position: "topright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "yz-search leaflet-bar");
      var input = L.DomUtil.create("input", "", div);
      input.type = "search";
      input.placeholder = "搜索驿站 Search stations";
      var list = L.DomUtil.create("ul", "", div);
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      var found = [];
      var show = function () {
        found = matches(input.value);
        list.innerHTML = "";
        found.forEach(function (i) {
          var li = L.DomUtil.create("li", "", list);
          li.textContent = names[i];
          L.DomEvent.on(li, "click", function () { go(i); list.innerHTML = ""; });
        });
      };
      L.DomEvent.on(input, "input", show);
      L.DomEvent.on(input, "keydown", function (e) {
        if (e.key === "Enter" && found.length) { go(found[0]); list.innerHTML = ""; }
      });
      this.input = input;
      this.show = show;
      return div;
    }
  });
  var search = new Search().addTo(map);

  var hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (hash.has("gcj02")) {
    map.removeLayer(baseLayers.wgs84);
    map.addLayer(baseLayers.gcj02);  // fires baselayerchange through the layer control
  }
  if (hash.get("search")) {
    search.input.value = hash.get("search");
    search.show();
    var hit = matches(hash.get("search"));
    if (hit.length) { go(hit[0]); }
  }
  window.yizhanMap = {use: use, go: go, system: function () { return current; }, markers: markers};
})();
{% endmacro %}
""")

    def __init__(self, m: folium.Map, pairs: list[tuple[folium.FeatureGroup, dict[str, Any]]],
                 station_group: folium.FeatureGroup, stations: gpd.GeoDataFrame, nearest: np.ndarray, *,
                 compact: bool, tiles: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "YizhanGlue"
        self.map_name = m.get_name()
        station_pair = next(p for p in pairs if p[0] is station_group)
        others = [p for p in pairs if p[0] is not station_group]
        self.pairs = "[" + ", ".join(  # JS variable names, so not JSON; the stations pair is last
            f"{{parent: {parent.get_name()}, sets: {_js_object(sets)}}}" for parent, sets in [*others, station_pair]
        ) + "]"
        self.bases = _js({name: sy for name, sy in SYSTEM_OF_BASE.items()})
        self.tiles = _js_object(tiles)
        self.labels = _js(SYSTEM_LABELS)
        self.station_group = station_group.get_name()
        self.names = _js([_text(n) for n in stations["name"]])
        self.data = _js(_compact_data(stations, nearest)) if compact else "null"
        self.closed_colour = CLOSED_COLOUR


def _js_object(layers: Mapping[str, Any]) -> str:
    """``{key: variableName, …}`` of folium elements, as JavaScript source."""
    return "{" + ", ".join(f"{key}: {layer.get_name()}" for key, layer in layers.items()) + "}"


def _js(value: Any) -> str:
    """JSON for embedding in a ``<script>``: ``<``, ``>``, ``&`` and U+2028/9 \\u-escaped (they only occur inside
    strings), so no value can end the script or read as markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _codes(values: Iterable[str]) -> tuple[list[int], list[str]]:
    vocab: dict[str, int] = {}
    codes = [vocab.setdefault(v, len(vocab)) for v in values]
    return codes, list(vocab)


def _compact_data(stations: gpd.GeoDataFrame, nearest: np.ndarray) -> dict[str, Any]:
    """Stations as column arrays (coordinates rounded to 1e-6°, ≈ 0.1 m; repeated labels dictionary-coded)."""
    geoms = np.asarray(stations.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out: dict[str, Any] = {}
    for system in SYSTEMS:
        xy = np.full((len(geoms), 2), np.nan)
        if ok.any():
            xy[ok] = shapely.get_coordinates(geoms[ok])
            if system != "wgs84":
                xy[ok] = _gcj_coords(xy[ok])
        latlon = np.round(xy[:, ::-1], 6).reshape(-1)
        out[system] = [None if not math.isfinite(v) else v for v in latlon.tolist()]
    kind_codes = [_text(k) for k in stations["kind"]]
    kind, kinds = _codes(kind_codes)
    status, statuses = _codes(_text(s) for s in stations["status"])
    host, hosts = _codes(label("host", _text(h)) if _text(h) else "" for h in stations["host"])
    amen, amens = _codes(
        "、".join(label("amenity", str(a)) for a in (v if isinstance(v, list | tuple | np.ndarray) else []))
        for v in stations["amenities"])
    out.update(
        kind=kind, status=status, host=host, amenities=amen,
        address=[" ".join(t for t in (_text(tw), _text(ad)) if t) for tw, ad in
                 zip(stations["township"], stations["address"], strict=True)],
        hours=[_text(h) for h in stations["opening_hours"]],
        seats=[_int(v) for v in stations["seats"]], stars=[_int(v) for v in stations["stars"]],
        ids=[_text(v) for v in stations["external_id"]],
        nearest=[round(float(d)) if math.isfinite(d) else None for d in nearest],
        vocab={"kinds": [label("kind", k) for k in kinds], "kind_codes": [_css_token(k) for k in kinds],
               "colours": [KIND_COLOURS.get(k, OTHER_KIND_COLOUR) for k in kinds],
               "statuses": [label("status", s) for s in statuses], "statuses_code": statuses,
               "hosts": hosts, "amenities": amens},
    )
    return out


# --- popups, legend, summary ----------------------------------------------------------------------------------------


def _station_popup(row: Any, nearest: str = "—") -> str:
    amenities = row.amenities if isinstance(row.amenities, list | tuple | np.ndarray) else []
    stars = _int(row.stars)
    seats = _int(row.seats)
    address = " ".join(t for t in (_text(row.township), _text(row.address)) if t)
    rows = [
        ("名称", _esc(_text(row.name) or "—")),
        ("类型", _esc(label("kind", row.kind))),
        ("承办单位", _esc(label("host", row.host)) if _text(row.host) else "—"),
        ("地址", _esc(address) or "—"),
        ("开放时间", _esc(_text(row.opening_hours)) or "未填报"),
        ("设施", "、".join(_esc(label("amenity", str(a))) for a in amenities) or "—"),
        ("座位", f"{seats} 个" if seats is not None else "—"),
        ("星级", f"{'★' * stars} ({stars})" if stars is not None else "—"),
        ("状态", _esc(label("status", row.status))),
        ("距最近驿站", f"{nearest}（直线）" if nearest != "—" else "—"),
        ("编号", _esc(_text(row.external_id)) or "—"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="yz-popup"><table>{body}</table></div>'


def _legend_html(gaps: gpd.GeoDataFrame, radius_m: float, *, network: bool = False, units: bool = False,
                 rings: bool = True, sites: bool = False) -> str:
    kinds = "".join(
        f'<div><span class="yz-dot" style="background:{KIND_COLOURS[code]}"></span>{name} {code}</div>'
        for code, name in KINDS.items()
        if code in KIND_COLOURS
    )
    lo, hi = _demand_range(gaps)
    gradient = ", ".join(GAP_SCALE)
    scale = (
        f'<div class="yz-ramp" style="background:linear-gradient(to right, {gradient})"></div>'
        f'<div class="yz-ramp-labels"><span>{_number(lo)}</span><span>{_number(hi)}</span></div>'
        if len(gaps)
        else "<div>无缺口 none</div>"
    )
    service = (f'<div><span class="yz-dot" style="background:{SERVICE_AREA_COLOUR};border-radius:2px"></span>'
               f'{_distance(radius_m)} 沿路网服务范围 reached along the streets</div>' if network else "")
    ring = (f'<div><span class="yz-ring-sample"></span>{_distance(radius_m)} 服务半径（直线）service radius</div>'
            if rings else f'<div class="yz-note">驿站过多（&gt;{COMPACT_THRESHOLD:,}），未绘制服务半径 '
                          'rings not drawn at this scale</div>')
    site_line = (f'<div><span class="yz-dot" style="background:{SITE_COLOUR};border-radius:3px"></span>'
                 f'推荐新址 recommended site（虚线：直线 {_distance(radius_m)} 半径 dashed: straight-line '
                 'radius）</div>' if sites else "")
    share_gradient = ", ".join(SHARE_SCALE)
    unit_scale = (
        '<div class="yz-sub">街道覆盖率 Townships: covered share</div>'
        f'<div class="yz-ramp yz-ramp-share" style="background:linear-gradient(to right, {share_gradient})"></div>'
        '<div class="yz-ramp-labels"><span>0%</span><span>100%</span></div>'
        if units else ""
    )
    return f"""
<div id="yz-legend" class="yz-panel">
  <div class="yz-title">图例 Legend</div>
  {kinds}
  <div><span class="yz-dot yz-dot-closed"></span>已关闭 closed</div>
  {site_line}
  {ring}
  {service}
  <div><span class="yz-heat-sample"></span>配送需求热力 demand heat</div>
  <div class="yz-sub">覆盖缺口：未覆盖需求 Gaps: unmet demand</div>
  {scale}
  {unit_scale}
  <div><span class="yz-area-sample"></span>研究区 study area</div>
  <div class="yz-sub">坐标系 CRS: <span id="yz-crs">{SYSTEM_LABELS["wgs84"]}</span></div>
</div>"""


def _summary_html(summary: Mapping[str, Any]) -> str:
    share = float(summary["covered_share"])
    mode = str(summary["mode"])
    before = summary.get("covered_share_before")
    rows = [
        ("覆盖率 Covered", f"<b>{share * 100:.1f}%</b>" if before is None else
         f"{float(before) * 100:.1f}% → <b>{share * 100:.1f}%</b>"),
        ("覆盖需求 Demand", f"{_number(float(summary['demand_covered']))} / {_number(float(summary['demand_total']))}"),
        ("驿站 Stations", _esc(summary["stations"])),
        ("缺口 Gaps", _esc(summary["gaps"])),
        ("服务半径 Radius", _distance(float(summary["radius_m"]))),
        ("距离 Mode", _esc(MODE_LABELS.get(mode, mode))),
        ("区域 Area", _esc(summary["area"])),
        ("运行 Run", _esc(summary["run_id"])),
        ("生成 Created", _esc(summary["created_at"])),
    ]
    title = "驿站 1 km 覆盖 Coverage summary"
    if before is not None:
        title = "选址建议 Where to open next"
        rows[2:2] = [("新址 New sites", _esc(summary.get("new_sites", ""))),
                     ("方法 Method", _esc(summary.get("method", ""))),
                     ("最优差距 Gap to bound", f"{float(summary.get('gap', 0.0)) * 100:.2f}%")]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"""
<div id="yz-summary" class="yz-panel">
  <div class="yz-title">{title}</div>
  <table>{body}</table>
</div>"""


_PANEL_CSS = """
<style>
  .yz-panel { position: fixed; z-index: 1000; background: rgba(255,255,255,0.93); padding: 8px 10px;
    border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,0.35); font: 12px/1.5 "PingFang SC", "Microsoft YaHei",
    "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; color: #222; }
  #yz-summary { top: 10px; left: 56px; }
  #yz-legend { bottom: 64px; left: 10px; min-width: 190px; }
  .yz-panel .yz-title { font-weight: bold; margin-bottom: 4px; }
  .yz-panel .yz-sub { margin-top: 4px; }
  .yz-panel th { font-weight: normal; color: #555; padding-right: 10px; }
  .yz-dot { display: inline-block; width: 12px; height: 12px; border-radius: 50%; border: 1.5px solid #fff;
    box-shadow: 0 0 0 1px #999; margin-right: 6px; vertical-align: -2px; }
  .yz-dot-closed { background: #fff; border: 2px dashed #8a8a8a; box-shadow: none; }
  .yz-ring-sample { display: inline-block; width: 14px; height: 14px; border-radius: 50%;
    border: 1.5px solid #1f4e9d; background: rgba(31,78,157,0.08); margin-right: 6px; vertical-align: -3px; }
  .yz-heat-sample { display: inline-block; width: 14px; height: 10px; margin-right: 6px;
    background: linear-gradient(to right, blue, cyan, lime, yellow, red); vertical-align: -1px; }
  .yz-area-sample { display: inline-block; width: 16px; height: 0; border-top: 2px dashed #444;
    margin-right: 6px; vertical-align: 3px; }
  .yz-ramp { height: 10px; border: 1px solid #7a0019; }
  .yz-ramp-labels { display: flex; justify-content: space-between; }
  .yz-gap-rank div { width: 24px; height: 24px; border-radius: 50%; text-align: center; box-sizing: border-box;
    background: #fff; border: 2px solid #7a0019; color: #7a0019; font: bold 12px/20px sans-serif; }
  .yz-gap-rank { background: none; border: none; }
  .yz-site div { width: 26px; height: 26px; border-radius: 4px; text-align: center; box-sizing: border-box;
    background: #d4145a; border: 2px solid #fff; color: #fff; font: bold 13px/22px sans-serif;
    box-shadow: 0 1px 4px rgba(0,0,0,0.5); }
  .yz-site { background: none; border: none; }
  .yz-panel .yz-note { color: #7a0019; max-width: 220px; }
  .yz-search { background: #fff; padding: 4px; width: 220px; }
  .yz-search input { width: 100%; box-sizing: border-box; border: 1px solid #bbb; border-radius: 3px;
    padding: 3px 6px; font: 13px "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
  .yz-search ul { list-style: none; margin: 2px 0 0; padding: 0; max-height: 240px; overflow-y: auto; }
  .yz-search li { padding: 2px 6px; cursor: pointer; font-size: 12px; }
  .yz-search li:hover, .yz-search li.yz-active { background: #e6eefb; }
  .yz-popup th { color: #555; font-weight: normal; padding-right: 8px; white-space: nowrap; vertical-align: top; }
</style>"""


# --- helpers --------------------------------------------------------------------------------------------------------


def _share_colour(share: float) -> str:
    """Colour of a covered share (0–1) on :data:`SHARE_SCALE`; grey when unknown."""
    if not math.isfinite(share):
        return "#bbbbbb"
    return _scale_colour(min(max(share, 0.0), 1.0), 0.0, 1.0, SHARE_SCALE)


def _demand_range(gaps: gpd.GeoDataFrame) -> tuple[float, float]:
    values = gaps["demand"].to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 0.0
    return float(values.min()), float(values.max())


def _scale_colour(value: float, lo: float, hi: float, scale: tuple[str, ...] = GAP_SCALE) -> str:
    """Colour of ``value`` on ``scale`` stretched over [lo, hi], linearly interpolated in RGB."""
    if not math.isfinite(value):
        return scale[0]
    t = 1.0 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
    pos = t * (len(scale) - 1)
    i = min(int(pos), len(scale) - 2)
    f = pos - i
    a, b = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in scale[i : i + 2])
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def _bounds(
    stations: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    boundary: BaseGeometry | None,
    radius_m: float,
) -> list[list[float]] | None:
    """[[south, west], [north, east]] in degrees covering all layers (stations padded by the ring radius)."""
    boxes = []
    for gdf, pad_m in ((stations, radius_m), (cells, 0.0), (gaps, 0.0)):
        if len(gdf) and not gdf.geometry.is_empty.all():
            minx, miny, maxx, maxy = gdf.total_bounds
            if np.isfinite([minx, miny, maxx, maxy]).all():
                dlat = pad_m / 111_320.0
                dlon = pad_m / (111_320.0 * max(math.cos(math.radians((miny + maxy) / 2)), 0.01))
                boxes.append((minx - dlon, miny - dlat, maxx + dlon, maxy + dlat))
    if boundary is not None and not boundary.is_empty:
        boxes.append(boundary.bounds)
    if not boxes:
        return None
    b = np.array(boxes, dtype=float)
    return [[float(b[:, 1].min()), float(b[:, 0].min())], [float(b[:, 3].max()), float(b[:, 2].max())]]


def _centre(
    stations: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, gaps: gpd.GeoDataFrame, boundary: BaseGeometry | None
) -> tuple[float, float]:
    """(lat, lon) start centre before fitting bounds; the middle of China when there is no data."""
    b = _bounds(stations, cells, gaps, boundary, 0.0)
    if b is None:
        return (35.0, 105.0)
    return ((b[0][0] + b[1][0]) / 2, (b[0][1] + b[1][1]) / 2)


def _vendored(url: str) -> bool:
    head, _, rel = url.partition("/")
    return head == ASSET_DIR_NAME and bool(rel) and ".." not in rel.split("/") and (STATIC_DIR / rel).is_file()


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value).strip()


def _int(value: Any) -> int | None:
    return None if _missing(value) else int(value)


def _esc(value: Any) -> str:
    """HTML-escape, also neutralising backticks and ``$`` because folium embeds popups in JS template literals."""
    return html.escape(str(value)).replace("`", "&#96;").replace("$", "&#36;")


def _css_token(code: Any) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(code)) or "unknown"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _distance(metres: float) -> str:
    if not math.isfinite(metres):
        return "—"
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:.0f} m"


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        key = {"script": "src", "link": "href"}.get(tag)
        if key is None:
            return
        for name, value in attrs:
            if name == key and value:
                self.urls.append(value.strip())

    handle_startendtag = handle_starttag
