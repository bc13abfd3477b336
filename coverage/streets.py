"""Street graphs of study areas: built from an OSM extract, stored compiled per area and profile, loaded fast.

Graphs are kept in ``<data_dir>/graphs`` as ``.npz`` (``StreetGraph.save``), in the area's metric CRS.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from yizhan.areas import AreaInfo
from yizhan.data.demand import MAX_CELL_SIZE_M
from yizhan.db.models import SRID
from yizhan.errors import InvalidInput
from yizhan.geo.streets import StreetGraph, street_graph_from_networkx
from yizhan.settings import Settings

PROFILES = ("walk", "bike")
_cache: dict[tuple[str, int], StreetGraph] = {}
_lock = threading.Lock()


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise InvalidInput(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def graph_file(area: AreaInfo, profile: str, settings: Settings) -> Path:
    """Where the compiled ``profile`` graph of ``area`` is stored (under the settings' data folder)."""
    return settings.data_dir / "graphs" / f"area{area.id}-{_check_profile(profile)}.npz"


def build_area_graph(area: AreaInfo, extract: Path | None, *, profile: str = "walk", place: str | None = None,
                     settings: Settings, progress: Callable[[str], None] | None = None) -> StreetGraph:
    """Build the ``profile`` street graph of ``area`` and store it, from an OSM extract (.osm/.osm.pbf) or,
    without one, downloaded by ``place`` name or the area's bounds (needs the network).

    The graph holds the profile's streets only, its largest connected part, in the area's metric CRS. An
    extract is read straight into arrays (``geo.streets_pbf``: a province in well under a minute); a download
    goes through osmnx (``geo.streets_osmnx``).
    """
    _check_profile(profile)
    if extract is not None:
        from yizhan.geo.streets_pbf import street_graph_from_pbf

        graph = street_graph_from_pbf(extract, profile=profile, crs_epsg=area.crs_epsg, progress=progress)
    elif place or area.boundary is not None:
        from yizhan.geo.streets_osmnx import reproject_streets, streets_online

        nx_graph = streets_online(profile=profile, place=place,
                                  bbox=None if place else tuple(area.boundary.bounds))  # type: ignore[union-attr]
        graph = street_graph_from_networkx(reproject_streets(nx_graph, area.crs_epsg))
    else:
        raise InvalidInput(f"area {area.name!r} has no boundary: give an extract (--osm) or a place name")
    path = graph_file(area, profile, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    graph.save(tmp)
    tmp.replace(path)
    with _lock:
        _cache.pop((str(path), 0), None)
    return graph


def loaded_area_graph(area: AreaInfo, profile: str, settings: Settings) -> StreetGraph | None:
    """The ``profile`` graph of ``area`` when it is already in memory and its file unchanged, else None: never reads
    a file (a caller on an event loop must not wait seconds for one)."""
    path = graph_file(area, profile, settings)
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return None
    with _lock:
        return _cache.get(key)


def load_area_graph(area: AreaInfo, profile: str, settings: Settings) -> StreetGraph:
    """The stored ``profile`` graph of ``area`` (kept in memory after the first load, until the file changes)."""
    path = graph_file(area, profile, settings)
    if not path.exists():
        if street_parts_manifest(area, profile, settings) is not None:
            raise InvalidInput(f"区域 {area.name!r} 的 {profile} 路网只按分区建成，这项计算需要整体路网 / area "
                               f"{area.name!r} has no whole {profile} street network, only its graphs per partition "
                               f"(`yizhan network parts`): runs and recommendations use them, but this is computed "
                               f"in one process: build the whole graph with `yizhan network build --area "
                               f"{area.name} --osm EXTRACT.osm.pbf`, or use the straight line")
        raise InvalidInput(f"area {area.name!r} has no {profile} street network yet: build it with "
                           f"`yizhan network build --area {area.name} --osm EXTRACT.osm.pbf`")
    key = (str(path), path.stat().st_mtime_ns)
    with _lock:
        graph = _cache.get(key)
        if graph is None:
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]
            graph = _cache[key] = StreetGraph.load(path)
            # A city's graph holds millions of shapely geometries, which the cyclic garbage collector would walk on
            # every full collection (about 0.1 s each at 1 M nodes, a stall every rider waiting on that process
            # feels). They live as long as the graph and hold no cycles: move them out of its sight.
            gc.freeze()
    return graph


def street_lines(area: AreaInfo, settings: Settings, *, max_edges: int = 60_000,
                 tolerance_m: float = 3.0) -> BaseGeometry | None:
    """The area's streets (its walk graph, else its bike graph) as one MultiLineString in EPSG:4326, simplified by
    ``tolerance_m`` metres, for drawing without map tiles; None when the area has no graph or more than
    ``max_edges`` edges (a province's streets are too heavy for a browser page)."""
    graph = _drawn_graph(area, settings)
    if graph is None or graph.n_edges > max_edges:
        return None
    lines = shapely.simplify(shapely.multilinestrings(list(graph.geometry)), tolerance_m)
    return _to_lonlat(lines, graph.crs_epsg)


def streets_near(area: AreaInfo, lon: float, lat: float, *, settings: Settings, radius_m: float,
                 max_edges: int, tolerance_m: float = 2.0) -> dict[str, Any] | None:
    """The streets of ``area`` (as ``street_lines`` draws them) with an end within ``radius_m`` metres of
    (``lon``, ``lat``) (WGS 84 degrees), as a GeoJSON MultiLineString of [lon, lat] pairs (6 decimals, about 0.1 m):
    at most ``max_edges`` edges, the nearest first, simplified by ``tolerance_m`` metres; an empty one when no
    street is that near; None when the area has no street graph."""
    graph = _drawn_graph(area, settings)
    if graph is None:
        return None
    x, y = Transformer.from_crs(SRID, graph.crs_epsg, always_xy=True).transform(lon, lat)
    d2 = (graph.x - x) ** 2 + (graph.y - y) ** 2  # squared metres in the graph's projected CRS
    near_end = np.minimum(d2[graph.u], d2[graph.v])
    edges = np.flatnonzero(near_end <= radius_m ** 2)
    edges = edges[np.argsort(near_end[edges], kind="stable")[:max_edges]]
    if not len(edges):
        return {"type": "MultiLineString", "coordinates": []}
    lines = _to_lonlat(shapely.simplify(shapely.multilinestrings(list(graph.geometry[edges])), tolerance_m),
                       graph.crs_epsg)
    return {"type": "MultiLineString",
            "coordinates": [np.round(np.asarray(part.coords), 6).tolist() for part in shapely.get_parts(lines)]}


def _drawn_graph(area: AreaInfo, settings: Settings) -> StreetGraph | None:
    """The street graph the area's streets are drawn from: its walk graph, else its bike graph; None without."""
    for profile in PROFILES:
        if graph_file(area, profile, settings).exists():
            return load_area_graph(area, profile, settings)
    return None


def _to_lonlat(geom: BaseGeometry, epsg: int) -> BaseGeometry:
    to_ll = Transformer.from_crs(epsg, SRID, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])))


def street_parts_dir(area: AreaInfo, settings: Settings) -> Path:
    """Where the area's street graphs per partition are kept (``geo.street_parts``: ``<profile>/manifest.json``
    and one graph per tile), under the settings' data folder."""
    return settings.data_dir / "graphs" / f"area{area.id}-parts"


def street_parts_manifest(area: AreaInfo, profile: str, settings: Settings) -> Path | None:
    """The manifest of the area's ``profile`` street graphs per partition, None when they were not built."""
    path = street_parts_dir(area, settings) / _check_profile(profile) / "manifest.json"
    return path if path.is_file() else None


def default_parts(area: AreaInfo, mode: str, profile: str, settings: Settings | None) -> int:
    """How many parts a run (or a recommendation's reach) takes when the caller does not say: along the streets of
    an area whose ``profile`` street graphs per partition were built, one part per graph (they are built for an area
    whose whole graph does not fit one process: a run from the console or the command line then uses them without
    being told), else 1, the whole area in one process. With the graphs the parts are their tiles however many are
    asked, so the count is at least 2, which marks the run as one in parts."""
    if mode != "network" or settings is None:
        return 1
    manifest = street_parts_manifest(area, profile, settings)
    if manifest is None:
        return 1
    from yizhan.geo.street_parts import read_street_parts

    return max(2, len(read_street_parts(manifest)["parts"]))


def build_street_parts(area: AreaInfo, extract: Path, *, profile: str, tiles: tuple[int, int], halo_m: float,
                       settings: Settings, progress: Callable[[str], None] | None = None) -> Path:
    """Build the area's ``profile`` street graphs per partition from ``extract`` (a province's .osm.pbf) in one
    streaming pass: ``tiles`` (columns, rows) equal rectangles over the area's boundary in its metric CRS, each
    graph holding the streets within ``halo_m`` metres of its rectangle (the tiles reach half the largest demand
    cell beyond the boundary's box, so every cell's centre lies in one). A partitioned run along the streets then
    uses them (its parts are these tiles; a halo narrower than the run needs is refused). The set is built in a
    folder beside the old one and then renamed into its place, so a run never reads a half-written set and a failed
    build leaves the old set as it was. Returns the manifest."""
    from yizhan.geo.street_parts import grid_tiles, partition_street_graphs

    if area.boundary is None:
        raise InvalidInput(f"区域 {area.name!r} 没有边界，无法分区 / area {area.name!r} has no boundary to cut into "
                           f"tiles")
    if not extract.is_file():
        raise InvalidInput(f"找不到 OSM 文件 / no OpenStreetMap extract at {extract.name!r}")
    boundary_m = area.boundary_m()
    assert boundary_m is not None  # checked above
    west, south, east, north = (float(b) for b in boundary_m.bounds)
    # a demand cell's centre may lie outside the boundary by up to half the largest cell (5 km): the tiles hold it
    grow = MAX_CELL_SIZE_M / 2
    west, south, east, north = west - grow, south - grow, east + grow, north + grow
    profile = _check_profile(profile)
    home = street_parts_dir(area, settings)
    home.mkdir(parents=True, exist_ok=True)
    # built beside the old graphs, then put in their place: a run never reads a half-written set of tiles, and a
    # failed build leaves the old set as it was
    building = Path(tempfile.mkdtemp(prefix=f".{profile}-building-", dir=home))
    try:
        built = partition_street_graphs(extract, grid_tiles((west, south, east, north), *tiles), halo_m=halo_m,
                                        profile=profile, out_dir=building, crs_epsg=area.crs_epsg,
                                        progress=progress)
        final, retired = home / profile, home / f".{profile}-retired-{os.getpid()}"
        if final.exists():
            final.rename(retired)
        built.parent.rename(final)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(home / f".{profile}-retired-{os.getpid()}", ignore_errors=True)
    return final / built.name
