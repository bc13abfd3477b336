"""Synthetic Beijing data for ``run.py``: a union-style station registry and a square demand grid.

Not a script. All of it comes from the caller's seeded ``numpy`` generator, so two runs produce identical files.
Points are (lon, lat) WGS 84 degrees; the grid is laid out in metres in UTM 50N (EPSG:32650) and written back
as lon/lat.

- ``registry_frame``: the registry CSV's rows (Chinese headers ``编号, 名称, 类型, 经度, 纬度, 承办单位, 地址, 街道,
  设施, 开放时间, 座位数, 星级, 状态``; Chinese and English vocabulary, mixed amenity separators) for given points;
- ``beijing_points``: points over the Beijing box, in Gaussian clusters around district centres plus a uniform
  background;
- ``make_grid``: one demand point at the centre of every 200 m cell of a square around Tian'anmen, clustered
  stations over it, and the area's boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import box

BEIJING = (115.4, 39.4, 117.5, 41.1)  # west, south, east, north: roughly Beijing municipality
GRID_CENTRE = (116.40, 39.90)  # centre of the coverage grid (Tian'anmen), UTM 50N
UTM50N = 32650

# (lon, lat, sigma in degrees, share): dense urban clusters of the station registry
CLUSTERS = [
    (116.397, 39.909, 0.060, 0.22),  # core (Dongcheng/Xicheng)
    (116.460, 39.920, 0.035, 0.10),  # CBD / Chaoyang
    (116.320, 39.990, 0.030, 0.10),  # Haidian / Wudaokou
    (116.290, 39.860, 0.030, 0.06),  # Fengtai
    (116.656, 39.909, 0.030, 0.06),  # Tongzhou
    (116.231, 40.220, 0.030, 0.05),  # Changping
    (116.338, 39.728, 0.030, 0.05),  # Daxing
    (116.654, 40.130, 0.030, 0.04),  # Shunyi
    (116.143, 39.748, 0.025, 0.03),  # Fangshan
    (116.102, 39.940, 0.020, 0.02),  # Mentougou
    (116.632, 40.316, 0.020, 0.02),  # Huairou
    (117.121, 40.141, 0.020, 0.02),  # Pinggu
    (116.843, 40.376, 0.020, 0.02),  # Miyun
    (115.975, 40.456, 0.020, 0.01),  # Yanqing
]
UNIFORM_SHARE = 1.0 - sum(c[3] for c in CLUSTERS)
DISTRICTS = ["东城", "西城", "朝阳", "海淀", "丰台", "石景山", "通州", "顺义", "昌平", "大兴", "房山", "门头沟",
             "怀柔", "平谷", "密云", "延庆"]
STREETS = ["中关村", "学院路", "望京", "三里屯", "建外", "金融街", "回龙观", "天通苑", "亦庄", "西红门", "良乡",
           "永顺", "梨园", "马坡", "石园", "龙泉", "南口", "旧宫", "大红门", "五道口"]
ROADS = ["长安街", "成府路", "建国路", "京顺路", "学清路", "北四环西路", "朝阳路", "通惠河北路", "双清路", "莲花池东路"]
BRANDS = ["户外劳动者服务站", "暖心驿站", "骑手之家", "工会爱心驿站", "快递小哥驿站"]
KINDS = (["小型", "大型", "流动", "small", "large"], [0.6, 0.2, 0.1, 0.07, 0.03])
HOSTS = (["党群服务中心", "加油站", "银行", "便利店", "工会", "其他", ""], [0.3, 0.15, 0.15, 0.15, 0.1, 0.05, 0.1])
AMENITY_WORDS = ["饮水", "充电", "微波炉", "卫生间", "空调", "暖气", "休息座椅", "医药箱", "爱心冰箱", "无线网络",
                 "雨具", "维修工具", "热水", "wifi", "toilet"]
HOURS = (["24/7", "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00", "Mo-Su 07:00-22:00", "Mo-Sa 09:00-21:00",
          "Mo-Fr 07:30-19:30; Sa 09:00-12:00", "Mo-Su 06:00-24:00", ""], [0.2, 0.3, 0.2, 0.1, 0.1, 0.05, 0.05])
STATUS = (["运营", "active", "关闭", ""], [0.8, 0.1, 0.03, 0.07])
HEADER = ["编号", "名称", "类型", "经度", "纬度", "承办单位", "地址", "街道", "设施", "开放时间", "座位数", "星级",
          "状态"]


def registry_frame(lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    """A union-style registry (Chinese headers, Chinese and English vocabulary) for the given points."""
    n = len(lon)
    district = rng.integers(0, len(DISTRICTS), n)
    street = rng.integers(0, len(STREETS), n)
    d_names = np.array(DISTRICTS, dtype=object)[district]
    s_names = np.array(STREETS, dtype=object)[street]
    brands = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), n)]
    roads = np.array(ROADS, dtype=object)[rng.integers(0, len(ROADS), n)]
    numbers = rng.integers(1, 400, n)
    k_amen = rng.integers(0, 7, n)
    amen_pool = np.array(AMENITY_WORDS, dtype=object)
    seps = ["；", ";", "、"]
    amenities = [seps[i % 3].join(rng.choice(amen_pool, k, replace=False)) if k else ""
                 for i, k in enumerate(k_amen)]
    stars = rng.integers(0, 6, n)
    return pd.DataFrame({
        "编号": [f"{prefix}{i:06d}" for i in range(1, n + 1)],
        "名称": [f"{d}区{s}{b}{i}号" for d, s, b, i in zip(d_names, s_names, brands, range(1, n + 1), strict=True)],
        "类型": rng.choice(KINDS[0], n, p=KINDS[1]),
        "经度": np.char.mod("%.6f", lon),
        "纬度": np.char.mod("%.6f", lat),
        "承办单位": rng.choice(HOSTS[0], n, p=HOSTS[1]),
        "地址": [f"北京市{d}区{r}{k}号" for d, r, k in zip(d_names, roads, numbers, strict=True)],
        "街道": [f"{s}街道" for s in s_names],
        "设施": amenities,
        "开放时间": rng.choice(HOURS[0], n, p=HOURS[1]),
        "座位数": rng.integers(2, 41, n).astype(str),
        "星级": np.where(stars > 0, stars.astype(str), ""),
        "状态": rng.choice(STATUS[0], n, p=STATUS[1]),
    }, columns=HEADER)


def beijing_points(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points over the Beijing box: dense Gaussian clusters plus a uniform background, clipped to the box."""
    w, s, e, nn = BEIJING
    which = rng.choice(len(CLUSTERS) + 1, n, p=[c[3] for c in CLUSTERS] + [UNIFORM_SHARE])
    lon = rng.uniform(w, e, n)
    lat = rng.uniform(s, nn, n)
    for i, (cx, cy, sigma, _) in enumerate(CLUSTERS):
        m = which == i
        lon[m] = rng.normal(cx, sigma * 1.3, m.sum())  # a degree of lon is ~0.77 of a degree of lat here
        lat[m] = rng.normal(cy, sigma, m.sum())
    eps = 1e-4
    return np.clip(lon, w + eps, e - eps), np.clip(lat, s + eps, nn - eps)


@dataclass
class Grid:
    """The coverage grid's files (demand points, stations), its boundary (lon/lat polygon) and cell count."""

    csv_demand: Path
    csv_stations: Path
    boundary: Any
    cells: int


def make_grid(side: int, n_stations: int, rng: np.random.Generator, folder: Path) -> Grid:
    """One demand point at the centre of every 200 m cell of a ``side`` x ``side`` square (UTM 50N) around
    ``GRID_CENTRE``, ``n_stations`` stations (60 % Gaussian around the centre with sigma 8 km, 40 % uniform), the
    CSVs written to ``folder``; the boundary is the lon/lat box around the square plus 0.01 degrees."""
    to_m = pyproj.Transformer.from_crs(4326, UTM50N, always_xy=True)
    to_deg = pyproj.Transformer.from_crs(UTM50N, 4326, always_xy=True)
    size = 200.0
    cx, cy = to_m.transform(*GRID_CENTRE)
    x0 = np.floor((cx - side * size / 2) / size) * size
    y0 = np.floor((cy - side * size / 2) / size) * size
    ix, iy = np.meshgrid(np.arange(side), np.arange(side))
    x = x0 + (ix.ravel() + 0.5) * size
    y = y0 + (iy.ravel() + 0.5) * size
    lon, lat = to_deg.transform(x, y)
    r = np.hypot(x - cx, y - cy)
    weight = np.round(rng.gamma(2.0, 1.0, len(x)) * (0.2 + 4.0 * np.exp(-((r / 12_000.0) ** 2))), 3)
    stamp = pd.Timestamp("2026-11-01T00:00:00") + pd.to_timedelta(rng.integers(0, 30 * 86400, len(x)), unit="s")
    demand = pd.DataFrame({"lon": np.char.mod("%.7f", lon), "lat": np.char.mod("%.7f", lat), "weight": weight,
                           "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S+08:00")})
    csv_demand = folder / "demand.csv"
    demand.to_csv(csv_demand, index=False)
    # stations: 60 % around the centre (sigma 8 km), 40 % uniform over the square
    n = n_stations
    half = side * size / 2
    central = rng.random(n) < 0.6
    sx = np.where(central, rng.normal(cx, 8_000.0, n), rng.uniform(cx - half, cx + half, n))
    sy = np.where(central, rng.normal(cy, 8_000.0, n), rng.uniform(cy - half, cy + half, n))
    sx, sy = np.clip(sx, x0 + 1, x0 + side * size - 1), np.clip(sy, y0 + 1, y0 + side * size - 1)
    slon, slat = to_deg.transform(sx, sy)
    csv_stations = folder / "grid_stations.csv"
    registry_frame(np.asarray(slon), np.asarray(slat), rng, "G").to_csv(csv_stations, index=False)
    # boundary: the lon/lat box around the square's edge (densified) plus a margin
    t = np.linspace(0, side * size, 64)
    ex = np.concatenate([x0 + t, x0 + t, np.full(64, x0), np.full(64, x0 + side * size)])
    ey = np.concatenate([np.full(64, y0), np.full(64, y0 + side * size), y0 + t, y0 + t])
    blon, blat = to_deg.transform(ex, ey)
    boundary = box(min(blon) - 0.01, min(blat) - 0.01, max(blon) + 0.01, max(blat) + 0.01)
    return Grid(csv_demand, csv_stations, boundary, side * side)

