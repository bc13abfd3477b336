"""Sample-area builder for the demo: synthetic stations and delivery demand derived from an OSM extract.

Stations are placed at real host POIs of the extract (banks, fuel stations, shops, post offices, community
offices) and demand points are derived from real food/shop POIs and building footprints; everything else
(kinds, amenities, hours, weights, timestamps) is invented with a seeded random generator. Coordinates are
WGS 84 lon/lat degrees (EPSG:4326) in (lon, lat) order; jitter and distances are computed in metres in the
WGS 84 / UTM zone of the area. Map data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import Polygon, box, mapping

from yizhan.errors import InvalidInput
from yizhan.geo.osm import buildings_from_extract, extract_bounds, named_streets_from_extract, pois_from_extract
from yizhan.geo.projection import WGS84, utm_epsg
from yizhan.stations.cells import csv_text
from yizhan.stations.vocab import AMENITIES

STATION_COLUMNS = ("id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities",
                   "opening_hours", "seats", "stars", "status")
DEMAND_COLUMNS = ("lon", "lat", "weight", "timestamp")
NAME_PREFIX = "户外劳动者驿站"

# (OSM key, value) → registry host type; the Chinese word is used when the POI has no name.
HOST_TAGS: dict[tuple[str, str], tuple[str, str]] = {
    ("amenity", "bank"): ("bank", "银行"),
    ("amenity", "fuel"): ("petrol_station", "加油站"),
    ("shop", "convenience"): ("shop", "便利店"),
    ("shop", "supermarket"): ("shop", "超市"),
    ("amenity", "post_office"): ("other", "邮局"),
    ("amenity", "community_centre"): ("party_service_centre", "社区服务中心"),
    ("amenity", "townhall"): ("party_service_centre", "街道办事处"),
    ("amenity", "social_centre"): ("party_service_centre", "社区活动中心"),
    ("office", "administrative"): ("party_service_centre", "管理服务中心"),
    ("office", "government"): ("party_service_centre", "政务服务中心"),
    ("office", "union"): ("union_office", "工会"),
}
# Relative preference of host types when placing stations (party centres and fuel stations are typical hosts).
HOST_PREFERENCE: dict[str, float] = {
    "party_service_centre": 3.0, "union_office": 3.0, "petrol_station": 2.5, "bank": 1.5, "shop": 1.2, "other": 1.0,
}
OPENING_HOURS: dict[str, str] = {
    "party_service_centre": "Mo-Fr 08:30-17:30; Sa,Su 09:00-17:00",
    "union_office": "Mo-Fr 08:30-17:30",
    "petrol_station": "24/7",
    "bank": "Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00",
    "shop": "Mo-Su 07:00-23:00",
    "other": "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00",
}
# Half-open integer ranges [low, high) by station kind.
SEATS: dict[str, tuple[int, int]] = {"large": (12, 31), "small": (4, 13), "mobile": (2, 7)}
STARS: dict[str, tuple[int, int]] = {"large": (4, 6), "small": (2, 6), "mobile": (1, 5)}
MOBILE_HOURS = "Mo-Fr 11:00-14:00,17:00-20:30"
# Demand sources: (key, value) → (mean synthetic orders per POI, weight of each point).
DEMAND_POI_TAGS: dict[tuple[str, str], tuple[float, float]] = {
    ("amenity", "restaurant"): (22.0, 3.0),
    ("amenity", "fast_food"): (28.0, 3.0),
    ("amenity", "food_court"): (30.0, 3.0),
    ("amenity", "cafe"): (14.0, 2.0),
    ("amenity", "bar"): (6.0, 1.5),
    ("shop", "convenience"): (16.0, 2.0),
    ("shop", "supermarket"): (20.0, 2.0),
    ("shop", "bakery"): (10.0, 2.0),
    ("shop", "kiosk"): (6.0, 1.5),
    ("shop", "greengrocer"): (8.0, 1.5),
    ("shop", "mall"): (30.0, 2.5),
}
# Assumed storeys when building:levels is missing.
DEFAULT_LEVELS: dict[str, float] = {
    "apartments": 12.0, "residential": 6.0, "dormitory": 6.0, "house": 2.0, "commercial": 5.0, "office": 8.0,
    "university": 5.0, "school": 4.0, "retail": 2.0,
}
FALLBACK_LEVELS = 3.0
FLOOR_M2_PER_POINT = 2500.0  # one extra building demand point per this much floor area (m²)
POI_JITTER_M = 25.0
BUILDING_JITTER_M = 15.0
STATIONS_PER_KM2 = 1.6
MIN_STATION_SPACING_M = 150.0
FOCUS_SCALE_M = 300.0
POOL_FACTOR = 2
# Synthetic orders fall in one reference week (Beijing time): lunch and dinner peaks.
REFERENCE_MONDAY = datetime(2024, 5, 13, tzinfo=timezone(timedelta(hours=8)))
PEAKS = ((12.0, 0.6, 0.55), (18.5, 0.8, 0.45))  # (mean hour, sd hours, share)


@dataclass
class SampleArea:
    """A demo area: boundary, registry-format stations and synthetic demand, all WGS 84 lon/lat degrees.

    Attributes
    ----------
    name : str
        Area name (the extract's file name without suffixes).
    boundary : shapely.geometry.Polygon
        The extract's bounding box, EPSG:4326.
    crs_epsg : int
        EPSG code of the metric CRS (WGS 84 / UTM of the boundary's centroid) for distances in metres.
    stations : pandas.DataFrame
        Registry import format, columns ``STATION_COLUMNS``.
    demand : pandas.DataFrame
        Columns ``lon``, ``lat`` (degrees), ``weight`` (relative demand, > 0), ``timestamp`` (ISO 8601, +08:00).
    synthetic_note : str
        States that the data is synthetic and derived from OpenStreetMap (© OpenStreetMap contributors).
    display_name : str
        The Chinese name reports print (``DISPLAY_NAMES`` for a known extract, else the name with 示例区域).
    """

    name: str
    boundary: Polygon
    crs_epsg: int
    stations: pd.DataFrame
    demand: pd.DataFrame
    synthetic_note: str
    display_name: str = ""

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``stations.csv``, ``demand.csv`` (UTF-8, with header) and ``boundary.geojson`` to ``out_dir``.

        Returns
        -------
        dict of str to Path
            Keys "stations", "demand", "boundary".
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"stations": out / "stations.csv", "demand": out / "demand.csv", "boundary": out / "boundary.geojson"}
        # names come from OpenStreetMap: none may become a live formula (stations.cells)
        paths["stations"].write_bytes(csv_text(self.stations).encode("utf-8"))
        self.demand.to_csv(paths["demand"], index=False, encoding="utf-8")
        feature = {
            "type": "Feature",
            "properties": {"name": self.name, "crs_epsg": self.crs_epsg, "note": self.synthetic_note},
            "geometry": mapping(self.boundary),
        }
        collection = {"type": "FeatureCollection", "features": [feature]}
        paths["boundary"].write_text(json.dumps(collection, ensure_ascii=False, indent=1), encoding="utf-8")
        return paths


DISPLAY_NAMES = {"beijing_haidian_wudaokou": "北京市海淀区五道口（示例）"}
"""The Chinese display name of the demo area of a known extract (by area name)."""


def _area_name(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _township(lon: np.ndarray, lat: np.ndarray, bounds: tuple[float, float, float, float]) -> list[str]:
    """Sector of a 2×2 grid over ``bounds`` (west, south, east, north), e.g. "东北片区"."""
    west, south, east, north = bounds
    mid_lon, mid_lat = (west + east) / 2, (south + north) / 2
    return [f"{'东' if x >= mid_lon else '西'}{'北' if y >= mid_lat else '南'}片区"
            for x, y in zip(lon, lat, strict=True)]


def _tag_match(pois: gpd.GeoDataFrame, table: dict[tuple[str, str], Any]) -> pd.Series:
    """Entry of ``table`` for each POI (first matching (key, value) in table order), None when none."""
    result = pd.Series([None] * len(pois), index=pois.index, dtype=object)
    for (key, value), entry in table.items():
        hit = result.isna() & pois[key].eq(value)
        result[hit] = pd.Series([entry] * int(hit.sum()), index=pois.index[hit], dtype=object)
    return result


def _nearest_street_names(points: gpd.GeoSeries, streets: gpd.GeoDataFrame) -> list[str]:
    if streets.empty:
        return [""] * len(points)
    joined = gpd.sjoin_nearest(gpd.GeoDataFrame(geometry=points.reset_index(drop=True)), streets[["name", "geometry"]],
                               how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    return [str(n) if isinstance(n, str) else "" for n in joined["name"]]


def _pick_hosts(hosts: gpd.GeoDataFrame, xy: np.ndarray, n: int, rng: np.random.Generator) -> list[int]:
    """Seeded weighted choice of ``n`` host rows, clustered around a random focus so some areas stay uncovered."""
    # The focus is a host drawn with probability growing with its distance from the hosts' middle, so the
    # cluster sits off-centre and the far side of the area stays uncovered.
    spread = np.hypot(*(xy - xy.mean(axis=0)).T) ** 2 + 1.0
    focus = xy[rng.choice(len(xy), p=spread / spread.sum())]
    dist = np.hypot(*(xy - focus).T)
    weights = hosts["host"].map(HOST_PREFERENCE).to_numpy(dtype=float) * np.exp(-dist / FOCUS_SCALE_M)
    pool = np.argsort(dist, kind="stable")[: max(n, POOL_FACTOR * n)]  # only hosts near the focus
    weights[np.setdiff1d(np.arange(len(hosts)), pool)] = 0.0
    chosen: list[int] = []
    free = np.ones(len(hosts), dtype=bool)
    while len(chosen) < n:
        w = np.where(free, weights, 0.0)
        if w.sum() <= 0:  # spacing rule exhausted the candidates: relax it
            free = np.zeros(len(hosts), dtype=bool)
            free[pool] = True
            free[chosen] = False
            w = np.where(free, weights + 1e-12, 0.0)
        i = int(rng.choice(len(hosts), p=w / w.sum()))
        chosen.append(i)
        free[i] = False
        free &= np.hypot(*(xy - xy[i]).T) >= MIN_STATION_SPACING_M
    return chosen


def _amenities(kind: str, rng: np.random.Generator) -> str:
    base = {"large": {"drinking_water", "charging", "rest_seats", "toilet", "air_conditioning", "heating", "wifi"},
            "small": {"drinking_water", "charging", "rest_seats"},
            "mobile": {"drinking_water"}}[kind]
    chance = {"large": 0.7, "small": 0.4, "mobile": 0.25}[kind]
    extra = {code for code in AMENITIES if code not in base and rng.random() < chance}
    return ";".join(code for code in AMENITIES if code in base | extra)


def _stations(pois: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, bounds: tuple[float, float, float, float],
              to_metric: pyproj.Transformer, n_stations: int | None, rng: np.random.Generator,
              area_km2: float) -> pd.DataFrame:
    match = _tag_match(pois, HOST_TAGS)
    hosts = pois[match.notna()].copy()
    if hosts.empty:
        raise InvalidInput("extract: no host POIs (bank, fuel, convenience/supermarket, post office, community "
                           "centre) to place stations at; expected an OSM extract of an urban area")
    hosts["host"] = [m[0] for m in match[match.notna()]]
    hosts["word"] = [m[1] for m in match[match.notna()]]
    hosts = hosts.reset_index(drop=True)
    if n_stations is None:
        n_stations = int(min(len(hosts), max(3, min(12, round(area_km2 * STATIONS_PER_KM2)))))
    if not 1 <= n_stations <= len(hosts):
        raise InvalidInput(f"n_stations={n_stations}: expected 1 to {len(hosts)} (the host POIs in this extract)")
    xy = np.column_stack(to_metric.transform(hosts.geometry.x.to_numpy(), hosts.geometry.y.to_numpy()))
    picked = hosts.iloc[_pick_hosts(hosts, xy, n_stations, rng)].reset_index(drop=True)
    lon, lat = picked.geometry.x.to_numpy(), picked.geometry.y.to_numpy()
    townships = _township(lon, lat, bounds)
    streets_near = _nearest_street_names(picked.geometry.to_crs(to_metric.target_crs), streets)
    kinds = ["large" if h in ("party_service_centre", "union_office") else "small" for h in picked["host"]]
    small = [i for i, k in enumerate(kinds) if k == "small"]
    if n_stations >= 6 and small:
        kinds[int(rng.choice(small))] = "mobile"
    closed = set(rng.choice(n_stations, size=n_stations // 6, replace=False).tolist()) if n_stations >= 6 else set()
    rows, used_names = [], set()
    for i, poi in picked.iterrows():
        base = poi["name"] or f"{poi['word']}({townships[i]})"
        name = f"{NAME_PREFIX}·{base}"
        if name in used_names:
            name = f"{name}({townships[i]})" if poi["name"] else f"{name}-{i + 1}"
        used_names.add(name)
        kind = kinds[i]
        seats = rng.integers(*SEATS[kind])
        stars = rng.integers(*STARS[kind])
        address = f"{streets_near[i]}附近" if streets_near[i] else f"{townships[i]}"
        rows.append({
            "id": f"DEMO-{i + 1:03d}", "name": name, "kind": kind,
            "lon": round(float(lon[i]), 6), "lat": round(float(lat[i]), 6),
            "host": poi["host"], "address": address, "township": townships[i],
            "amenities": _amenities(kind, rng),
            "opening_hours": MOBILE_HOURS if kind == "mobile" else OPENING_HOURS[poi["host"]],
            "seats": int(seats), "stars": int(stars), "status": "closed" if i in closed else "active",
        })
    return pd.DataFrame(rows, columns=list(STATION_COLUMNS))


def _timestamps(n: int, rng: np.random.Generator) -> list[str]:
    means, sds, shares = (np.array(v) for v in zip(*PEAKS, strict=True))
    peak = rng.choice(len(PEAKS), size=n, p=shares / shares.sum())
    hours = np.clip(rng.normal(means[peak], sds[peak]), 10.5, 21.5)
    days = rng.integers(0, 7, size=n)
    seconds = np.round(hours * 3600).astype(int)
    return [(REFERENCE_MONDAY + timedelta(days=int(d), seconds=int(s))).isoformat() for d, s in zip(days, seconds,
                                                                                                     strict=True)]


def _demand(pois: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, to_metric: pyproj.Transformer,
            to_wgs: pyproj.Transformer, boundary: Polygon, rng: np.random.Generator) -> pd.DataFrame:
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    sds: list[np.ndarray] = []
    match = _tag_match(pois, DEMAND_POI_TAGS)
    food = pois[match.notna()]
    if not food.empty:
        mean, weight = (np.array(v, dtype=float) for v in zip(*match[match.notna()], strict=True))
        count = rng.poisson(mean)
        px, py = to_metric.transform(food.geometry.x.to_numpy(), food.geometry.y.to_numpy())
        xs.append(np.repeat(px, count))
        ys.append(np.repeat(py, count))
        ws.append(np.repeat(weight, count))
        sds.append(np.full(int(count.sum()), POI_JITTER_M))
    if not buildings.empty:
        metric = buildings
        levels = buildings["levels"].fillna(buildings["building"].map(DEFAULT_LEVELS)).fillna(FALLBACK_LEVELS)
        floor = metric.geometry.area.to_numpy() * levels.clip(lower=1).to_numpy()
        count = 1 + rng.poisson(floor / FLOOR_M2_PER_POINT)
        centroid = metric.geometry.centroid
        xs.append(np.repeat(centroid.x.to_numpy(), count))
        ys.append(np.repeat(centroid.y.to_numpy(), count))
        ws.append(np.repeat(floor / 1000.0 / count, count))  # thousands of m² floor area per point
        sds.append(np.full(int(count.sum()), BUILDING_JITTER_M))
    if not xs:
        return pd.DataFrame({c: [] for c in DEMAND_COLUMNS})
    sd = np.concatenate(sds)
    x = np.concatenate(xs) + rng.normal(0.0, 1.0, sd.size) * sd
    y = np.concatenate(ys) + rng.normal(0.0, 1.0, sd.size) * sd
    lon, lat = to_wgs.transform(x, y)
    lon, lat = np.round(lon, 6), np.round(lat, 6)
    west, south, east, north = boundary.bounds
    inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    frame = pd.DataFrame({"lon": lon, "lat": lat, "weight": np.round(np.concatenate(ws), 3)})[inside]
    frame["weight"] = frame["weight"].clip(lower=0.001)
    frame["timestamp"] = _timestamps(len(frame), rng)
    return frame.reset_index(drop=True)


def sample_from_extract(path: str | Path, *, seed: int = 7, n_stations: int | None = None) -> SampleArea:
    """Build a synthetic demo area (stations + demand) from an OSM extract.

    Parameters
    ----------
    path : str or Path
        An .osm or .osm.pbf file.
    seed : int
        Seed of all random choices; the same seed and file give identical results.
    n_stations : int, optional
        Number of stations; by default about 1.6 per km² of the extract's bounding box (3 to 12, at most the
        number of host POIs), clustered so that straight-line 1 km coverage stays partial.

    Returns
    -------
    SampleArea
        Boundary from ``extract_bounds``; stations at real host POIs inside it; several thousand demand points
        inside it. All coordinates WGS 84 lon/lat degrees.

    Raises
    ------
    InvalidInput
        If the file is unusable, has no host POIs, or ``n_stations`` is out of range.
    """
    p = Path(path)
    bounds = extract_bounds(p)
    boundary = box(*bounds)
    centre = boundary.centroid
    epsg = utm_epsg(centre.x, centre.y)
    to_metric = pyproj.Transformer.from_crs(WGS84, epsg, always_xy=True)
    to_wgs = pyproj.Transformer.from_crs(epsg, WGS84, always_xy=True)
    pois = pois_from_extract(p)
    pois = pois[pois.within(boundary)]
    buildings = buildings_from_extract(p).to_crs(epsg)
    if not buildings.empty:
        c_lon, c_lat = to_wgs.transform(buildings.centroid.x.to_numpy(), buildings.centroid.y.to_numpy())
        buildings = buildings[gpd.points_from_xy(c_lon, c_lat).within(boundary)]
    streets = _named_streets(p, boundary, epsg)
    area_km2 = gpd.GeoSeries([boundary], crs=WGS84).to_crs(epsg).area.iloc[0] / 1e6
    rng = np.random.default_rng(seed)
    stations = _stations(pois, streets, bounds, to_metric, n_stations, rng, area_km2)
    demand = _demand(pois, buildings, to_metric, to_wgs, boundary, rng)
    note = (f"Synthetic demo data (seed {seed}) derived from the OpenStreetMap extract {p.name}: stations are "
            "placed at real host POIs and demand at real food/shop POIs and buildings, but every station, "
            "attribute, order weight and timestamp is invented. 合成演示数据，并非真实驿站或订单。"
            "Map data © OpenStreetMap contributors (ODbL).")
    name = _area_name(p)
    return SampleArea(name=name, boundary=boundary, crs_epsg=epsg, stations=stations, demand=demand,
                      synthetic_note=note, display_name=DISPLAY_NAMES.get(name, f"{name}（示例区域）"))


def _named_streets(path: Path, boundary: Polygon, epsg: int) -> gpd.GeoDataFrame:
    """Named highway ways near the boundary, projected to ``epsg`` for nearest-street addresses."""
    streets = named_streets_from_extract(path)
    streets = streets[streets.intersects(boundary)]
    return streets.to_crs(epsg) if not streets.empty else streets

