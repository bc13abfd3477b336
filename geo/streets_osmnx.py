"""Street networks for walking and cycling from OpenStreetMap extracts. The only module that imports osmnx.

Graphs are ``networkx.MultiDiGraph`` objects projected to the WGS 84 / UTM zone of the extract: node ``x``/``y``
are metres (easting, northing), node ``lon``/``lat`` keep WGS 84 degrees, edge ``length`` is metres, and
``G.graph["crs"]`` is the metric CRS. Data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx
import osmium
import osmnx as ox

from yizhan.errors import InvalidInput
from yizhan.geo.osm import EXPECTED_FORMAT, checked_extract, extract_bounds, extract_processor, iterate_extract
from yizhan.geo.projection import metric_crs_for

InsufficientResponseError = ox._errors.InsufficientResponseError
"""osmnx's "no data for this query" error (osmnx documents its exceptions in ``osmnx._errors``)."""


def configure_osmnx() -> None:
    """The one place where osmnx is configured, called once at start-up by the entry points (CLI, API): no HTTP
    cache folder in the working directory, no console or file logging."""
    ox.settings.use_cache = False
    ox.settings.log_console = False
    ox.settings.log_file = False

PROFILES: tuple[str, ...] = ("walk", "bike")

# highway values that are never part of the profile's network.
_EXCLUDED: dict[str, frozenset[str]] = {
    "walk": frozenset({
        "motorway", "motorway_link", "trunk", "trunk_link", "construction", "proposed", "planned", "abandoned",
        "razed", "raceway", "bus_guideway", "platform", "no", "bus_stop", "elevator", "escalator",
    }),
    "bike": frozenset({
        "motorway", "motorway_link", "steps", "construction", "proposed", "planned", "abandoned", "razed",
        "raceway", "bus_guideway", "platform", "no", "bus_stop", "corridor", "elevator", "escalator",
    }),
}
# highway values excluded unless the profile's mode is explicitly allowed (foot=yes, bicycle=designated ...).
_EXCLUDED_UNLESS_ALLOWED: dict[str, frozenset[str]] = {
    "walk": frozenset({"trunk", "trunk_link"}),
    "bike": frozenset({"footway"}),
}
_MODE_KEY = {"walk": "foot", "bike": "bicycle"}
_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
_DENIED = frozenset({"no", "private"})
_GRAPHML_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise InvalidInput(f"profile {profile!r} is not known; expected one of {', '.join(PROFILES)}")
    return profile


def is_street(tags: Any, profile: str) -> bool:
    """Whether a way with OSM ``tags`` (mapping-like) belongs to the street network of ``profile``.

    Parameters
    ----------
    tags : mapping of str to str
        The way's OSM tags (a pyosmium TagList or a dict).
    profile : {"walk", "bike"}
        Travel mode.

    Returns
    -------
    bool
        True for ``highway=*`` ways open to the mode: not areas, not in the profile's excluded highway types,
        not tagged ``foot=no``/``bicycle=no``, and not ``access=private|no`` unless the mode is allowed.
    """
    highway = tags.get("highway")
    if not highway or tags.get("area") == "yes":
        return False
    mode = tags.get(_MODE_KEY[profile])
    allowed = mode in _ALLOWED
    if mode in _DENIED:
        return False
    if highway in _EXCLUDED_UNLESS_ALLOWED[profile]:
        return allowed
    if highway in _EXCLUDED[profile]:
        return False
    if tags.get("access") in _DENIED or tags.get("service") == "private":
        return allowed
    return True


def _write_street_xml(path: Path, profile: str, out: Path) -> int:
    """Write the profile's street ways and their nodes from ``path`` to OSM XML ``out``; return the way count."""
    keep: set[int] = set()
    needed: set[int] = set()
    for way in iterate_extract(path, extract_processor(path, osmium.osm.WAY)):
        if is_street(way.tags, profile):
            keep.add(way.id)
            needed.update(nd.ref for nd in way.nodes)
    present: set[int] = set()
    writer = osmium.SimpleWriter(str(out), overwrite=True)
    try:
        for node in iterate_extract(path, extract_processor(path, osmium.osm.NODE)):
            if node.id in needed and node.location.valid():
                present.add(node.id)
                writer.add_node(node)
        for way in iterate_extract(path, extract_processor(path, osmium.osm.WAY)):
            if way.id in keep:
                refs = [nd.ref for nd in way.nodes if nd.ref in present]
                if len(refs) >= 2:
                    writer.add_way(way.replace(nodes=refs))
    finally:
        writer.close()
    return len(keep)


def streets_from_extract(path: str | Path, *, profile: str = "walk") -> nx.MultiDiGraph[int]:
    """Street graph of an extract for walking or cycling, projected to metres.

    Ways are first filtered to the profile's streets (see ``is_street``), written to a temporary OSM XML file
    and built with ``osmnx.graph_from_xml`` (simplified; only the largest weakly connected component is kept).
    Walking ignores one-way restrictions; cycling respects them.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.
    profile : {"walk", "bike"}
        Travel mode.

    Returns
    -------
    networkx.MultiDiGraph
        Projected to the WGS 84 / UTM zone of the extract's bounds: node ``x``/``y`` in metres, node
        ``lon``/``lat`` in WGS 84 degrees, edge ``length`` in metres; ``G.graph`` also holds ``profile``
        and ``source`` (the file name).

    Raises
    ------
    InvalidInput
        If the file is missing or unreadable, the profile is unknown or there are no streets.
    """
    p = checked_extract(path)
    _check_profile(profile)
    bounds = extract_bounds(p)
    with tempfile.TemporaryDirectory(prefix="yizhan-streets-") as tmp:
        xml = Path(tmp) / "streets.osm"
        if _write_street_xml(p, profile, xml) == 0:
            raise InvalidInput(f"{p}: no {profile} streets found; expected {EXPECTED_FORMAT} with highway ways")
        graph = ox.graph_from_xml(xml, bidirectional=profile == "walk", simplify=True, retain_all=False)
    for _, data in graph.nodes(data=True):
        data["lon"], data["lat"] = data["x"], data["y"]
    graph = ox.project_graph(graph, to_crs=metric_crs_for(bounds))
    graph.graph.update(profile=profile, source=p.name)
    return graph


def save_graph(graph: nx.MultiDiGraph[int], path: str | Path) -> Path:
    """Save a street graph as GraphML (written to a temporary file, then renamed into place).

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        A graph from ``streets_from_extract`` (metric CRS, lengths in metres).
    path : str or Path
        Target .graphml file; parent folders are created.

    Returns
    -------
    Path
        The written file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    ox.save_graphml(graph, partial)
    partial.replace(target)
    return target


def load_graph(path: str | Path) -> nx.MultiDiGraph[int]:
    """Load a GraphML street graph written by ``save_graph`` (node ``x``/``y`` and edge ``length`` in metres).

    Raises
    ------
    InvalidInput
        If the file is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p}: file not found; expected a GraphML street graph written by save_graph")
    return ox.load_graphml(p, node_dtypes={"lon": float, "lat": float})


def cache_path(path: str | Path, *, profile: str, cache_dir: Path) -> Path:
    """GraphML cache file for an extract and profile, keyed by file name, size, mtime (ns) and profile."""
    p = checked_extract(path)
    st = p.stat()
    stem = _GRAPHML_SAFE.sub("_", p.name)
    return Path(cache_dir) / f"{stem}-{st.st_size}-{st.st_mtime_ns}-{_check_profile(profile)}.graphml"


def cached_streets(path: str | Path, *, profile: str = "walk", cache_dir: Path) -> nx.MultiDiGraph[int]:
    """``streets_from_extract`` with a GraphML cache in ``cache_dir``.

    The cache key changes when the extract's name, size or modification time changes, or with the profile;
    a hit loads the GraphML without parsing the extract.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.
    profile : {"walk", "bike"}
        Travel mode.
    cache_dir : Path
        Folder for the cached GraphML files (created when missing).

    Returns
    -------
    networkx.MultiDiGraph
        As from ``streets_from_extract``: metric CRS, node ``x``/``y`` and edge ``length`` in metres.
    """
    cached = cache_path(path, profile=profile, cache_dir=cache_dir)
    if cached.is_file():
        return load_graph(cached)
    graph = streets_from_extract(path, profile=profile)
    save_graph(graph, cached)
    return graph


def boundary_from_place(query: str) -> Any:
    """Boundary polygon (EPSG:4326, lon/lat) of a named place, e.g. ``"嘉善县, 浙江省"``; needs the network.

    Raises InvalidInput when the place is unknown and SetupError when OpenStreetMap's geocoder is unreachable.
    """
    from yizhan.errors import SetupError

    try:
        gdf = ox.geocode_to_gdf(query)
    except (InsufficientResponseError, TypeError, ValueError) as exc:
        raise InvalidInput(f"place {query!r}: not found by the OpenStreetMap geocoder ({exc})") from exc
    except Exception as exc:  # requests' connection errors and the like
        raise SetupError(f"place {query!r}: the OpenStreetMap geocoder is unreachable ({exc}); use --boundary FILE "
                         "or --bbox instead") from exc
    return gdf.to_crs(4326).union_all()


def reproject_streets(graph: nx.MultiDiGraph[int], epsg: int) -> nx.MultiDiGraph[int]:
    """The graph in EPSG:``epsg`` (metres), or itself when it is already there."""
    import pyproj

    if pyproj.CRS(graph.graph["crs"]) == pyproj.CRS.from_epsg(epsg):
        return graph
    return ox.project_graph(graph, to_crs=f"EPSG:{epsg}")


def streets_online(*, profile: str = "walk", place: str | None = None,
                   bbox: tuple[float, float, float, float] | None = None) -> nx.MultiDiGraph[int]:
    """Download the ``profile`` streets of a place name or a bbox (west, south, east, north; WGS 84 degrees)
    through osmnx (needs the network); largest connected part, projected to the UTM zone of its centre.

    Raises SetupError when OpenStreetMap cannot be reached and InvalidInput for an unknown place.
    """
    from yizhan.errors import SetupError

    network_type = {"walk": "walk", "bike": "bike"}[_check_profile(profile)]
    try:
        if place:
            graph = ox.graph_from_place(place, network_type=network_type, retain_all=False, simplify=True)
        elif bbox:
            graph = ox.graph_from_bbox(bbox, network_type=network_type, retain_all=False, simplify=True)
        else:
            raise InvalidInput("give a place name or a bbox (west, south, east, north)")
    except (InsufficientResponseError, ValueError) as exc:
        raise InvalidInput(f"no {profile} streets found for {place or bbox}: {exc}") from exc
    except InvalidInput:
        raise
    except Exception as exc:  # connection errors of requests and the like
        raise SetupError(f"OpenStreetMap cannot be reached to download streets ({exc}); use --osm EXTRACT "
                         "(a .osm.pbf from a regional extract service)") from exc
    graph.graph["profile"] = profile
    xs = [d["x"] for _, d in graph.nodes(data=True)]
    ys = [d["y"] for _, d in graph.nodes(data=True)]
    crs = metric_crs_for(((min(xs)), min(ys), max(xs), max(ys)))
    return ox.project_graph(graph, to_crs=crs)
