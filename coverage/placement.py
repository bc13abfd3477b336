"""Where a file's points sit on the ground: evidence that coordinates declared as WGS 84 are really GCJ-02.

A first import into an area has no stored stations to compare its points with (``stations.importer.
check_coord_system``), but the area's street graph (``coverage.streets``) or its OpenStreetMap premises (the
``candidate_sites`` table) say where stations can be: next to streets, at premises. GCJ-02 (Amap, Tencent)
coordinates read as WGS 84 lie 100-700 m from where they belong, so their points sit far from the streets as
given and close to them after a GCJ-02 → WGS 84 shift. ``gcj02_evidence`` measures both medians;
``PlacementEvidence.looks_gcj02`` applies the rule. The import only warns: nothing is refused or changed.

Points are (lon, lat) WGS 84 degrees; distances are metres in the area's metric CRS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.coverage.streets import PROFILES, graph_file, load_area_graph
from yizhan.db.models import SRID
from yizhan.geo.coords import to_wgs84
from yizhan.settings import Settings
from yizhan.stations.service import PlacementCheck

MIN_POINTS = 5
"""Fewest points of a file for which the medians are compared (fewer prove nothing)."""
MIN_GAIN_M = 25.0
"""The shifted points' median distance must be at least this many metres smaller than the given one's (in a dense
city any point lies within some 35 m of a footway, so the gain at the streets is tens of metres, not hundreds)."""
MAX_RATIO = 0.5
"""... and at most this share of it."""
MIN_PREMISES = 20
"""Fewest OSM premises of an area for them to serve as evidence (when it has no street graph)."""
SAMPLE_POINTS = 5_000
"""Most points of a file measured (evenly spread over its rows): a median needs no more."""



@dataclass(frozen=True)
class PlacementEvidence:
    """The median distances of a file's points to the evidence, as given and after a GCJ-02 → WGS 84 shift.

    ``evidence`` names what the points were measured against (``"the streets"``, ``"the OSM premises"``);
    ``points`` is how many points were measured; the medians are metres.
    """

    evidence: str
    points: int
    median_as_given_m: float
    median_shifted_m: float

    @property
    def looks_gcj02(self) -> bool:
        """Whether the shifted points fit clearly better: at least ``MIN_POINTS`` points, the shifted median at
        most ``MAX_RATIO`` of the given one and at least ``MIN_GAIN_M`` metres smaller."""
        return (self.points >= MIN_POINTS
                and self.median_shifted_m <= MAX_RATIO * self.median_as_given_m
                and self.median_as_given_m - self.median_shifted_m >= MIN_GAIN_M)

    def warning(self) -> str:
        """One line naming the evidence and what to do."""
        return (f"{self.points} points lie a median {self.median_as_given_m:.0f} m from {self.evidence} as given, "
                f"{self.median_shifted_m:.0f} m after a GCJ-02 → WGS 84 shift: the file looks like GCJ-02 "
                f"(高德/腾讯 coordinates); re-import with --coord gcj02 (coord=gcj02 through the API) "
                f"(文件坐标疑似 GCJ-02，请声明为 gcj02 重新导入)")


def _sample(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = np.asarray(lon, dtype=float)[ok], np.asarray(lat, dtype=float)[ok]
    if len(lon) > SAMPLE_POINTS:
        pick = np.linspace(0, len(lon) - 1, SAMPLE_POINTS).round().astype(int)
        lon, lat = lon[pick], lat[pick]
    return lon, lat


def _metric(lon: np.ndarray, lat: np.ndarray, epsg: int) -> np.ndarray:
    x, y = Transformer.from_crs(SRID, epsg, always_xy=True).transform(lon, lat)
    return np.column_stack([x, y])


def _street_distances(area: AreaInfo, settings: Settings) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    profile = next((p for p in PROFILES if graph_file(area, p, settings).exists()), None)
    if profile is None:
        return None
    graph = load_area_graph(area, profile, settings)
    if graph.n_edges == 0:
        return None

    def distances(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        xy = _metric(lon, lat, graph.crs_epsg)
        _, dist = graph.tree().query_nearest(shapely.points(xy), return_distance=True, all_matches=False)
        return np.asarray(dist, dtype=float)

    return distances


def _premises_distances(area: AreaInfo, engine: Engine) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM candidate_sites WHERE area_id = :a"),
                            {"a": area.id}).all()
    if len(rows) < MIN_PREMISES:
        return None
    premises = np.array(rows, dtype=float)
    tree = cKDTree(_metric(premises[:, 0], premises[:, 1], area.crs_epsg))

    def distances(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        dist, _ = tree.query(_metric(lon, lat, area.crs_epsg))
        return np.asarray(dist, dtype=float)

    return distances


def gcj02_evidence(area: AreaInfo, lon: np.ndarray, lat: np.ndarray, *, settings: Settings,
                   engine: Engine | None = None) -> PlacementEvidence | None:
    """Measure the points (``lon``, ``lat``: degrees, read as WGS 84) as given and after a GCJ-02 → WGS 84 shift
    against the area's OSM premises (with ``engine``, at least ``MIN_PREMISES``: stations are hosted at premises,
    so true points sit on them) or, without them, its streets (its walk graph, else its bike graph). None when
    the area has neither or no point is finite."""
    measure = _premises_distances(area, engine) if engine is not None else None
    evidence = "the OSM premises"
    if measure is None:
        measure, evidence = _street_distances(area, settings), "the streets"
    lon, lat = _sample(lon, lat)
    if measure is None or len(lon) == 0:
        return None
    slon, slat = to_wgs84(lon, lat, "gcj02")
    return PlacementEvidence(evidence, len(lon), float(np.median(measure(lon, lat))),
                             float(np.median(measure(np.asarray(slon), np.asarray(slat)))))


def placement_check(settings: Settings, engine: Engine | None = None) -> PlacementCheck:
    """The check an import is given (``stations.service.import_stations(placement_check=...)``): a warning line
    when ``gcj02_evidence`` says the points look like GCJ-02, else none."""
    def check(area: AreaInfo, lon: np.ndarray, lat: np.ndarray) -> list[str]:
        found = gcj02_evidence(area, lon, lat, settings=settings, engine=engine)
        return [found.warning()] if found is not None and found.looks_gcj02 else []

    return check
