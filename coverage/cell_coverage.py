"""Coverage of cells and demand points by stations, in one process: the kernels a run (``coverage.analysis``) and
each part of a partitioned run (``coverage.partitioned``) compute with.

Straight line in the area's metric CRS (decided on the WGS 84 ellipsoid near the radius), or along a street graph
door to door. Points are (n, 2) arrays of metres, x east, y north.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from yizhan.areas import AreaInfo
from yizhan.coverage.disc_union import disc_union
from yizhan.coverage.euclidean import nearest_from_arrays, recheck_nearest
from yizhan.coverage.measure import Demand
from yizhan.coverage.network import covered_area, demand_distances, network_nearest, snap_points
from yizhan.coverage.streets import load_area_graph
from yizhan.errors import InvalidInput
from yizhan.settings import MAX_RADIUS_M, Settings

MODES = ("straight", "network")
NETWORK_LIMIT_FACTOR = 3.0
"""A network run searches this many radii along the streets, so each gap learns how far its nearest station is."""
Progress = Callable[[str], None]


@dataclass
class CellCoverage:
    """Per demand cell: the nearest station (index into the active stations, -1 for none), the distance to it
    in the run's metric (metres; network or straight line), covered or not, and the straight-line figures."""

    station: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray
    straight_m: np.ndarray
    covered_straight: np.ndarray
    covered_geom: Any = None  # covered area in the area CRS (discs or network service areas), or None
    loc_covered: np.ndarray | None = None  # per demand point (runs measured on points), run metric
    loc_covered_straight: np.ndarray | None = None  # per demand point, straight line
    snaps: Any = None  # (graph, stations snapped, locations snapped) of a network run, for the hours and capacity


def straight_coverage(cells_xy: np.ndarray, st_xy: np.ndarray, radius_m: float, boundary_m: Any,
                      demand: Demand | None = None, st_lonlat: np.ndarray | None = None, *,
                      area: bool = True) -> CellCoverage:
    """Straight-line coverage of cell centres ``cells_xy`` by stations ``st_xy`` (both (n, 2) metres, x east,
    y north); the covered area is the union of the stations' discs, clipped to ``boundary_m`` when given (None
    when ``area`` is False: a part of a partitioned run, whose caller draws the whole area's).

    With ``demand`` measured on points, each point is judged too (``loc_covered``). Given ``demand`` and
    ``st_lonlat`` (WGS 84), distances within ``euclidean.geodesic_band`` of the radius are decided on the ellipsoid,
    for the cell centres and the points."""
    res = nearest_from_arrays(cells_xy, st_xy, radius_m)
    if demand is not None and st_lonlat is not None:
        recheck_nearest(res, cells_xy, st_xy, demand.cell_lonlat, st_lonlat, radius_m)
    geom = None
    if len(st_xy) and area:
        geom = disc_union(st_xy, radius_m)
        if boundary_m is not None:
            geom = geom.intersection(boundary_m)
    out = CellCoverage(res.station, res.distance_m, res.covered, res.distance_m, res.covered, geom)
    if demand is not None and demand.measured == "points":
        out.loc_covered = points_straight(demand, st_xy, st_lonlat, radius_m)
        out.loc_covered_straight = out.loc_covered
    return out


def points_straight(demand: Demand, st_xy: np.ndarray, st_lonlat: np.ndarray | None, radius_m: float) -> np.ndarray:
    """Whether each demand point has a station within ``radius_m`` metres in a straight line (decided on the
    ellipsoid near the radius when ``st_lonlat`` is given)."""
    res = nearest_from_arrays(demand.xy, st_xy, radius_m)
    if st_lonlat is not None:
        recheck_nearest(res, demand.xy, st_xy, demand.lonlat, st_lonlat, radius_m)
    return res.covered


def network_coverage(info: AreaInfo, profile: str, cells_xy: np.ndarray, st_xy: np.ndarray, radius_m: float,
                     params: dict[str, Any], say: Progress, settings: Settings,
                     station_names: list[str] | None = None, demand: Demand | None = None,
                     st_lonlat: np.ndarray | None = None) -> CellCoverage:
    """Coverage along the area's ``profile`` street graph: one multi-source Dijkstra from all stations, door to
    door (metres; points as (n, 2) metres in the graph's CRS). Adds the network figures to ``params``. With
    ``demand`` measured on points, each point is judged too (``loc_covered``, and in a straight line)."""
    graph = load_area_graph(info, profile, settings)
    say(f"{profile} network: {graph.n_nodes} nodes, {graph.n_edges} edges; snapping stations and cells")
    st_snap = snap_points(graph, st_xy.reshape(-1, 2), max_snap_m=settings.max_snap_m)
    cell_snap = snap_points(graph, cells_xy, max_snap_m=settings.max_snap_m)
    # search beyond the radius so each gap learns how far its nearest station really is along the streets
    limit = radius_m * NETWORK_LIMIT_FACTOR
    # door to door: the legs from the cell centre and from the station to their nearest streets count too, so a
    # network distance is never shorter than the straight line
    res = network_nearest(graph, st_snap, cell_snap, radius_m=radius_m, limit_m=limit, include_access=True)
    straight = nearest_from_arrays(cells_xy, st_xy, radius_m)
    if demand is not None and st_lonlat is not None:
        recheck_nearest(straight, cells_xy, st_xy, demand.cell_lonlat, st_lonlat, radius_m)
    loc_snap = cell_snap
    loc_covered = loc_straight = None
    if demand is not None and demand.measured == "points":
        say(f"snapping {len(demand.xy):,} demand points")
        loc_snap = snap_points(graph, demand.xy, max_snap_m=settings.max_snap_m)
        at = demand_distances(graph, st_snap, loc_snap, res.node_dist, res.node_station, radius_m=radius_m,
                              limit_m=limit, include_access=True)
        loc_covered = at.covered
        loc_straight = points_straight(demand, st_xy, st_lonlat, radius_m)
    say("service areas from the reached streets")
    merged, pixel_m = covered_area(graph, st_snap, res.node_dist, res.node_station, radius_m=radius_m,
                                   include_access=True)
    params.update({
        "distance": f"along the {profile} street network, metres door to door (legs to the nearest street "
                    "included)",
        "profile": profile, "graph_nodes": graph.n_nodes, "graph_edges": graph.n_edges, "search_limit_m": limit,
        "max_snap_m": settings.max_snap_m, "stations_off_network": int(st_snap.too_far.sum()),
        "cells_off_network": int(cell_snap.too_far.sum()),
        "covered_area_drawn": "exact union of the reached streets buffered" if pixel_m is None
                              else f"on a grid of {pixel_m:g} m pixels (the area a little larger than exact)"})
    if st_snap.too_far.any():
        far = [f"{station_names[i] if station_names else i} ({st_snap.offstreet_m[i]:.0f} m)"
               for i in np.flatnonzero(st_snap.too_far)[:100]]
        params["stations_off_network_list"] = far
        say(f"warning: {len(far)} station(s) more than {settings.max_snap_m:g} m from any {profile} street serve "
            f"nobody along the network: {', '.join(far[:10])}")
    return CellCoverage(res.station, res.distance_m, res.covered, straight.distance_m, straight.covered,
                        None if merged is None or merged.is_empty else merged, loc_covered, loc_straight,
                        (graph, st_snap, loc_snap))


def check_radius(radius_m: float) -> float:
    """``radius_m`` as a float, or InvalidInput naming it when it is not a positive number of metres in range."""
    if not np.isfinite(radius_m) or not 0 < radius_m <= MAX_RADIUS_M:
        raise InvalidInput(f"radius {radius_m} m: expected a positive number of metres up to {MAX_RADIUS_M:g}")
    return float(radius_m)
