"""The station popup, defined once: which rows it shows and how each value is written.

Python writes every value (HTML-escaped, with its unit) as a column over the stations; the page script
(``static/yizhan/map.js``, ``popupHtml``) turns the rows of one station into the popup's table. Columns whose
values repeat (kind, host, hours, …) are dictionary-coded so a national-scale page stays small.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from yizhan.maps.formatting import clean_text, esc, measured_distance_text, optional_int
from yizhan.stations.vocab import label

POPUP_ROWS: tuple[tuple[str, str], ...] = (
    ("名称", "name"), ("类型", "kind"), ("承办单位", "host"), ("地址", "address"), ("开放时间", "hours"),
    ("设施", "amenities"), ("座位", "seats"), ("星级", "stars"), ("状态", "status"), ("距最近驿站", "nearest"),
    ("编号", "id"),
)
"""(label, column) of each popup row, top to bottom."""

CODED_COLUMNS = frozenset({"kind", "host", "hours", "amenities", "seats", "stars", "status"})
"""Columns shipped as ``{"codes": [...], "values": [...]}`` (few distinct values); the others as plain lists."""

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
    present = geoms.copy()
    present[~ok] = None  # no coordinates asked of missing or empty geometries
    lon = np.where(ok, shapely.get_x(present), np.nan)
    lat = np.where(ok, shapely.get_y(present), np.nan)
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
    dist, pos = np.asarray(dist).reshape(len(query), k), np.asarray(pos).reshape(len(query), k)
    self_hit = idx_active[pos[:, 0]] == query
    first = np.where(self_hit, 1, 0)
    valid = first < k
    chosen = np.where(valid, dist[np.arange(len(query)), np.minimum(first, k - 1)], np.nan)
    out[query] = chosen
    return out


def popup_columns(stations: gpd.GeoDataFrame, nearest: np.ndarray) -> dict[str, Any]:
    """The popups of all stations, for the page script.

    Parameters
    ----------
    stations : geopandas.GeoDataFrame
        The map's stations (columns as in ``map_from_layers``); row ``i`` is station index ``i`` on the page.
    nearest : numpy.ndarray
        Metres from each station to the nearest other active station (NaN if none), see :func:`nearest_station_m`.

    Returns
    -------
    dict
        ``"popup"``: the escaped ``[label, column]`` rows of :data:`POPUP_ROWS`; and per column either a list of
        HTML-escaped strings (one per station) or, for :data:`CODED_COLUMNS`, ``{"codes": [...], "values": [...]}``.
    """
    columns = _values(stations, nearest)
    out: dict[str, Any] = {"popup": [[esc(text), column] for text, column in POPUP_ROWS]}
    for _, column in POPUP_ROWS:
        out[column] = dictionary_coded(columns[column]) if column in CODED_COLUMNS else columns[column]
    return out


def dictionary_coded(values: Iterable[Any]) -> dict[str, list[Any]]:
    """``values`` as ``{"codes": [...], "values": [...]}``: the distinct values in first-seen order, and the
    index of each value among them."""
    vocab: dict[Any, int] = {}
    codes = [vocab.setdefault(v, len(vocab)) for v in values]
    return {"codes": codes, "values": list(vocab)}


def _values(stations: gpd.GeoDataFrame, nearest: np.ndarray) -> dict[str, list[str]]:
    """Each popup column as one escaped string per station; ``"—"`` (or ``"未填报"`` for hours) when unknown."""
    seats = [optional_int(v) for v in stations["seats"]]
    stars = [optional_int(v) for v in stations["stars"]]
    addresses = (" ".join(t for t in (clean_text(tw), clean_text(ad)) if t)
                 for tw, ad in zip(stations["township"], stations["address"], strict=True))
    return {
        "name": [esc(clean_text(v) or "—") for v in stations["name"]],
        "kind": [esc(label("kind", v)) for v in stations["kind"]],
        "host": [esc(label("host", v)) if clean_text(v) else "—" for v in stations["host"]],
        "address": [esc(a) or "—" for a in addresses],
        "hours": [esc(clean_text(v)) or "未填报" for v in stations["opening_hours"]],
        "amenities": ["、".join(esc(label("amenity", str(a))) for a in _listed(v)) or "—"
                      for v in stations["amenities"]],
        "seats": [f"{n} 个" if n is not None else "—" for n in seats],
        "stars": [f"{'★' * n} ({n})" if n is not None else "—" for n in stars],
        "status": [esc(label("status", v)) for v in stations["status"]],
        "nearest": [measured_distance_text(d, along_streets=False) for d in nearest],
        "id": [esc(clean_text(v)) or "—" for v in stations["external_id"]],
    }


def _listed(value: Any) -> list[Any]:
    """The amenity codes of one station (a list, tuple or array); none for anything else."""
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []
