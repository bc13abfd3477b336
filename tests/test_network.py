"""Tests of yizhan.geo.streets_osmnx: walk/bike street graphs of the shared Wudaokou extract."""

from __future__ import annotations

import networkx as nx
import pyproj
import pytest

from yizhan.errors import InvalidInput
from yizhan.geo import streets_osmnx as network
from yizhan.geo.streets_osmnx import cache_path, cached_streets, is_street, streets_from_extract


@pytest.fixture(scope="module")
def walk(extracts) -> nx.MultiDiGraph:
    return streets_from_extract(extracts[0], profile="walk")


def test_walk_graph_is_one_metric_piece(walk):
    assert nx.is_weakly_connected(walk)
    assert 800 <= walk.number_of_nodes() <= 1900
    assert pyproj.CRS(walk.graph["crs"]).to_epsg() == 32650
    assert walk.graph["profile"] == "walk"
    lengths = [d["length"] for _, _, d in walk.edges(data=True)]
    assert min(lengths) > 0 and max(lengths) < 5000  # metres
    _, node = next(iter(walk.nodes(data=True)))
    assert node["x"] > 100_000 and node["y"] > 4_000_000  # UTM metres, not degrees
    assert 116 < node["lon"] < 117 and 39 < node["lat"] < 41


def test_walk_graph_has_only_walkable_streets(walk):
    highways = set()
    for _, _, d in walk.edges(data=True):
        hw = d["highway"]
        highways.update(hw if isinstance(hw, list) else [hw])
    assert "footway" in highways
    assert not highways & {"motorway", "motorway_link", "platform", "construction"}


def test_bike_graph_excludes_steps_and_respects_oneway(extracts, walk):
    bike = streets_from_extract(extracts[0], profile="bike")
    assert nx.is_weakly_connected(bike)
    assert pyproj.CRS(bike.graph["crs"]).to_epsg() == 32650
    highways = set()
    for _, _, d in bike.edges(data=True):
        hw = d["highway"]
        highways.update(hw if isinstance(hw, list) else [hw])
    assert "steps" not in highways and "motorway" not in highways
    assert any(d.get("oneway") is True for _, _, d in bike.edges(data=True))
    assert 0 < bike.number_of_nodes() < walk.number_of_nodes()


def test_pbf_gives_the_same_graph(extracts, walk):
    from_pbf = streets_from_extract(extracts[1], profile="walk")
    assert set(from_pbf.nodes) == set(walk.nodes)
    assert from_pbf.number_of_edges() == walk.number_of_edges()
    assert pyproj.CRS(from_pbf.graph["crs"]).to_epsg() == 32650


def test_cache_hit_does_not_parse_again(extracts, tmp_path, monkeypatch):
    first = cached_streets(extracts[0], profile="walk", cache_dir=tmp_path)
    cached = cache_path(extracts[0], profile="walk", cache_dir=tmp_path)
    assert cached.is_file() and cached.suffix == ".graphml"

    def must_not_parse(*args, **kwargs):
        raise AssertionError("extract parsed again despite a cached graph")

    monkeypatch.setattr(network, "streets_from_extract", must_not_parse)
    second = cached_streets(extracts[0], profile="walk", cache_dir=tmp_path)
    assert second.number_of_nodes() == first.number_of_nodes()
    assert second.number_of_edges() == first.number_of_edges()
    assert pyproj.CRS(second.graph["crs"]).to_epsg() == 32650
    u, v, k = next(iter(first.edges(keys=True)))
    assert second.edges[u, v, k]["length"] == pytest.approx(first.edges[u, v, k]["length"])
    assert cache_path(extracts[0], profile="bike", cache_dir=tmp_path) != cached


@pytest.mark.parametrize(
    ("tags", "walk_ok", "bike_ok"),
    [
        ({"highway": "residential"}, True, True),
        ({"highway": "steps"}, True, False),
        ({"highway": "footway"}, True, False),
        ({"highway": "footway", "bicycle": "yes"}, True, True),
        ({"highway": "motorway"}, False, False),
        ({"highway": "trunk"}, False, True),
        ({"highway": "trunk", "foot": "yes"}, True, True),
        ({"highway": "service", "access": "private"}, False, False),
        ({"highway": "service", "access": "permissive"}, True, True),
        ({"highway": "cycleway", "foot": "no"}, False, True),
        ({"highway": "pedestrian", "area": "yes"}, False, False),
        ({"highway": "construction"}, False, False),
        ({"building": "yes"}, False, False),
    ],
)
def test_street_filter(tags, walk_ok, bike_ok):
    assert is_street(tags, "walk") is walk_ok
    assert is_street(tags, "bike") is bike_ok


def test_bad_profile_and_missing_file(tmp_path, extracts):
    with pytest.raises(InvalidInput, match="walk, bike"):
        streets_from_extract(extracts[0], profile="drive")
    with pytest.raises(InvalidInput, match=r"missing\.osm"):
        streets_from_extract(tmp_path / "missing.osm")
