"""Tests of yizhan.data.sample: the synthetic demo area built from the shared Wudaokou extract."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from opening_hours import validate
from shapely.geometry import shape

from yizhan.data.sample import DEMAND_COLUMNS, STATION_COLUMNS, SampleArea, sample_from_extract
from yizhan.errors import InvalidInput
from yizhan.geo.osm import pois_from_extract
from yizhan.stations.vocab import AMENITIES, HOSTS, KINDS, STATUSES

SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"


@pytest.fixture(scope="module")
def extract(osm_path: Path) -> Path:
    return osm_path


@pytest.fixture(scope="module")
def area(extract) -> SampleArea:
    return sample_from_extract(extract)


def test_area_metadata(area):
    assert area.name == "beijing_haidian_wudaokou"
    assert area.crs_epsg == 32650
    assert area.boundary.bounds == pytest.approx((116.3084, 39.9905, 116.3320, 40.0123))
    assert "synthetic" in area.synthetic_note.lower()
    assert "© OpenStreetMap contributors" in area.synthetic_note


def test_stations_registry_format_and_vocabulary(area):
    st = area.stations
    assert tuple(st.columns) == STATION_COLUMNS
    assert 6 <= len(st) <= 10
    assert st["id"].is_unique and st["id"].str.match(r"^DEMO-\d{3}$").all()
    assert st["name"].is_unique and st["name"].str.startswith("户外劳动者驿站·").all()
    assert set(st["kind"]) <= set(KINDS)
    assert set(st["host"]) <= set(HOSTS)
    assert set(st["status"]) <= set(STATUSES) and (st["status"] == "active").sum() >= len(st) - 2
    assert "closed" in set(st["status"])
    for codes in st["amenities"]:
        assert codes and set(codes.split(";")) <= set(AMENITIES)
    assert all(validate(oh) for oh in st["opening_hours"])
    assert st["seats"].between(1, 100).all() and st["stars"].between(1, 5).all()
    assert set(st["township"]) <= {"东北片区", "西北片区", "东南片区", "西南片区"}
    assert (st["address"].str.len() > 0).all()


def test_stations_sit_at_real_host_pois(area, extract):
    pois = pois_from_extract(extract)
    at = {(round(p.x, 6), round(p.y, 6)): (a, s) for p, a, s in zip(pois.geometry, pois["amenity"], pois["shop"],
                                                                   strict=True)}
    hosts = {"bank": {("bank", None)}, "petrol_station": {("fuel", None)},
             "shop": {(None, "convenience"), (None, "supermarket")}, "other": {("post_office", None)}}
    for _, row in area.stations.iterrows():
        tags = at[(row["lon"], row["lat"])]
        if row["host"] in hosts:
            assert tags in hosts[row["host"]]


def test_everything_inside_the_boundary(area):
    west, south, east, north = area.boundary.bounds
    for frame in (area.stations, area.demand):
        assert frame["lon"].between(west, east).all() and frame["lat"].between(south, north).all()


def test_demand_points(area):
    d = area.demand
    assert tuple(d.columns) == DEMAND_COLUMNS
    assert 2000 <= len(d) <= 10000
    assert (d["weight"] > 0).all()
    ts = pd.to_datetime(d["timestamp"], format="ISO8601")
    hours = ts.dt.hour + ts.dt.minute / 60
    lunch = hours.between(10.5, 14.0)
    dinner = hours.between(16.5, 21.5)
    assert (lunch | dinner).mean() > 0.95 and lunch.mean() > 0.3 and dinner.mean() > 0.3


def test_straight_line_coverage_is_partial(area):
    st = area.stations[area.stations["status"] == "active"]
    stations = gpd.GeoSeries(gpd.points_from_xy(st["lon"], st["lat"]), crs=4326).to_crs(area.crs_epsg)
    boundary = gpd.GeoSeries([area.boundary], crs=4326).to_crs(area.crs_epsg).iloc[0]
    covered = stations.buffer(1000).union_all().intersection(boundary).area / boundary.area
    assert 0.2 < covered < 0.95
    demand = gpd.GeoSeries(gpd.points_from_xy(area.demand["lon"], area.demand["lat"]), crs=4326)
    dist = np.min([demand.to_crs(area.crs_epsg).distance(s) for s in stations], axis=0)
    share = area.demand["weight"][dist <= 1000].sum() / area.demand["weight"].sum()
    assert 0.2 < share < 0.97


def test_deterministic_for_a_seed(area, extract):
    again = sample_from_extract(extract)
    pd.testing.assert_frame_equal(again.stations, area.stations)
    pd.testing.assert_frame_equal(again.demand, area.demand)
    other = sample_from_extract(extract, seed=8)
    assert not other.demand.equals(area.demand)


def test_n_stations(extract):
    assert len(sample_from_extract(extract, n_stations=3).stations) == 3
    with pytest.raises(InvalidInput, match="n_stations"):
        sample_from_extract(extract, n_stations=500)


def test_write(area, tmp_path):
    paths = area.write(tmp_path / "out")
    assert set(paths) == {"stations", "demand", "boundary"}
    with paths["stations"].open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == STATION_COLUMNS and len(rows) == len(area.stations)
    assert rows[0]["name"] == area.stations["name"].iloc[0]
    assert len(pd.read_csv(paths["demand"])) == len(area.demand)
    geojson = json.loads(paths["boundary"].read_text(encoding="utf-8"))
    assert shape(geojson["features"][0]["geometry"]).equals(area.boundary)


def test_missing_extract(tmp_path):
    with pytest.raises(InvalidInput, match=r"nothing\.osm"):
        sample_from_extract(tmp_path / "nothing.osm")


def test_hand_written_sample_registry():
    st = pd.read_csv(SAMPLE_CSV, dtype={"amenities": str})
    assert tuple(st.columns) == STATION_COLUMNS
    assert 6 <= len(st) <= 12 and st["id"].is_unique
    assert set(st["kind"]) <= set(KINDS) and set(st["host"]) <= set(HOSTS) and set(st["status"]) <= set(STATUSES)
    assert all(set(a.split(";")) <= set(AMENITIES) for a in st["amenities"])
    assert all(validate(oh) for oh in st["opening_hours"])
    assert st["lon"].between(116.309, 116.332).all() and st["lat"].between(39.991, 40.012).all()
    assert st["stars"].between(1, 5).all()


def test_shipped_extract_gives_the_same_area_as_the_xml(area):
    """The demo's shipped PBF holds the XML export's data and bounds: the same sample area, station for station."""
    from yizhan.demo import DEMO_EXTRACT

    shipped = sample_from_extract(DEMO_EXTRACT)
    assert shipped.boundary.equals(area.boundary) and shipped.crs_epsg == area.crs_epsg
    pd.testing.assert_frame_equal(shipped.stations, area.stations)
    pd.testing.assert_frame_equal(shipped.demand, area.demand)
