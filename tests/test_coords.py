"""Tests of yizhan.geo.coords: WGS 84 / GCJ-02 / BD-09 conversions (lon, lat degrees)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from yizhan.errors import InvalidInput
from yizhan.geo.coords import COORD_SYSTEMS, from_wgs84, in_china, to_wgs84, wgs84_to_gcj02_point

GEOD = pyproj.Geod(ellps="WGS84")
TIANANMEN_WGS84 = (116.391275, 39.906217)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def test_reference_values_of_the_published_formulas():
    # Reference outputs of the widely used coordtransform implementations for the point (116.404, 39.915).
    assert np.allclose(from_wgs84(116.404, 39.915, "gcj02"), (116.41024449916938, 39.91640428150164), atol=1e-9)
    gcj_to_bd = from_wgs84(*to_wgs84(116.404, 39.915, "gcj02"), "bd09")
    assert np.allclose(gcj_to_bd, (116.41036949371029, 39.92133699351021), atol=1e-6)


def test_beijing_offset_is_a_few_hundred_metres():
    lon, lat = TIANANMEN_WGS84
    g_lon, g_lat = from_wgs84(lon, lat, "gcj02")
    assert 300 < metres(lon, lat, g_lon, g_lat) < 600
    b_lon, b_lat = from_wgs84(lon, lat, "bd09")
    assert 700 < metres(lon, lat, b_lon, b_lat) < 1500


@pytest.mark.parametrize("system", COORD_SYSTEMS)
def test_round_trip_is_below_half_a_metre(system):
    rng = np.random.default_rng(42)
    lon = rng.uniform(75.0, 134.0, 3000)
    lat = rng.uniform(18.0, 53.0, 3000)
    back_lon, back_lat = to_wgs84(*from_wgs84(lon, lat, system), system)
    assert back_lon.shape == lon.shape
    assert metres(lon, lat, back_lon, back_lat).max() < 0.5


def test_gcj02_inverse_is_much_better_than_the_one_step_approximation():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(100.0, 122.0, 1000), rng.uniform(22.0, 45.0, 1000)
    back = to_wgs84(*from_wgs84(lon, lat, "gcj02"), "gcj02")
    assert metres(lon, lat, *back).max() < 0.01


def test_identity_outside_china():
    lon = np.array([2.3522, -74.006, 151.2093, 139.9])
    lat = np.array([48.8566, 40.7128, -33.8688, 35.7])  # Paris, New York, Sydney, east of Tokyo
    assert not in_china(lon, lat)[:3].any()
    for fn in (from_wgs84, to_wgs84):
        out_lon, out_lat = fn(lon[:3], lat[:3], "gcj02")
        assert np.array_equal(out_lon, lon[:3])
        assert np.array_equal(out_lat, lat[:3])


def test_one_point_in_floats_is_the_array_formula_exactly():
    """The navigation links' one-point GCJ-02 (plain floats) gives the array function's numbers, inside China,
    outside it and on the box's edges."""
    rng = np.random.default_rng(7)
    lon = np.concatenate([rng.uniform(60, 150, 2000), [72.004, 137.8347, 116.3]])
    lat = np.concatenate([rng.uniform(-5, 60, 2000), [30.0, 30.0, 55.8271]])
    glon, glat = from_wgs84(lon, lat, "gcj02")
    one = np.array([wgs84_to_gcj02_point(float(x), float(y)) for x, y in zip(lon, lat, strict=True)])
    assert np.array_equal(one[:, 0], glon) and np.array_equal(one[:, 1], glat)


def test_scalars_and_wgs84_pass_through():
    lon, lat = to_wgs84(116.3, 40.0, "wgs84")
    assert float(lon) == 116.3 and float(lat) == 40.0
    assert np.ndim(from_wgs84(116.3, 40.0, "gcj02")[0]) == 0


def test_system_names_are_normalised():
    assert np.allclose(from_wgs84(116.3, 40.0, "GCJ-02"), from_wgs84(116.3, 40.0, "gcj02"))


def test_unknown_system_lists_accepted_names():
    with pytest.raises(InvalidInput, match="wgs84, gcj02, bd09"):
        to_wgs84(116.3, 40.0, "cgcs2000")
    with pytest.raises(InvalidInput, match="mars"):
        from_wgs84(116.3, 40.0, "mars")
