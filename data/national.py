"""A synthetic national station registry spread like China's cities, for load tests of the nearest-station service.

``national_registry(186_100)`` places stations around ~80 major cities (weight ~ urban population): most in a
dense city-centre cluster (normal, spread growing with the city's size), some in a wider suburban ring and a
few along the way between two cities. Every point lies inside China's bounding box (not its border: a few
coastal points fall in the sea, which does not matter for a nearest-station search). Attributes (kind, host,
amenities, opening hours, seats, stars, status) are drawn with realistic shares; everything is vectorised with
numpy and deterministic for a seed.

``load_national`` stores such a registry as one area (a China bounding box, EPSG:32650 as its nominal CRS).
A national area has no single metric CRS: use it for the nearest-station service, not for coverage analysis.

For coverage, the nation is its UTM zones instead, as provinces would be: ``national_zones`` gives one area per
zone China spans (EPSG 326zz, the boundary the zone's 6-degree longitude band x China's latitude range),
``zone_of`` the zone of each longitude, and ``national_demand`` a demand lattice of 200 m cells around the same
cities, one point per cell at its centre, laid on each zone's own metric lattice.
"""

from __future__ import annotations

import gc

import numpy as np
from pyproj import Transformer
from shapely.geometry import Polygon, box
from sqlalchemy import Engine

from yizhan.areas import ensure_area
from yizhan.stations import vocab
from yizhan.stations.importer import CHINA, StationRecord
from yizhan.stations.registry import ImportSummary, upsert_stations

# (name, lon, lat, urban population in millions, roughly): the weight of each city in the registry
CITIES: list[tuple[str, float, float, float]] = [
    ("上海", 121.474, 31.230, 24.9), ("北京", 116.407, 39.904, 21.9), ("重庆", 106.551, 29.563, 16.0),
    ("广州", 113.264, 23.129, 18.8), ("深圳", 114.058, 22.543, 17.6), ("成都", 104.066, 30.573, 16.3),
    ("天津", 117.201, 39.085, 11.7), ("武汉", 114.305, 30.593, 12.3), ("西安", 108.940, 34.341, 10.0),
    ("杭州", 120.155, 30.274, 12.2), ("南京", 118.797, 32.060, 9.4), ("郑州", 113.625, 34.746, 10.0),
    ("长沙", 112.938, 28.228, 8.4), ("东莞", 113.752, 23.021, 10.5), ("沈阳", 123.432, 41.806, 7.7),
    ("青岛", 120.383, 36.067, 7.0), ("合肥", 117.227, 31.821, 7.0), ("佛山", 113.122, 23.029, 9.5),
    ("苏州", 120.585, 31.299, 8.0), ("哈尔滨", 126.535, 45.803, 6.0), ("济南", 117.121, 36.651, 6.5),
    ("昆明", 102.833, 24.880, 6.0), ("大连", 121.615, 38.914, 5.5), ("长春", 125.324, 43.817, 5.5),
    ("厦门", 118.089, 24.480, 5.2), ("宁波", 121.550, 29.875, 6.0), ("无锡", 120.312, 31.491, 5.0),
    ("福州", 119.297, 26.074, 5.0), ("石家庄", 114.515, 38.042, 5.5), ("南宁", 108.366, 22.817, 5.0),
    ("太原", 112.549, 37.871, 4.5), ("贵阳", 106.630, 26.647, 4.5), ("南昌", 115.858, 28.683, 4.5),
    ("乌鲁木齐", 87.617, 43.826, 4.0), ("温州", 120.699, 27.994, 4.0), ("常州", 119.974, 31.811, 3.9),
    ("泉州", 118.676, 24.874, 3.5), ("兰州", 103.834, 36.061, 3.5), ("徐州", 117.285, 34.205, 3.5),
    ("惠州", 114.416, 23.111, 3.5), ("中山", 113.393, 22.517, 3.2), ("珠海", 113.577, 22.271, 2.2),
    ("海口", 110.199, 20.044, 2.5), ("呼和浩特", 111.749, 40.842, 2.5), ("唐山", 118.180, 39.631, 3.2),
    ("烟台", 121.448, 37.464, 2.8), ("潍坊", 119.161, 36.707, 2.8), ("洛阳", 112.454, 34.620, 2.8),
    ("绍兴", 120.580, 30.030, 2.7), ("台州", 121.421, 28.656, 2.3), ("金华", 119.647, 29.079, 2.0),
    ("嘉兴", 120.755, 30.746, 2.0), ("南通", 120.894, 31.981, 2.8), ("扬州", 119.413, 32.394, 2.0),
    ("临沂", 118.356, 35.104, 2.8), ("淄博", 118.055, 36.813, 2.7), ("保定", 115.465, 38.874, 2.6),
    ("邯郸", 114.539, 36.626, 2.4), ("银川", 106.231, 38.487, 2.0), ("西宁", 101.778, 36.617, 1.8),
    ("拉萨", 91.117, 29.653, 0.7), ("包头", 109.840, 40.657, 2.0), ("大同", 113.300, 40.077, 1.8),
    ("柳州", 109.412, 24.326, 2.0), ("桂林", 110.290, 25.274, 1.6), ("赣州", 114.935, 25.831, 1.8),
    ("芜湖", 118.433, 31.352, 2.0), ("襄阳", 112.144, 32.042, 2.1), ("宜昌", 111.286, 30.692, 1.6),
    ("株洲", 113.134, 27.828, 1.5), ("岳阳", 113.129, 29.357, 1.5), ("绵阳", 104.679, 31.468, 1.6),
    ("南充", 106.111, 30.837, 1.6), ("遵义", 106.927, 27.726, 1.6), ("汕头", 116.682, 23.354, 3.8),
    ("湛江", 110.359, 21.271, 1.8), ("江门", 113.082, 22.579, 2.0), ("吉林", 126.549, 43.838, 1.7),
    ("鞍山", 122.994, 41.108, 1.5), ("齐齐哈尔", 123.918, 47.354, 1.2), ("大庆", 125.104, 46.589, 1.4),
    ("三亚", 109.512, 18.252, 0.8), ("喀什", 75.990, 39.470, 0.7), ("西双版纳", 100.797, 22.008, 0.5),
]
ROADS = ["人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "胜利路", "朝阳路", "长江路", "黄河路",
         "文化路", "工业大道", "滨江路", "世纪大道", "迎宾路", "光明街"]
KINDS = (["large", "small", "mobile"], [0.20, 0.75, 0.05])
HOSTS = (list(vocab.HOSTS), [0.30, 0.15, 0.15, 0.20, 0.12, 0.08])
# each amenity independently, with its probability
AMENITY_P = {"drinking_water": 0.92, "charging": 0.70, "microwave": 0.55, "toilet": 0.60, "air_conditioning": 0.65,
             "heating": 0.35, "rest_seats": 0.85, "first_aid": 0.50, "love_fridge": 0.20, "wifi": 0.55,
             "umbrella": 0.30, "repair_kit": 0.25}
HOURS = (["24/7", "Mo-Fr 08:00-18:00", "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00", "Mo-Su 07:00-22:00",
          "Mo-Sa 09:00-21:00", "Mo-Fr 07:30-19:30; Sa 09:00-12:00", "Mo-Su 06:00-24:00", None],
         [0.25, 0.20, 0.20, 0.15, 0.07, 0.05, 0.05, 0.03])
STATUSES = (["active", "closed"], [0.97, 0.03])
# shares of the placement components: city centre, suburbs, between two cities
CENTRE, SUBURB = 0.72, 0.23
_EPS = 1e-6


def _points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """City index, lon, lat of ``n`` stations (degrees, inside ``CHINA``)."""
    _, lons, lats, pops = zip(*CITIES, strict=True)
    clon, clat, pop = np.array(lons), np.array(lats), np.array(pops)
    city = rng.choice(len(CITIES), n, p=pop / pop.sum())
    part = rng.random(n)
    # centre spread: ~4 km for a small city, ~13 km for Shanghai (1 degree of latitude is ~111 km)
    sd = 0.02 * np.sqrt(pop[city] / 2.0)
    sd = np.where(part < CENTRE, sd, sd * 4.0)
    lat = rng.normal(clat[city], sd)
    lon = rng.normal(clon[city], sd / np.cos(np.radians(clat[city])))
    between = part >= CENTRE + SUBURB
    if between.any():  # along the way to another city, with some jitter off the straight line
        other = rng.choice(len(CITIES), int(between.sum()), p=pop / pop.sum())
        t = rng.uniform(0.05, 0.95, len(other))
        c = city[between]
        lon[between] = clon[c] + t * (clon[other] - clon[c]) + rng.normal(0, 0.15, len(other))
        lat[between] = clat[c] + t * (clat[other] - clat[c]) + rng.normal(0, 0.15, len(other))
    w, s, e, nn = CHINA
    return city, np.clip(lon, w + _EPS, e - _EPS), np.clip(lat, s + _EPS, nn - _EPS)


def national_registry(n: int = 186_100, *, seed: int = 2024) -> list[StationRecord]:
    """``n`` synthetic stations over China's cities, ids ``CN-0000001`` on; the same list for the same seed."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    city, lon, lat = _points(n, rng)
    names = [c[0] for c in CITIES]
    # number stations within each city: 1, 2, ... in id order
    order = np.argsort(city, kind="stable")
    first = np.concatenate([[0], np.cumsum(np.bincount(city, minlength=len(CITIES)))[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first[city[order]] + 1
    kind = rng.choice(len(KINDS[0]), n, p=KINDS[1])
    host = rng.choice(len(HOSTS[0]), n, p=HOSTS[1])
    hours = rng.choice(len(HOURS[0]), n, p=HOURS[1])
    status = rng.choice(len(STATUSES[0]), n, p=STATUSES[1])
    amen_codes = list(AMENITY_P)
    has = rng.random((n, len(amen_codes))) < np.array(list(AMENITY_P.values()))
    mask = has @ (1 << np.arange(len(amen_codes)))
    combos: dict[int, list[str]] = {}
    seats = np.select([kind == 0, kind == 1], [rng.integers(10, 41, n), rng.integers(2, 13, n)],
                      rng.integers(2, 7, n))
    stars = rng.integers(1, 6, n)
    no_stars = rng.random(n) < 0.3
    road = rng.integers(0, len(ROADS), n)
    number = rng.integers(1, 800, n)
    for m in np.unique(mask).tolist():
        combos[m] = [a for j, a in enumerate(amen_codes) if m >> j & 1]
    kinds, hosts, hour_opts, stats = KINDS[0], HOSTS[0], HOURS[0], STATUSES[0]
    star_list = np.where(no_stars, 0, stars).tolist()
    gc_was_on = gc.isenabled()
    gc.disable()  # the cyclic collector would rescan the growing list many times over (3x slower)
    try:
        return [
            StationRecord(f"CN-{i:07d}", f"{names[c]}户外劳动者服务站{r}", kinds[k], x, y, hosts[h],
                          f"{names[c]}市{ROADS[rd]}{num}号", names[c], list(combos[m]), hour_opts[hh], se, st or None,
                          stats[sa])
            for i, c, r, k, x, y, h, rd, num, m, hh, se, st, sa in zip(
                range(1, n + 1), city.tolist(), rank.tolist(), kind.tolist(), np.round(lon, 7).tolist(),
                np.round(lat, 7).tolist(), host.tolist(), road.tolist(), number.tolist(), mask.tolist(), hours.tolist(),
                seats.tolist(), star_list, status.tolist(), strict=True)
        ]
    finally:
        if gc_was_on:
            gc.enable()


def load_national(engine: Engine, n: int = 186_100, *, area: str = "china", seed: int = 2024,
                  records: list[StationRecord] | None = None) -> ImportSummary:
    """Create (or update) the area ``area`` (China's bounding box, nominal CRS EPSG:32650) and upsert a national
    registry of ``n`` stations into it with COPY, in one transaction.

    ``records`` passes an already generated registry (then ``n`` and ``seed`` are ignored). The area is for the
    nearest-station service only: one UTM zone cannot measure all of China, so do not run coverage on it.
    """
    recs = records if records is not None else national_registry(n, seed=seed)
    with engine.begin() as conn:
        info = ensure_area(conn, area, boundary=box(*CHINA), crs_epsg=32650, source="synthetic national registry")
        return upsert_stations(conn, info.id, info.name, recs)


def zone_of(lon: np.ndarray) -> np.ndarray:
    """The UTM zone number (1..60) of each WGS 84 longitude (degrees): ``floor((lon + 180) / 6) + 1``."""
    return (np.floor((np.asarray(lon, dtype=float) + 180.0) / 6.0).astype(np.int64) + 1).clip(1, 60)


def national_zones() -> list[tuple[str, int, Polygon]]:
    """The areas a synthetic nation is modelled as: (name ``utm43`` ..., EPSG 326zz, boundary in WGS 84 lon/lat),
    one per UTM zone China's bounding box spans (43 to 53), each the zone's longitude band cut to ``CHINA``."""
    w, s, e, n = CHINA
    out = []
    for z in range(int(zone_of(np.array([w]))[0]), int(zone_of(np.array([e]))[0]) + 1):
        west, east = max(w, -180.0 + 6.0 * (z - 1)), min(e, -180.0 + 6.0 * z)
        out.append((f"utm{z}", 32600 + z, box(west, s, east, n)))
    return out


def _zone_lattice(clon: np.ndarray, clat: np.ndarray, radius_m: np.ndarray, zone: int, cell_m: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lattice cells of ``zone`` (EPSG 326zz, cells of ``cell_m`` metres aligned on 0) whose centres lie within
    ``radius_m`` metres of a city centre (``clon``, ``clat`` degrees) and inside the zone's longitude band:
    (i, j) lattice indices (x east, y north) and each cell's distance to its nearest such city, relative to that
    city's radius (0 at the centre, 1 at the edge); unique cells."""
    to_m = Transformer.from_crs(4326, 32600 + zone, always_xy=True)
    cx, cy = to_m.transform(clon, clat)
    keys: list[np.ndarray] = []
    rel: list[np.ndarray] = []
    for x0, y0, r in zip(np.asarray(cx), np.asarray(cy), radius_m, strict=True):
        i = np.arange(np.floor((x0 - r) / cell_m), np.ceil((x0 + r) / cell_m) + 1, dtype=np.int64)
        j = np.arange(np.floor((y0 - r) / cell_m), np.ceil((y0 + r) / cell_m) + 1, dtype=np.int64)
        ii, jj = np.meshgrid(i, j)
        d = np.hypot((ii + 0.5) * cell_m - x0, (jj + 0.5) * cell_m - y0) / r
        inside = d <= 1.0
        keys.append(np.column_stack([ii[inside], jj[inside]]))
        rel.append(d[inside])
    if not keys:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    ij, d = np.concatenate(keys), np.concatenate(rel)
    order = np.lexsort((d, ij[:, 1], ij[:, 0]))  # per cell, its nearest city (smallest relative distance) first
    ij, d = ij[order], d[order]
    first = np.ones(len(ij), dtype=bool)
    first[1:] = (ij[1:] != ij[:-1]).any(axis=1)
    ij, d = ij[first], d[first]
    # keep the cells whose centre lies in the zone's band, so each cell belongs to one zone
    lon, _ = Transformer.from_crs(32600 + zone, 4326, always_xy=True).transform((ij[:, 0] + 0.5) * cell_m,
                                                                               (ij[:, 1] + 0.5) * cell_m)
    mine = zone_of(np.asarray(lon)) == zone
    return ij[mine, 0], ij[mine, 1], d[mine]


def national_demand(min_cells: int = 5_000_000, *, cell_m: float = 200.0, seed: int = 2024
                    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A national demand lattice of at least ``min_cells`` cells of ``cell_m`` metres around ``CITIES``, per zone
    area of ``national_zones``: ``{name: (lon, lat, weight)}``, one point per cell at its centre (WGS 84 degrees;
    the centres of the zone's own UTM lattice, aligned on 0, so that an import with ``cell_size_m=cell_m`` gives
    one cell per point) and its orders (a positive integer).

    Each city's cells are those within a radius growing with the square root of its weight (its population; the
    radii scaled so that the nation has ``min_cells`` cells or a little more, overlapping cities counted once);
    orders fall off from the centre (``1 + 60 exp(-3 d/R)`` times a lognormal factor, ``d/R`` the distance to the
    nearest city centre relative to its radius). Vectorised per city; the same result for the same arguments.
    """
    if min_cells <= 0 or not cell_m > 0:
        raise ValueError("min_cells and cell_m must be positive")
    _, lons, lats, pops = zip(*CITIES, strict=True)
    clon, clat, pop = np.array(lons), np.array(lats), np.array(pops)
    zones = national_zones()
    # pi k^2 sum(pop) / cell^2 cells if no two cities overlapped; grow k until the overlaps are made up for
    k = np.sqrt(min_cells * cell_m ** 2 / (np.pi * pop.sum()))
    while True:
        radius = k * np.sqrt(pop)
        lattices = {}
        for name, epsg, band in zones:
            # the cities whose disc may reach the band (a degree of longitude is at least 60 km up to 57 N)
            west, _, east, _ = band.bounds
            near = (clon + radius / 60_000.0 >= west) & (clon - radius / 60_000.0 <= east)
            lattices[name] = (epsg, _zone_lattice(clon[near], clat[near], radius[near], epsg - 32600, cell_m))
        total = sum(len(lat[0]) for _, lat in lattices.values())
        if total >= min_cells:
            break
        k *= np.sqrt(min_cells / total) * 1.001
    rng = np.random.default_rng(seed)
    out = {}
    for name, (epsg, (i, j, d)) in lattices.items():
        if not len(i):
            continue
        lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform((i + 0.5) * cell_m,
                                                                             (j + 0.5) * cell_m)
        weight = np.maximum(1, np.round((1 + 60 * np.exp(-3 * d)) * rng.lognormal(0, 0.5, len(d)))).astype(np.int64)
        out[name] = (np.round(np.asarray(lon), 7), np.round(np.asarray(lat), 7), weight)
    return out
