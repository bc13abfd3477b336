"""What the HTTP API tests share: the staff key, the stations the ``seeded`` fixture stores (id -> lon, lat,
amenities, hours, status, inside the Wudaokou fixture's bounds) and helpers to ask and check the nearest-station
route. The ``api`` and ``seeded`` fixtures are in conftest.py."""

from __future__ import annotations

from pathlib import Path

import httpx
from pyproj import Geod

from yizhan.geo.coords import from_wgs84

KEY = "test-key"
STAFF = {"X-API-Key": KEY}
GEOD = Geod(ellps="WGS84")
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status"

Q = (116.3200, 40.0000)  # the rider's position (WGS 84) in the nearest-station tests
# id -> (lon, lat, amenities, opening_hours, status); every point is inside the Wudaokou fixture's bounds
STATIONS = {
    "N-WEEK": (116.3185, 39.9990, "charging;toilet", "Mo-Fr 08:00-20:00", "active"),
    "N-247": (116.3230, 40.0010, "charging;toilet", "24/7", "active"),
    "N-WEEK2": (116.3210, 40.0030, "charging", "Mo-Fr 08:00-20:00", "active"),
    "N-NOHOURS": (116.3150, 40.0050, "drinking_water", "", "active"),
    "N-FAR": (116.3300, 40.0100, "toilet", "24/7", "active"),
    "N-CLOSED": (116.3201, 40.0001, "charging;toilet", "24/7", "closed"),  # the nearest of all, but closed
}
ACTIVE = [s for s, v in STATIONS.items() if v[4] == "active"]
SATURDAY_22H = "2025-06-07T22:00:00"  # a Saturday, local time (Asia/Shanghai)
WEDNESDAY_NOON = "2025-06-04T12:00:00"  # a Wednesday, local time


def stations_csv(stations: dict[str, tuple[float, float, str, str, str]]) -> bytes:
    lines = [HEADER]
    for sid, (lon, lat, amen, hours, status) in stations.items():
        lines.append(f'{sid},驿站 {sid},small,{lon},{lat},shop,,,{amen},"{hours}",4,3,{status}')
    return ("\n".join(lines) + "\n").encode()


def geodesic_m(lon: float, lat: float, sid: str) -> float:
    _, _, dist = GEOD.inv(lon, lat, STATIONS[sid][0], STATIONS[sid][1])
    return float(dist)


def to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 coordinates of a WGS 84 point."""
    x, y = from_wgs84(lon, lat, "gcj02")
    return float(x), float(y)


def expected_order(lon: float, lat: float, ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda s: geodesic_m(lon, lat, s))


def nearest_features(api: httpx.Client, lon: float, lat: float, **params: object) -> list[dict]:
    r = api.get("/stations/nearest", params={"lon": lon, "lat": lat, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection"
    return body["features"]


def feature_ids(features: list[dict]) -> list[str]:
    return [f["properties"]["id"] for f in features]
