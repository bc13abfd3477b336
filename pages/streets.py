"""The streets around a rider, drawn on the rider's map without map tiles: the area's own street graph (walk,
else bike) cut to the edges with an end within a radius, simplified, as GeoJSON in WGS 84 lon/lat degrees."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from yizhan.areas import AreaInfo
from yizhan.coverage.streets import PROFILES, graph_file, load_area_graph
from yizhan.db.models import SRID
from yizhan.settings import Settings

RADIUS_M = 1500.0
"""How far around the rider the streets are drawn, metres."""
MAX_EDGES = 8000
"""At most this many street edges go to a phone (the nearest ends first)."""
TOLERANCE_M = 2.0
"""Simplification of the drawn lines, metres."""


def streets_near(area: AreaInfo, lon: float, lat: float, *, settings: Settings, radius_m: float = RADIUS_M,
                 max_edges: int = MAX_EDGES) -> dict[str, Any] | None:
    """The streets of ``area`` with an end within ``radius_m`` metres of (``lon``, ``lat``) (WGS 84 degrees) as
    a GeoJSON MultiLineString of [lon, lat] pairs (6 decimals, about 0.1 m), at most ``max_edges`` edges, the
    nearest first; an empty one when no street is that near; None when the area has no street graph."""
    profile = next((p for p in PROFILES if graph_file(area, p, settings).exists()), None)
    if profile is None:
        return None
    graph = load_area_graph(area, profile, settings)
    x, y = Transformer.from_crs(SRID, graph.crs_epsg, always_xy=True).transform(lon, lat)
    d2 = (graph.x - x) ** 2 + (graph.y - y) ** 2  # squared metres in the graph's projected CRS
    near_end = np.minimum(d2[graph.u], d2[graph.v])
    edges = np.flatnonzero(near_end <= radius_m ** 2)
    edges = edges[np.argsort(near_end[edges], kind="stable")[:max_edges]]
    if not len(edges):
        return {"type": "MultiLineString", "coordinates": []}
    lines = shapely.simplify(shapely.multilinestrings(list(graph.geometry[edges])), TOLERANCE_M)
    to_ll = Transformer.from_crs(graph.crs_epsg, SRID, always_xy=True)
    lonlat = shapely.transform(lines, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))
    return {"type": "MultiLineString",
            "coordinates": [np.round(np.asarray(part.coords), 6).tolist() for part in lonlat.geoms]}
