"""Folium map of one coverage run: stations, service rings, demand heat, gaps, study area, legend and summary.

This module assembles the page; the parts live beside it: ``inputs`` (checks), ``basemaps`` (OSM / Amap and the
GCJ-02 shift), ``layers`` (the overlays), ``popup`` (the station popup), ``panels`` (legend and summary),
``glue`` (the call of the page script ``static/yizhan/map.js``) and ``assets`` (the vendored files).

Every input is WGS 84 lon/lat (EPSG:4326); Leaflet/Folium take (lat, lon) pairs, and the conversion happens only
inside the map modules. All JavaScript and CSS are served from ``maps/static`` (see its README) under a relative
``asset_prefix`` URL, so the page works offline; the map tiles are the only external resource.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, Figure
from shapely.geometry.base import BaseGeometry

from yizhan.coverage.runs import RunHours
from yizhan.maps.assets import (
    ASSET_DIR_NAME,
    MAP_CSS,
    MAP_JS,
    STATIC_DIR,
    asset_urls,
    copy_assets,
    external_urls,
    is_vendored,
    links,
)
from yizhan.maps.basemaps import SYSTEMS, add_basemaps, shift_frame, shift_geom
from yizhan.maps.glue import PageGlue, WeekGlue
from yizhan.maps.hours import (
    BAND_PANE,
    WEEK_KEY,
    WEEK_LABEL,
    band_bits,
    band_gaps,
    band_parts,
    band_share,
    hour_matrix,
    peak_label,
)
from yizhan.maps.inputs import (
    CELL_COLUMNS,
    GAP_COLUMNS,
    SITE_COLUMNS,
    STATION_COLUMNS,
    UNIT_COLUMNS,
    MapInputError,
    check_boundary,
    check_frame,
    check_lines,
    check_summary,
)
from yizhan.maps.layers import (
    COMPACT_THRESHOLD,
    LAYER_AREA,
    LAYER_BAND_GAPS,
    LAYER_CROWDED,
    LAYER_GAPS,
    LAYER_HEAT,
    LAYER_HOURS,
    LAYER_NIGHT_GAPS,
    LAYER_SITES,
    LAYER_STATIONS,
    LAYER_STREETS,
    LAYER_UNITS,
    area_layers,
    band_cell_rings,
    crowded_layers,
    gap_layers,
    heat_layers,
    hour_action_layers,
    night_gap_layers,
    ring_layer_name,
    ring_layers,
    service_area_layers,
    service_area_name,
    site_layers,
    station_cluster,
    station_layers,
    street_layers,
    unit_layers,
)
from yizhan.maps.panels import LeftOut, drawer_html, hour_rows, legend_html, summary_html, townships_html
from yizhan.maps.popup import nearest_station_m
from yizhan.maps.style import BAND_GAP_COLOUR
from yizhan.outputs import replacing
from yizhan.settings import DEFAULT_TIMEZONE
from yizhan.weekly.week import BANDS

__all__ = ["ASSET_DIR_NAME", "STATIC_DIR", "MapInputError", "map_from_layers", "write_map"]


def map_from_layers(
    *,
    stations: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    summary: Mapping[str, Any],
    radius_m: float,
    boundary: BaseGeometry | None = None,
    asset_prefix: str = ASSET_DIR_NAME,
    service_area: BaseGeometry | None = None,
    units: gpd.GeoDataFrame | None = None,
    streets: BaseGeometry | None = None,
    sites: gpd.GeoDataFrame | None = None,
    min_gap_demand: float = 0.0,
    timezone: str = DEFAULT_TIMEZONE,
    hours: RunHours | None = None,
    loads: pd.DataFrame | None = None,
    actions: Sequence[Mapping[str, Any]] | None = None,
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
        ``cells``, ``nearest_station`` (name) and ``nearest_distance_m`` (metres; along the streets when
        ``summary["mode"]`` is ``"network"``, else straight). Gaps under ``min_gap_demand`` are left out.
    summary : mapping
        Run summary with keys ``run_id, area, mode, radius_m, stations, demand_total, demand_covered,
        covered_share (0–1), gaps, created_at`` (ISO 8601); optionally ``area_name`` (the display name, the
        panel's title), ``profile`` and, for a recommendation, ``covered_share_before, new_sites, method, bound,
        gap, candidates, seconds``.
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
    streets : shapely LineString or MultiLineString, optional
        EPSG:4326 streets of the area, drawn as thin grey lines (a basemap that needs no tiles).
    sites : geopandas.GeoDataFrame, optional
        EPSG:4326 Points of recommended new sites with ``rank, external_id, name, host_type, gain`` (demand newly
        covered) and ``covered_share_after`` (0–1), optionally ``address``: drawn as numbered markers with dashed
        rings of ``radius_m`` and listed in the summary.
    hours : RunHours, optional
        The run's figures by hour of the week. With them and the cells' ``covered_hours`` (21 bytes, bit h set
        when covered at hour h of the week, Monday 0, local time) the page gets an hour selector (the bands of
        :data:`~yizhan.maps.hours.BANDS` or the whole week): the cells that are gaps in the chosen band (covered
        in fewer than half of its hours) are drawn as their own layer and the band's covered share is shown.
        Cells with ``night_gap`` are drawn as the night gaps' layer. Without ``hours`` the page is as before.
    loads : pandas.DataFrame, optional
        Stations' loads (``station_id, name, seats, peak_hour, peak_demand, per_seat, crowded, lon, lat``;
        WGS 84 degrees): the crowded ones are ringed as their own layer, with their orders per seat at the peak
        hour in the popup.
    actions : sequence of mappings, optional
        An hours recommendation's ranked actions (``siting.runs.HourAction``: ``rank, kind, kind_zh, kind_en, id,
        name, lon, lat`` (WGS 84 degrees), ``hours_added, hours_rule, gain, covered_share_after``): the stations
        extended or opened round the clock are drawn as their own layer (a round marker with the rank, a popup
        saying the hours added and the rule, e.g. 延长至 22:00 · Mo-Fr 17:00-22:00, with ``summary["extend_to"]``),
        the new sites among them come as ``sites``, and the panel lists all actions in their one order with their
        kind.
    min_gap_demand : float
        Unmet demand (orders) below which a gap is neither drawn nor counted; the legend says how many were left
        out and their demand. Gap colours are fixed classes (:data:`~yizhan.maps.style.GAP_CLASS_BREAKS`), the
        same on every map.
    timezone : str
        IANA time zone in which the run's time is shown.
    asset_prefix : str
        URL prefix (relative, or absolute path such as ``/yizhan-assets``) under which the files of
        :data:`STATIC_DIR` are served. :func:`write_map` expects the default.

    Returns
    -------
    folium.Map
        The map, fitted to the data, whose JS/CSS links all point under ``asset_prefix``. It has two base layers,
        OpenStreetMap (WGS 84) and Amap (GCJ-02); every overlay is built in both coordinate systems and the page
        shows the set matching the active base layer (open it with ``#gcj02`` to start on Amap). The panels
        (summary, legend, township table) fold into a drawer on a phone. Above
        :data:`~yizhan.maps.layers.COMPACT_THRESHOLD` stations the stations are built in JavaScript from compact
        arrays and no rings are drawn.

    Raises
    ------
    MapInputError
        (a ``ValueError``) if a layer is not in EPSG:4326, lacks a column, has the wrong geometry type, or the
        summary is missing keys or disagrees with ``radius_m``.
    """
    check_frame("stations", stations, STATION_COLUMNS, ("Point",))
    check_frame("cells", cells, CELL_COLUMNS, ("Polygon", "MultiPolygon"))
    check_frame("gaps", gaps, GAP_COLUMNS, ("Polygon", "MultiPolygon"))
    if units is not None:
        check_frame("units", units, UNIT_COLUMNS, ("Polygon", "MultiPolygon"))
    if sites is not None:
        check_frame("sites", sites, SITE_COLUMNS, ("Point",))
    check_summary(summary, radius_m)
    hour_stations = _hour_stations(actions) if actions is not None else None
    if boundary is not None:
        check_boundary(boundary)
    if service_area is not None:
        check_boundary(service_area)
    if streets is not None:
        check_lines(streets)
    prefix = asset_prefix.rstrip("/")
    compact = len(stations) > COMPACT_THRESHOLD
    network = service_area is not None
    gaps, left_out = _gaps_from(gaps, min_gap_demand)

    # the scale is added by the page script, metric only
    m = folium.Map(tiles=None, control_scale=False, zoom_start=13, location=_centre(stations, cells, gaps, boundary))
    m.default_js = links(prefix, MAP_JS)
    m.default_css = links(prefix, MAP_CSS)
    tiles = add_basemaps(m)
    folium.map.CustomPane("yz-heat", z_index=350, pointer_events=False).add_to(m)
    if hours is not None:  # the cells of the chosen hour band, drawn by the page script under the stations
        folium.map.CustomPane(BAND_PANE, z_index=390, pointer_events=False).add_to(m)

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
        paired(folium.FeatureGroup(name=LAYER_STREETS), lambda sy: street_layers(shift_geom(streets, sy)))
    if units is not None:
        paired(folium.FeatureGroup(name=LAYER_UNITS), lambda sy: unit_layers(shift_frame(units, sy)))
    if boundary is not None:
        paired(folium.FeatureGroup(name=LAYER_AREA), lambda sy: area_layers(shift_geom(boundary, sy)))
    paired(folium.FeatureGroup(name=LAYER_HEAT), lambda sy: heat_layers(shift_frame(cells, sy), prefix))
    along_streets = summary["mode"] == "network"
    paired(folium.FeatureGroup(name=LAYER_GAPS),
           lambda sy: gap_layers(shift_frame(gaps, sy), along_streets=along_streets))
    week = _week_glue(cells, hours, paired) if hours is not None else None
    night = hours is not None and "night_gap" in cells and bool(cells["night_gap"].fillna(False).astype(bool).any())
    if night:
        night_cells = cells[cells["night_gap"].fillna(False).astype(bool).to_numpy()]
        paired(folium.FeatureGroup(name=LAYER_NIGHT_GAPS), lambda sy: night_gap_layers(shift_frame(night_cells, sy)))
    if service_area is not None:
        paired(folium.FeatureGroup(name=service_area_name(summary)),
               lambda sy: service_area_layers(shift_geom(service_area, sy)))
    if not compact:
        paired(folium.FeatureGroup(name=ring_layer_name(radius_m)),
               lambda sy: ring_layers(shift_frame(stations, sy), radius_m, outline_only=network))
    station_group = folium.FeatureGroup(name=LAYER_STATIONS)
    if compact:
        clusters = {}
        for system in SYSTEMS:
            # no chunkedLoading: markercluster 1.1.0 breaks ("reading 'lat'") when the view changes mid-load
            cluster = station_cluster(prefix, name=f"{LAYER_STATIONS} [{system}]", show=system == SYSTEMS[0])
            cluster.add_to(station_group)
            clusters[system] = cluster
        station_group.add_to(m)
        pairs.append((station_group, clusters))
    else:
        paired(station_group, lambda sy: station_layers(shift_frame(stations, sy), prefix))
    crowded = _crowded(loads)
    if sites is not None:
        demand_hours = actions is not None
        paired(folium.FeatureGroup(name=LAYER_SITES),
               lambda sy: site_layers(shift_frame(sites, sy), radius_m, demand_hours=demand_hours))
    if hour_stations is not None and len(hour_stations):
        extend_to = summary.get("extend_to")
        paired(folium.FeatureGroup(name=LAYER_HOURS),
               lambda sy: hour_action_layers(shift_frame(hour_stations, sy), extend_to))
    if crowded is not None:
        paired(folium.FeatureGroup(name=LAYER_CROWDED),
               lambda sy: crowded_layers(shift_frame(crowded, sy), peak_label=peak_label))
    control = folium.LayerControl(collapsed=False, position="topright")
    control.add_to(m)
    PageGlue(m, pairs, station_group, stations, nearest_station_m(stations), compact=compact, tiles=tiles,
             prefix=prefix, layer_control=control, week=week).add_to(m)

    root = cast(Figure, m.get_root())  # a Map's root is the page's Figure
    panels = [
        summary_html(summary, timezone=timezone, gaps_shown=len(gaps), left_out=left_out, sites=sites,
                     hour_rows=hour_rows(hours.figures, band_share(np.asarray(hours.demand, dtype=float),
                                                                   np.asarray(hours.covered, dtype=float)))
                     if hours is not None else None, actions=actions),
        legend_html(radius_m=radius_m, left_out=left_out, network=network, units=units is not None,
                    rings=not compact, sites=sites is not None, week=week is not None, night=night,
                    crowded=crowded is not None, hours=hour_stations is not None and len(hour_stations) > 0),
    ]
    if units is not None and len(units):
        panels.append(townships_html(units))
    root.html.add_child(Element(drawer_html(*panels)), name="yz_panels")

    bounds = _bounds(stations, cells, gaps, boundary, radius_m)
    if bounds is not None:
        m.fit_bounds(bounds, padding=(24, 24))
    return m


def write_map(m: folium.Map, path: Path) -> Path:
    """Write the map's HTML to ``path`` and copy the assets to ``path.parent / "yizhan-assets"``, each under a
    temporary name first.

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
    OSError
        If the folder cannot take the page or its assets (full, read-only, not a folder): the page and the
        assets are each written whole or not at all (an earlier copy stays), no temporary file is left.
    """
    path = Path(path)
    page = m.get_root().render()
    external = external_urls(page)
    if external:
        raise MapInputError(f"map links external scripts/stylesheets {external}; build it with map_from_layers")
    missing = [u for u in asset_urls(page) if not is_vendored(u)]
    if missing:
        raise MapInputError(
            f"map links assets not found under {ASSET_DIR_NAME}/ in {STATIC_DIR}: {missing}; "
            f"build it with asset_prefix={ASSET_DIR_NAME!r} to write it to disk"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    copy_assets(path.parent)
    with replacing(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def _week_glue(cells: gpd.GeoDataFrame, hours: RunHours,
               paired: Callable[[folium.FeatureGroup, Callable[[str], Any]], None]) -> WeekGlue | None:
    """The hour selector's data and its (empty) layer of band gaps, which the page script fills with the cells
    that are gaps of the chosen band; None when the cells carry no ``covered_hours``."""
    covered = hour_matrix(cells)
    if covered is None:
        return None
    weight = cells["weight"].to_numpy(dtype=float, na_value=np.nan)
    bits = np.where(np.isfinite(weight) & (weight > 0), band_bits(band_gaps(covered)), 0)
    keep = np.flatnonzero(bits)
    shown = cells.iloc[keep]
    group = folium.FeatureGroup(name=LAYER_BAND_GAPS)
    paired(group, lambda _sy: [])
    demand, done = np.asarray(hours.demand, dtype=float), np.asarray(hours.covered, dtype=float)
    choices = [{"key": b.key, "group": band_parts(b)[0], "text": band_parts(b)[1], "label": f"{b.zh} {b.en}",
                "share": _finite(band_share(demand, done, b.hours.astype(np.int64)))} for b in BANDS.values()]
    choices.append({"key": WEEK_KEY, "group": None, "text": WEEK_LABEL, "label": WEEK_LABEL,
                    "share": _finite(band_share(demand, done))})
    data = {"choices": choices, "week": len(BANDS), "cells": keep.tolist(), "bits": bits[keep].tolist(),
            "colour": BAND_GAP_COLOUR, "pane": BAND_PANE,
            **{sy: band_cell_rings(shift_frame(shown, sy)) for sy in SYSTEMS}}
    return WeekGlue(group, data)


def _finite(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


ACTION_KEYS = ("rank", "kind", "kind_zh", "kind_en", "id", "name", "lon", "lat", "hours_added", "hours_rule", "gain",
               "covered_share_after")


def _hour_stations(actions: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """The actions on existing stations (``extend``, ``24h``) as EPSG:4326 points; MapInputError naming an
    action that lacks a key or has no finite lon/lat."""
    for i, a in enumerate(actions):
        missing = [k for k in ACTION_KEYS if k not in a]
        if missing:
            raise MapInputError(f"actions[{i}]: missing {', '.join(missing)}")
        if not (isinstance(a["lon"], int | float) and isinstance(a["lat"], int | float)
                and math.isfinite(a["lon"]) and math.isfinite(a["lat"])):
            raise MapInputError(f"actions[{i}]: lon, lat {a['lon']!r}, {a['lat']!r}: expected finite degrees")
    rows = [{k: a[k] for k in ACTION_KEYS} for a in actions if a["kind"] != "site"]
    frame = pd.DataFrame(rows, columns=list(ACTION_KEYS))
    return gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]),
                            geometry=gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
                            crs=4326)


def _crowded(loads: pd.DataFrame | None) -> gpd.GeoDataFrame | None:
    """The crowded stations of ``loads`` as EPSG:4326 points (most orders per seat first), or None when none."""
    if loads is None or not len(loads) or "crowded" not in loads:
        return None
    rows = loads[loads["crowded"].fillna(False).astype(bool).to_numpy()]
    rows = rows[np.isfinite(rows["lon"].to_numpy(dtype=float)) & np.isfinite(rows["lat"].to_numpy(dtype=float))]
    if not len(rows):
        return None
    rows = rows.sort_values("per_seat", ascending=False, na_position="last")
    return gpd.GeoDataFrame(rows.reset_index(drop=True), geometry=gpd.points_from_xy(rows["lon"], rows["lat"]),
                            crs=4326)


def _gaps_from(gaps: gpd.GeoDataFrame, min_gap_demand: float) -> tuple[gpd.GeoDataFrame, LeftOut]:
    """The gaps of at least ``min_gap_demand`` unmet orders (ranks unchanged), and what was left out."""
    demand = gaps["demand"].to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(demand) & (demand >= min_gap_demand)
    dropped = demand[~keep]
    left = LeftOut(minimum=float(min_gap_demand), count=int((~keep).sum()),
                   demand=float(np.nansum(dropped)) if len(dropped) else 0.0)
    return gaps[keep], left


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

