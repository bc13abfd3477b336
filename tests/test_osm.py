"""Tests of yizhan.geo.osm on the shared Wudaokou extract (© OpenStreetMap contributors)."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import box

from yizhan.errors import InvalidInput
from yizhan.geo.osm import buildings_from_extract, extract_bounds, named_streets_from_extract, pois_from_extract

README_BOUNDS = (116.3084, 39.9905, 116.3320, 40.0123)


@pytest.fixture(scope="module")
def pois(extracts):
    return {p.suffix: pois_from_extract(p) for p in extracts}


@pytest.fixture(scope="module")
def buildings(extracts):
    return {p.suffix: buildings_from_extract(p) for p in extracts}


def test_bounds_from_header(extracts):
    assert extract_bounds(extracts[0]) == pytest.approx(README_BOUNDS)


def test_bounds_from_node_extent_when_header_has_none(extracts):
    # The .pbf carries no header bbox: the node extent (ways reach beyond the export box) is used instead.
    west, south, east, north = extract_bounds(extracts[1])
    assert west < east and south < north
    assert box(west, south, east, north).contains(box(*README_BOUNDS))


def test_poi_counts_match_the_readme(pois):
    frame = pois[".osm"]
    assert list(frame.columns) == ["osm_id", "name", "amenity", "shop", "office", "geometry"]
    assert frame.crs.to_epsg() == 4326
    assert (frame.geom_type == "Point").all()
    amenity_or_shop = frame[frame["amenity"].notna() | frame["shop"].notna()]
    assert len(amenity_or_shop) == 260
    amenity = frame["amenity"].value_counts()
    shop = frame["shop"].value_counts()
    assert amenity["bank"] == 16
    assert amenity["fuel"] == 1
    assert amenity["post_office"] == 4
    assert amenity["restaurant"] == 32
    assert amenity["fast_food"] == 9
    assert amenity["cafe"] == 15
    assert amenity["atm"] == 21
    assert shop["convenience"] == 9
    assert shop["supermarket"] == 4
    assert frame["office"].notna().sum() > 0


def test_poi_values_and_ids(pois):
    frame = pois[".osm"]
    assert frame["osm_id"].str.match(r"^[nw]\d+$").all()
    assert frame["osm_id"].is_unique
    assert frame["name"].map(type).eq(str).all()
    assert (frame["name"] == "").any() and (frame["name"] != "").any()
    assert all(v is None or isinstance(v, str) for v in frame["shop"])
    assert set(frame["osm_id"].str[0]) == {"n", "w"}  # closed ways become centroids
    assert frame.geometry.within(box(*README_BOUNDS).buffer(0.01)).all()


def test_building_count_and_columns(buildings):
    frame = buildings[".osm"]
    assert len(frame) == 521
    assert list(frame.columns) == ["osm_id", "building", "levels", "geometry"]
    assert frame.crs.to_epsg() == 4326
    assert frame.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert frame.geometry.is_valid.all()
    assert (frame["osm_id"].str[0] == "r").sum() == 1  # one multipolygon relation
    assert frame["levels"].dtype.kind == "f"
    assert frame["levels"].notna().any() and frame["levels"].isna().any()
    assert all(math.isnan(v) or v >= 1 for v in frame["levels"])


def test_xml_and_pbf_give_identical_results(pois, buildings):
    assert pois[".osm"]["osm_id"].tolist() == pois[".pbf"]["osm_id"].tolist()
    assert pois[".osm"].drop(columns="geometry").equals(pois[".pbf"].drop(columns="geometry"))
    assert pois[".osm"].geometry.geom_equals_exact(pois[".pbf"].geometry, tolerance=1e-7).all()
    assert buildings[".osm"]["osm_id"].tolist() == buildings[".pbf"]["osm_id"].tolist()
    assert buildings[".osm"]["building"].tolist() == buildings[".pbf"]["building"].tolist()


def test_named_streets(extracts):
    streets = named_streets_from_extract(extracts[0])
    assert len(streets) > 0
    assert (streets.geom_type == "LineString").all()
    assert "成府路" in set(streets["name"])


def test_missing_file_names_path_and_format(tmp_path):
    missing = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(InvalidInput, match=r"nowhere\.osm\.pbf.*\.osm \(XML\) or \.osm\.pbf"):
        pois_from_extract(missing)


@pytest.mark.parametrize("name", ["broken.osm", "broken.osm.pbf", "broken.txt"])
def test_unreadable_file(tmp_path, name):
    bad = tmp_path / name
    bad.write_text("this is not OpenStreetMap data", encoding="utf-8")
    for fn in (extract_bounds, pois_from_extract, buildings_from_extract):
        with pytest.raises(InvalidInput, match=name.replace(".", r"\.")):
            fn(bad)
