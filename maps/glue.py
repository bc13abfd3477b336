"""The map page's own script: one call of ``yizhanGlue`` (``static/yizhan/map.js``) with this map's layers and
station data, which switches the overlay set with the basemap, binds the station popups, builds the compact
station layer, adds the station search box and the metric scale, folds the layer list and the panels on a phone
and keeps popups clear of the panels."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import jinja2
import numpy as np
import shapely
from folium.elements import JSCSSMixin

from yizhan.maps.assets import GLUE_CSS, GLUE_JS, links
from yizhan.maps.basemaps import SYSTEM_LABELS, SYSTEM_OF_BASE, SYSTEMS, gcj_coords
from yizhan.maps.formatting import clean_text
from yizhan.maps.layers import station_style
from yizhan.maps.popup import dictionary_coded, popup_columns

COMPACT_MARKER_RADIUS = 6
"""Radius in pixels of the markers built in JavaScript (folium's own station markers have 7)."""


@dataclass
class WeekGlue:
    """The hour selector of a run by hour of the week: its layer group (one empty child per coordinate system,
    filled by the page script) and its data: ``choices`` (the bands, then the whole week: ``key``, ``group`` and
    ``text`` of its option, ``label`` shown under the list once chosen, ``share``), ``week`` (the whole week's
    index), ``cells`` (row index of each cell that is a gap of some choice), ``bits`` (per such cell, bit j set
    when it is a gap of choice j) and per coordinate system the cells' outlines (``layers.band_cell_rings``)."""

    group: folium.FeatureGroup
    data: dict[str, Any]


class PageGlue(JSCSSMixin):
    """Links ``map.js``/``map.css`` under the asset prefix and calls ``yizhanGlue`` for one map.

    Parameters
    ----------
    m : folium.Map
        The map.
    pairs : list of (folium.FeatureGroup, dict)
        Each overlay group with its child layer per coordinate system (``SYSTEMS``); includes the stations' pair.
    station_group : folium.FeatureGroup
        The stations' group (its pair is passed to the page last).
    stations : geopandas.GeoDataFrame
        The map's stations, EPSG:4326 lon/lat; row ``i`` is the marker with ``yzIdx`` ``i``.
    nearest : numpy.ndarray
        Metres to each station's nearest other active station (NaN if none).
    compact : bool
        The markers are built in JavaScript from compact arrays (national scale).
    tiles : mapping
        The base tile layer of each coordinate system.
    prefix : str
        URL prefix of the assets, without a trailing slash.
    layer_control : folium.LayerControl
        The layer list (rebuilt collapsed by the page script on a phone).
    week : WeekGlue, optional
        The hour selector of a run by hour of the week (its group is among ``pairs``).
    """

    _template = jinja2.Template("""
{% macro script(this, kwargs) %}
(function () {
  var names = {{ this.names }};
  var data = {{ this.data }};
  yizhanGlue({map: {{ this.map_name }}, pairs: {{ this.pairs }}, bases: {{ this.bases }}, tiles: {{ this.tiles }},
              labels: {{ this.labels }}, stationGroup: {{ this.station_group }}, names: names, data: data,
              compact: {{ this.compact }}, layerControl: {{ this.layer_control }}, week: {{ this.week }}});
})();
{% endmacro %}
""")

    def __init__(self, m: folium.Map, pairs: list[tuple[folium.FeatureGroup, dict[str, Any]]],
                 station_group: folium.FeatureGroup, stations: gpd.GeoDataFrame, nearest: np.ndarray, *,
                 compact: bool, tiles: Mapping[str, Any], prefix: str, layer_control: folium.LayerControl,
                 week: WeekGlue | None = None) -> None:
        super().__init__()
        self._name = "YizhanGlue"
        self.default_js = links(prefix, GLUE_JS)
        self.default_css = links(prefix, GLUE_CSS)
        self.map_name = m.get_name()
        station_pair = next(p for p in pairs if p[0] is station_group)
        others = [p for p in pairs if p[0] is not station_group]
        self.pairs = "[" + ", ".join(  # JS variable names, so not JSON; the stations pair is last
            f"{{parent: {parent.get_name()}, sets: {js_object(sets)}}}" for parent, sets in [*others, station_pair]
        ) + "]"
        self.bases = js(SYSTEM_OF_BASE)
        self.tiles = js_object(tiles)
        self.labels = js(SYSTEM_LABELS)
        self.station_group = station_group.get_name()
        self.names = js([clean_text(n) for n in stations["name"]])
        data = popup_columns(stations, nearest)
        if compact:
            data.update(compact_markers(stations))
        self.data = js(data)
        self.compact = js(compact)
        self.layer_control = layer_control.get_name()
        self.week = "null"
        if week is not None:
            sets = next(p[1] for p in pairs if p[0] is week.group)
            self.week = f"{{group: {week.group.get_name()}, sets: {js_object(sets)}, data: {js(week.data)}}}"


def compact_markers(stations: gpd.GeoDataFrame) -> dict[str, Any]:
    """The stations' markers as arrays for the page script to build.

    ``"wgs84"`` and ``"gcj02"``: flat ``[lat, lon, lat, lon, …]`` per coordinate system, degrees rounded to 1e-6
    (≈ 0.1 m), ``null`` where a station has no position; ``"marker"``: the dictionary-coded Leaflet options.
    """
    geoms = np.asarray(stations.geometry.values, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out: dict[str, Any] = {}
    for system in SYSTEMS:
        xy = np.full((len(geoms), 2), np.nan)
        if ok.any():
            xy[ok] = shapely.get_coordinates(geoms[ok])
            if system != "wgs84":
                xy[ok] = gcj_coords(xy[ok])
        latlon = np.round(xy[:, ::-1], 6).reshape(-1)
        out[system] = [None if not math.isfinite(v) else v for v in latlon.tolist()]
    styles = dictionary_coded((clean_text(k), clean_text(s))
                              for k, s in zip(stations["kind"], stations["status"], strict=True))
    styles["values"] = [{"radius": COMPACT_MARKER_RADIUS, **station_style(k, s)} for k, s in styles["values"]]
    out["marker"] = styles
    return out


def js_object(layers: Mapping[str, Any]) -> str:
    """``{key: variableName, …}`` of folium elements, as JavaScript source."""
    return "{" + ", ".join(f"{key}: {layer.get_name()}" for key, layer in layers.items()) + "}"


def js(value: Any) -> str:
    """JSON for embedding in a ``<script>``: ``<``, ``>``, ``&`` and U+2028/9 \\u-escaped (they only occur inside
    strings), so no value can end the script or read as markup."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text
