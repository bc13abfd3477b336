"""Network coverage runs and the rider's nearest-by-network search, on the real Wudaokou extract and PostGIS."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod, Transformer
from shapely.geometry import Point, box

from yizhan.areas import import_units
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.cell_coverage import network_coverage
from yizhan.coverage.network import network_nearest, snap_points
from yizhan.coverage.runs import load_run, units_table
from yizhan.coverage.streets import load_area_graph
from yizhan.errors import InvalidInput
from yizhan.maps.run_map import map_for_run, map_from_run
from yizhan.settings import Settings

GEOD = Geod(ellps="WGS84")


def test_network_run_against_straight_line(engine, sample_area, settings):
    # measured on the cell centres: the per-cell relations below are about a cell's own distances
    straight = run_coverage(engine, radius_m=1000, measure="cells")
    net = run_coverage(engine, radius_m=1000, mode="network", profile="walk", settings=settings, measure="cells")
    assert net["mode"] == "network" and net["profile"] == "walk"
    assert net["covered_share_straight"] == pytest.approx(straight["covered_share"])
    assert 0.3 < net["covered_share"] < straight["covered_share"]
    run = load_run(engine, net["run_id"])
    cells = run.cells
    # cell by cell: the network distance is never shorter than the straight line (1 % for ellipsoid vs UTM)
    both = np.isfinite(cells["distance_m"])
    assert (cells.loc[both, "distance_m"] >= cells.loc[both, "straight_distance_m"] * 0.99).all()
    assert not (cells["covered"] & ~(cells["straight_distance_m"] <= 1000)).any()
    # gaps carry both distances; some gap is within 1 km in a straight line: the streets are the problem
    assert (run.gaps["nearest_distance_m"] > 1000).all()
    assert (run.gaps["straight_distance_m"] < 1000).any()
    # service areas: the stored covered area is smaller than the straight-line discs
    assert 0 < net["covered_area_km2"] < straight["covered_area_km2"]
    html = map_from_run(run).get_root().render()
    assert "沿路网服务范围" in html and "yz-service-area" in html
    assert "yz-streets" not in html
    offline = map_for_run(run, settings=settings).get_root().render()  # the area's streets as a tile-free basemap
    assert "yz-streets" in offline
    assert run.covered_geom is not None and run.covered_geom.geom_type in ("Polygon", "MultiPolygon")
    units = units_table(engine.connect(), net["run_id"])
    assert units["demand"].sum() == pytest.approx(net["demand_total"])
    assert units["demand_covered"].sum() == pytest.approx(net["demand_covered"])
    assert (units["covered_share"] <= units["covered_share_straight"] + 1e-9).all()


def test_points_far_from_streets_are_reported(engine, sample_area, settings):
    strict = settings.model_copy(update={"max_snap_m": 2.0})
    messages: list[str] = []
    summary = run_coverage(engine, radius_m=1000, mode="network", settings=strict, progress=messages.append)
    params = load_run(engine, summary["run_id"]).params
    assert params["stations_off_network"] >= 1 and params["cells_off_network"] >= 1
    assert len(params["stations_off_network_list"]) == params["stations_off_network"]
    assert params["covered_area_drawn"] == "exact union of the reached streets buffered"  # a district: few pieces
    assert any(m.startswith("warning:") and "DEMO-" in m for m in messages)


def test_units_from_file(engine, sample_area, settings, tmp_path):
    w, s, e, n = sample_area.boundary.bounds
    mid = (w + e) / 2
    units = gpd.GeoDataFrame({"街道": ["西街道", "东街道"]}, geometry=[box(w, s, mid, n), box(mid, s, e, n)], crs=4326)
    with engine.begin() as conn:
        assert import_units(conn, sample_area, units) == 2
        with pytest.raises(InvalidInput, match="unique"):
            import_units(conn, sample_area, units.assign(街道=["x", "x"]))
    summary = run_coverage(engine, radius_m=800)
    table = units_table(engine.connect(), summary["run_id"]).set_index("name")
    assert set(table.index) <= {"西街道", "东街道", "（未划入单元）unassigned"}
    assert table["stations"].sum() == summary["stations"]
    assert table["demand"].sum() == pytest.approx(summary["demand_total"])


def test_network_run_needs_a_graph(engine, wudaokou, tmp_path):
    with pytest.raises(InvalidInput, match="no walk street network"):
        network_coverage(wudaokou, "walk", np.zeros((1, 2)), np.zeros((1, 2)), 1000, {}, print,
                         Settings(data_dir=tmp_path / "empty"))


def _brute_force(graph, origin_xy, stations_xy, k):  # type: ignore[no-untyped-def]
    """Door-to-door network distance from the origin to each station separately (one Dijkstra each)."""
    origin = snap_points(graph, np.array([origin_xy]))
    out = []
    for xy in stations_xy:
        res = network_nearest(graph, snap_points(graph, np.array([xy])), origin, radius_m=50_000,
                              include_access=True)
        out.append(res.distance_m[0])
    return np.array(out)


def test_nearest_by_network_over_http(engine, db_url, sample_area, settings, live_api):
    graph = load_area_graph(sample_area, "walk", settings)
    to_m = Transformer.from_crs(4326, graph.crs_epsg, always_xy=True)
    with engine.connect() as conn:
        from yizhan.stations.registry import list_stations

        _, stations = list_stations(conn, status="active", limit=1000)
    st_xy = np.array([to_m.transform(s["lon"], s["lat"]) for s in stations])
    rng = np.random.default_rng(5)
    w, s, e, n = sample_area.boundary.bounds
    client = live_api(settings.model_copy(update={"database_url": db_url}))
    for lon, lat in zip(rng.uniform(w, e, 8), rng.uniform(s, n, 8), strict=True):
        r = client.get("/stations/nearest", params={"lon": lon, "lat": lat, "k": 3, "by": "network",
                                                    "max_distance_m": 50_000})  # exactness, not the limit
        assert r.status_code == 200, r.text
        feats = r.json()["features"]
        brute = _brute_force(graph, to_m.transform(lon, lat), st_xy, 3)
        expected = [stations[i]["id"] for i in np.argsort(brute, kind="stable")[:3] if np.isfinite(brute[i])]
        assert [f["properties"]["id"] for f in feats] == expected
        for f in feats:
            p = f["properties"]
            i = next(j for j, st in enumerate(stations) if st["id"] == p["id"])
            assert p["network_distance_m"] == pytest.approx(brute[i], abs=0.1)
            assert p["network_distance_m"] >= p["distance_m"] * 0.99
            route = np.array(p["route"]["coordinates"])
            length = GEOD.line_length(route[:, 0], route[:, 1])
            assert length == pytest.approx(p["network_distance_m"], rel=0.01, abs=2)
            # the route runs from the rider to the station, via their nearest streets
            start, end = Point(to_m.transform(*route[0])), Point(to_m.transform(*route[-1]))
            assert start.distance(Point(to_m.transform(lon, lat))) < 0.5
            assert end.distance(Point(st_xy[i])) < 0.5
            snapped = snap_points(graph, np.array([to_m.transform(lon, lat), st_xy[i]]))
            assert Point(to_m.transform(*route[1])).distance(Point(snapped.x[0], snapped.y[0])) < 0.5
    bike = client.get("/stations/nearest", params={"lon": (w + e) / 2, "lat": (s + n) / 2, "k": 2,
                                                   "by": "network", "profile": "bike", "coord": "gcj02"})
    assert bike.status_code == 200 and bike.json()["query"]["profile"] == "bike"
    outside = client.get("/stations/nearest", params={"lon": 121.47, "lat": 31.23, "by": "network"})
    assert outside.status_code == 422 and "no study area" in outside.json()["detail"]
