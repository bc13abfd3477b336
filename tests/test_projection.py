"""Tests of yizhan.geo.projection: UTM zone choice for WGS 84 lon/lat."""

from __future__ import annotations

import pyproj
import pytest
from shapely.geometry import Point, box

from yizhan.errors import InvalidInput
from yizhan.geo.projection import WGS84, metric_crs_for, utm_epsg


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (116.32, 40.00, 32650),  # Beijing
        (87.62, 43.83, 32645),  # Urumqi
        (121.47, 31.23, 32651),  # Shanghai
        (151.21, -33.87, 32756),  # Sydney
        (-58.38, -34.60, 32721),  # Buenos Aires
        (-180.0, 0.0, 32601),
        (180.0, 0.0, 32660),
    ],
)
def test_utm_epsg(lon, lat, epsg):
    assert utm_epsg(lon, lat) == epsg


def test_utm_epsg_rejects_swapped_or_bad_coordinates():
    with pytest.raises(InvalidInput):
        utm_epsg(40.0, 116.3)
    with pytest.raises(InvalidInput):
        utm_epsg(float("nan"), 0.0)


def test_metric_crs_for_geometry_and_bounds():
    crs = metric_crs_for(box(116.3084, 39.9905, 116.3320, 40.0123))
    assert crs.to_epsg() == 32650
    assert crs.axis_info[0].unit_name == "metre"
    assert metric_crs_for((116.3084, 39.9905, 116.3320, 40.0123)) == crs
    assert metric_crs_for(Point(87.62, 43.83)).to_epsg() == 32645


def test_metric_crs_gives_metres():
    crs = metric_crs_for(Point(116.32, 40.0))
    t = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    x1, y1 = t.transform(116.32, 40.0)
    x2, y2 = t.transform(116.32, 40.009)  # about 1 km north
    assert 990 < ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 < 1010


def test_metric_crs_for_empty_geometry():
    with pytest.raises(InvalidInput):
        metric_crs_for(Point())
