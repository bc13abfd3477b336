"""The map's overlays, each built from WGS 84 or GCJ-02 lon/lat geometries: stations, service rings, demand heat,
gaps, the study area, townships, offline streets, the area reached along the streets and recommended sites.

Every builder returns a list of folium layers for one coordinate system; ``map_from_layers`` calls it once per
system. Folium takes (lat, lon) pairs: the swap happens here. Radii are metres.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from folium.plugins import HeatMap, MarkerCluster
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from yizhan.maps.assets import CLUSTER_CSS, CLUSTER_JS, HEAT_JS, links
from yizhan.maps.formatting import (
    ALONG_STREETS,
    STRAIGHT,
    clean_text,
    css_token,
    distance_text,
    esc,
    is_missing,
    measured_distance_text,
    number_text,
    optional_int,
)
from yizhan.maps.style import (
    AREA_COLOUR,
    CLOSED_COLOUR,
    CROWDED_COLOUR,
    KIND_COLOURS,
    NIGHT_GAP_COLOUR,
    OTHER_KIND_COLOUR,
    PROFILE_LABELS,
    SERVICE_AREA_COLOUR,
    SITE_COLOUR,
    STREET_COLOUR,
    gap_colour,
    share_colour,
)
from yizhan.siting.candidates import HOST_TYPES
from yizhan.siting.extensions import until_hour
from yizhan.stations.vocab import label

LAYER_STATIONS = "驿站 Stations"
LAYER_HEAT = "配送需求热力 Demand heat"
LAYER_GAPS = "覆盖缺口 Gaps"
LAYER_AREA = "研究区 Area"
LAYER_UNITS = "乡镇街道覆盖率 Townships"
LAYER_STREETS = "道路（离线）Streets, offline"
LAYER_SITES = "推荐新址 Recommended sites"
LAYER_HOURS = "延长营业 Longer hours"
LAYER_BAND_GAPS = "时段缺口 Gaps in the hours chosen"
LAYER_NIGHT_GAPS = "夜间缺口 Night gaps"
LAYER_CROWDED = "拥挤驿站 Crowded stations"

CLUSTER_THRESHOLD = 500
"""Stations are drawn in a MarkerCluster when there are more than this many."""

COMPACT_THRESHOLD = 5000
"""Above this many stations (national registry scale) the stations are shipped as compact JSON arrays and the
markers, cluster and popups are built in JavaScript, and no service rings are drawn."""

RANK_LABELS = 10
"""Gaps with rank 1..RANK_LABELS get a rank number drawn on the map."""


def ring_layer_name(radius_m: float) -> str:
    """Layer-control name of the straight-line service rings of ``radius_m`` metres, e.g.
    ``"1 公里 服务半径（直线 straight）Rings"``."""
    return f"{distance_text(radius_m)} 服务半径（{STRAIGHT}）Rings"


def service_area_name(summary: Mapping[str, Any]) -> str:
    """Layer-control name of the area reached along the streets, e.g.
    ``"1 公里 步行服务范围（沿街道 along the streets）Service area"``."""
    profile = str(summary.get("profile") or "walk")
    return (f"{distance_text(float(summary['radius_m']))} {PROFILE_LABELS.get(profile, profile)}服务范围"
            f"（{ALONG_STREETS}）Service area")


def station_cluster(prefix: str, **kwargs: Any) -> MarkerCluster:
    """A MarkerCluster (single markers from zoom 15) whose JS/CSS are the vendored ones under ``prefix``."""
    cluster = MarkerCluster(control=False, disable_clustering_at_zoom=15, spiderfy_on_max_zoom=True, **kwargs)
    cluster.default_js = links(prefix, CLUSTER_JS)
    cluster.default_css = links(prefix, CLUSTER_CSS)
    return cluster


def station_style(kind: Any, status: Any) -> dict[str, Any]:
    """Leaflet path options of a station marker: filled in its kind's colour, or grey and hollow when closed."""
    if status == "closed":
        return {"color": CLOSED_COLOUR, "weight": 2, "fillColor": "#ffffff", "fillOpacity": 0.7, "dashArray": "3,2",
                "className": "yz-station yz-station-closed"}
    return {"color": "#ffffff", "weight": 1.5, "fillColor": KIND_COLOURS.get(kind, OTHER_KIND_COLOUR),
            "fillOpacity": 1.0, "className": f"yz-station yz-station-{css_token(kind)}"}


def station_layers(stations: gpd.GeoDataFrame, prefix: str) -> list[Any]:
    """A circle marker per station with its name as tooltip, clustered above :data:`CLUSTER_THRESHOLD`.

    Each marker carries its row index as the Leaflet option ``yzIdx``: the page script binds the popup of that
    station to it and finds it for the search box.
    """
    markers = []
    for i, (geom, row) in enumerate(zip(stations.geometry, stations.itertuples(index=False), strict=True)):
        if geom is None or geom.is_empty:
            continue
        marker = folium.CircleMarker(location=(geom.y, geom.x), radius=7,
                                     tooltip=folium.Tooltip(esc(clean_text(row.name) or row.external_id)),
                                     **station_style(row.kind, row.status))
        marker.options["yzIdx"] = i
        markers.append(marker)
    if len(stations) > CLUSTER_THRESHOLD:
        cluster = station_cluster(prefix)
        for marker in markers:
            marker.add_to(cluster)
        return [cluster]
    return markers


def ring_layers(stations: gpd.GeoDataFrame, radius_m: float, *, outline_only: bool = False) -> list[Any]:
    """A ring of ``radius_m`` metres around each active station, in its kind's colour, not clickable."""
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


def site_layers(sites: gpd.GeoDataFrame, radius_m: float, *, demand_hours: bool = False) -> list[Any]:
    """Recommended sites: a dashed ring of the radius and a numbered marker each, rank 1 on top. With
    ``demand_hours`` (an hours recommendation) the popup's gain is the uncovered demand-hours removed and the share
    after is of demand-hours."""
    layers: list[Any] = []
    rows = sorted(zip(sites.geometry, sites.itertuples(index=False), strict=True), key=lambda p: -int(p[1].rank))
    for geom, row in rows:
        if geom is None or geom.is_empty:
            continue
        ring = folium.Circle(location=(geom.y, geom.x), radius=float(radius_m), color=SITE_COLOUR, weight=2,
                             dash_array="6,4", fill=False, class_name="yz-site-ring")
        ring.options["interactive"] = False
        layers.append(ring)
        share = f"{float(row.covered_share_after) * 100:.1f}%"
        gain = (f"<tr><th>减少未覆盖 Removes</th><td>{number_text(float(row.gain))} 需求小时 demand-hours</td></tr>"
                f"<tr><th>累计分时覆盖率 Covered after</th><td>{share}</td></tr>" if demand_hours else
                f"<tr><th>新增覆盖订单 Adds</th><td>+{number_text(float(row.gain))} 单</td></tr>"
                f"<tr><th>累计覆盖率 Covered after</th><td>{share}</td></tr>")
        popup = (
            '<div class="yz-popup"><table>'
            f"<tr><th>推荐排名 Rank</th><td><b>{int(row.rank)}</b></td></tr>"
            f"<tr><th>名称 Name</th><td>{esc(clean_text(row.name))}</td></tr>"
            f"<tr><th>地址 Address</th><td>{esc(clean_text(getattr(row, 'address', None)) or '—')}</td></tr>"
            f"<tr><th>承办类型 Host</th><td>{esc(host_text(row.host_type))}</td></tr>"
            f"<tr><th>编号 Id</th><td>{esc(row.external_id)}</td></tr>{gain}"
            f"<tr><th>坐标 Lon, lat</th><td>{geom.x:.6f}, {geom.y:.6f}</td></tr></table></div>"
        )
        layers.append(folium.Marker(
            location=(geom.y, geom.x),
            icon=folium.DivIcon(html=f"<div>{int(row.rank)}</div>", icon_size=(26, 26), icon_anchor=(13, 13),
                                class_name="yz-site"),
            tooltip=folium.Tooltip(f"推荐 {int(row.rank)}: {esc(clean_text(row.name))}"),
            popup=folium.Popup(popup, max_width=320),
        ))
    return layers


def hour_action_title(kind: str, rule: str, extend_to: str | None) -> str:
    """One line saying what an hours action does, Chinese first: ``延长至 22:00 · Mo-Fr 17:00-22:00`` (a station
    extended to ``extend_to``), ``全天24小时 open 24 h · …`` (opened round the clock) or ``新址 new site · …``;
    ``rule`` the hours it adds as an OSM rule (local time)."""
    if kind == "extend" and extend_to:
        end = f"{until_hour(extend_to):02d}:00"  # counted in whole hours: 22:30 keeps the hour 22–23 open
        head = f"延长至 {end} extended to {end}"
    elif kind == "extend":
        head = "延长营业 longer hours"
    elif kind == "24h":
        head = "全天24小时 open 24 h"
    else:
        head = "新址 new site"
    return f"{head} · {rule}" if rule else head


def hour_action_layers(actions: gpd.GeoDataFrame, extend_to: str | None) -> list[Any]:
    """Stations whose hours an hours recommendation extends or opens round the clock (``actions``: EPSG:4326
    points with ``rank, kind, kind_zh, kind_en, id, name, hours_added, hours_rule, gain, covered_share_after``):
    a numbered round clock-coloured marker each (rank 1 on top), whose popup says, Chinese first, what is added
    (:func:`hour_action_title`), the hours a week it adds, the uncovered demand-hours it removes after the actions
    ranked above and the covered share of demand-hours then."""
    layers: list[Any] = []
    rows = sorted(zip(actions.geometry, actions.itertuples(index=False), strict=True), key=lambda p: -int(p[1].rank))
    for geom, row in rows:
        if geom is None or geom.is_empty:
            continue
        title = hour_action_title(str(row.kind), clean_text(row.hours_rule), extend_to)
        popup = (
            f'<div class="yz-popup"><div class="yz-hours-title">{esc(title)}</div><table>'
            f"<tr><th>推荐排名 Rank</th><td><b>{int(row.rank)}</b></td></tr>"
            f"<tr><th>措施 Action</th><td>{esc(row.kind_zh)} {esc(row.kind_en)}</td></tr>"
            f"<tr><th>驿站 Station</th><td>{esc(clean_text(row.name) or row.id)}</td></tr>"
            f"<tr><th>编号 Id</th><td>{esc(row.id)}</td></tr>"
            f"<tr><th>增加时段 Hours added</th><td>{int(row.hours_added)} 小时/周 h a week</td></tr>"
            f"<tr><th>减少未覆盖 Removes</th><td>{number_text(float(row.gain))} 需求小时 demand-hours</td></tr>"
            f"<tr><th>累计分时覆盖率 Covered after</th><td>{float(row.covered_share_after) * 100:.1f}%</td></tr>"
            "</table></div>"
        )
        layers.append(folium.Marker(
            location=(geom.y, geom.x),
            icon=folium.DivIcon(html=f"<div>{int(row.rank)}</div>", icon_size=(26, 26), icon_anchor=(13, 13),
                                class_name=f"yz-hours yz-hours-{css_token(str(row.kind))}"),
            tooltip=folium.Tooltip(f"推荐 {int(row.rank)}: {esc(title)}"),
            popup=folium.Popup(popup, max_width=340),
        ))
    return layers


def heat_layers(cells: gpd.GeoDataFrame, prefix: str) -> list[Any]:
    """A heat map of the demand cells' centroids weighted by ``weight`` (scaled to the maximum), below the gaps."""
    geoms = np.asarray(cells.geometry.values, dtype=object)
    weights = cells["weight"].to_numpy(dtype=float, na_value=np.nan)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & np.isfinite(weights) & (weights > 0)
    if not keep.any():
        return []
    centres = shapely.centroid(geoms[keep])
    w = weights[keep] / weights[keep].max()
    data = np.column_stack([shapely.get_y(centres), shapely.get_x(centres), w]).tolist()
    heat = HeatMap(data, radius=25, blur=20, min_opacity=0.05, control=False, pane="yz-heat")
    heat.default_js = links(prefix, HEAT_JS)
    return [heat]


def host_text(host_type: Any) -> str:
    """A site's host type in Chinese (加油站, 邮局, …); ``"—"`` when missing."""
    code = clean_text(host_type)
    if not code:
        return "—"
    return HOST_TYPES.get(code) or label("host", code)


def gap_layers(gaps: gpd.GeoDataFrame, *, along_streets: bool = False) -> list[Any]:
    """The gaps coloured by unmet demand on the fixed classes of :func:`~yizhan.maps.style.gap_colour`, with
    tooltip and popup (the distance to the nearest station said as measured ``along_streets`` or straight), and
    rank numbers on the first :data:`RANK_LABELS`."""
    layers: list[Any] = []
    features = []
    labels: list[tuple[int, float, float]] = []  # (rank, lat, lon)
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
                "demand": number_text(demand),
                "area_km2": f"{float(row.area_m2) / 1e6:.2f}",
                "cells": int(row.cells),
                "nearest": esc(clean_text(row.nearest_station) or "—"),
                "distance": measured_distance_text(float(row.nearest_distance_m), along_streets=along_streets),
                "colour": gap_colour(demand),
            },
        })
        if int(row.rank) <= RANK_LABELS:
            spot = geom.representative_point()
            labels.append((int(row.rank), spot.y, spot.x))
    if features:
        fields = ["rank", "demand", "area_km2", "cells", "nearest", "distance"]
        aliases = [
            "缺口排名 Rank", "未覆盖需求（单）Unmet orders", "面积（平方公里）Area km²", "需求网格 Cells",
            "最近驿站 Nearest", "距离 Distance",
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


def unit_layers(units: gpd.GeoDataFrame) -> list[Any]:
    """Townships coloured by covered share, with a tooltip of share, demand and stations."""
    features = []
    for i, (geom, row) in enumerate(zip(units.geometry, units.itertuples(index=False), strict=True)):
        if geom is None or geom.is_empty:
            continue
        share = float(row.covered_share) if not is_missing(row.covered_share) else math.nan
        features.append({
            "type": "Feature",
            "id": f"unit-{i}",
            "geometry": mapping(geom),
            "properties": {
                "name": esc(clean_text(row.name) or "—"),
                "share": f"{share * 100:.1f}%" if math.isfinite(share) else "—",
                "demand": number_text(float(row.demand)) if not is_missing(row.demand) else "—",
                "stations": optional_int(row.stations) if not is_missing(row.stations) else "—",
                "colour": share_colour(share),
            },
        })
    if not features:
        return []
    fields = ["name", "share", "demand", "stations"]
    aliases = ["乡镇街道 Township", "覆盖率 Covered", "配送需求 Demand", "驿站 Stations"]
    return [folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        control=False,
        style_function=lambda f: {"color": "#555555", "weight": 1, "fillColor": f["properties"]["colour"],
                                  "fillOpacity": 0.35, "className": "yz-unit"},
        highlight_function=lambda _f: {"weight": 2.5, "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
    )]


def street_layers(streets: BaseGeometry) -> list[Any]:
    """The area's own streets as thin grey lines: a basemap that needs no tiles (offline office networks)."""
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(streets), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": STREET_COLOUR, "weight": 1, "opacity": 0.9, "interactive": False,
                                   "className": "yz-streets"},
    )]


def area_layers(boundary: BaseGeometry) -> list[Any]:
    """The study area's outline, dashed, not clickable."""
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(boundary), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": AREA_COLOUR, "weight": 2, "dashArray": "6,4", "fill": False,
                                   "interactive": False, "className": "yz-area"},
    )]


def service_area_layers(area: BaseGeometry) -> list[Any]:
    """The area reached along the streets (a network run), tinted, not clickable."""
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(area), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": SERVICE_AREA_COLOUR, "weight": 1, "fillColor": SERVICE_AREA_COLOUR,
                                   "fillOpacity": 0.18, "interactive": False, "className": "yz-service-area"},
    )]


def band_cell_rings(cells: gpd.GeoDataFrame) -> list[list[float]]:
    """Each cell's outline as a flat ``[lat, lon, lat, lon, …]`` (degrees rounded to 1e-6, ≈ 0.1 m; the closing
    point left out), for the page script to draw the cells of the chosen hour band; ``[]`` for a missing cell."""
    out: list[list[float]] = []
    for geom in cells.geometry:
        if geom is None or geom.is_empty:
            out.append([])
            continue
        poly = max(shapely.get_parts(geom), key=lambda p: p.area) if geom.geom_type == "MultiPolygon" else geom
        xy = np.asarray(poly.exterior.coords)[:-1, :2]
        out.append(np.round(xy[:, ::-1], 6).reshape(-1).tolist())
    return out


def night_gap_layers(cells: gpd.GeoDataFrame) -> list[Any]:
    """The night gaps (cells covered by day and not at night) merged into one shape, hatched purple, not
    clickable (the gaps and stations under it keep their popups)."""
    geoms = np.asarray(cells.geometry.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if not len(geoms):
        return []
    merged = shapely.union_all(geoms)
    return [folium.GeoJson(
        {"type": "Feature", "geometry": mapping(merged), "properties": {}},
        control=False,
        style_function=lambda _f: {"color": NIGHT_GAP_COLOUR, "weight": 1.2, "fillColor": NIGHT_GAP_COLOUR,
                                   "fillOpacity": 0.35, "dashArray": "4,3", "interactive": False,
                                   "className": "yz-night-gap"},
    )]


def crowded_layers(loads: gpd.GeoDataFrame, *, peak_label: Any) -> list[Any]:
    """A red ring around each crowded station (``loads`` rows with ``crowded``; EPSG:4326 points) whose popup
    says, Chinese first, its seats, its peak hour (``peak_label(hour)``), the demand within reach then and the
    orders per seat at that hour (within reach, per hour of a typical week). Only the ring is clickable: the
    station's own marker inside keeps its popup."""
    layers: list[Any] = []
    for geom, row in zip(loads.geometry, loads.itertuples(index=False), strict=True):
        if geom is None or geom.is_empty:
            continue
        seats = optional_int(row.seats)
        per_seat = float(row.per_seat) if not is_missing(row.per_seat) else math.nan
        popup = (
            '<div class="yz-popup"><div class="yz-crowded-title">拥挤驿站 Crowded station</div><table>'
            f"<tr><th>名称 Name</th><td>{esc(clean_text(row.name) or row.station_id)}</td></tr>"
            f"<tr><th>编号 Id</th><td>{esc(row.station_id)}</td></tr>"
            f"<tr><th>座位 Seats</th><td>{seats if seats is not None else '未登记 not recorded'}</td></tr>"
            f"<tr><th>高峰时段 Peak hour</th><td>{esc(peak_label(row.peak_hour))}</td></tr>"
            f"<tr><th>高峰需求 Demand at peak</th><td>{number_text(float(row.peak_demand))} 单/时 orders/h</td></tr>"
            f"<tr><th>每座每小时订单 Orders per seat per hour</th><td><b>"
            f"{f'{per_seat:.1f}' if math.isfinite(per_seat) else '—'}</b>（高峰时段 at the peak hour）</td></tr>"
            "</table></div>"
        )
        ring = folium.CircleMarker(location=(geom.y, geom.x), radius=12, color=CROWDED_COLOUR, weight=3,
                                   fill=False, class_name="yz-crowded",
                                   tooltip=folium.Tooltip(f"拥挤 crowded: {esc(clean_text(row.name))}"),
                                   popup=folium.Popup(popup, max_width=320))
        layers.append(ring)
    return layers
