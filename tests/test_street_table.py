"""The street table (yizhan.coverage.street_table) answers the rider's nearest search along the streets exactly as
the exact search does: the demo sample area of the real Wudaokou extract, real PostGIS, random points."""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import pytest
from api_data import HEADER
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import Point

from yizhan.coverage.network import snap_points
from yizhan.coverage.routing import exact_along_streets, nearest_along_streets
from yizhan.coverage.street_table import TABLE_K, build_street_table, keeper_for, nearest_in_table
from yizhan.coverage.streets import load_area_graph
from yizhan.errors import InvalidInput
from yizhan.geo.coords import GEOD
from yizhan.stations.registry import StationFilter, list_stations
from yizhan.stations.service import import_stations


def _ready(engine, area, settings, profile="walk"):  # type: ignore[no-untyped-def]
    """The keeper of the test's database with the table of ``area``'s ``profile`` graph built."""
    keeper = keeper_for(engine)
    assert keeper is not None
    builds = keeper.builds
    w, s, e, n = area.boundary.bounds
    nearest_along_streets(engine, (w + e) / 2, (s + n) / 2, k=3, flt=StationFilter(), profile=profile,
                          settings=settings)  # asks for the table: built in the background
    assert keeper.wait_built(builds, 60), keeper.last_error
    return keeper


def _same(engine, settings, lon, lat, k, flt, profile="walk"):  # type: ignore[no-untyped-def]
    """Both ways' answers at (lon, lat), checked equal; the table's answer (None off the streets)."""
    try:
        exact = exact_along_streets(engine, lon, lat, k=k, flt=flt, profile=profile, settings=settings)
    except InvalidInput:
        with pytest.raises(InvalidInput):
            nearest_along_streets(engine, lon, lat, k=k, flt=flt, profile=profile, settings=settings)
        return None
    got = nearest_along_streets(engine, lon, lat, k=k, flt=flt, profile=profile, settings=settings)
    assert [s["id"] for s in got] == [s["id"] for s in exact], (lon, lat, k, flt)
    for a, b in zip(got, exact, strict=True):
        assert a["network_distance_m"] == pytest.approx(b["network_distance_m"], abs=1e-9)
        assert a["distance_m"] == pytest.approx(b["distance_m"], abs=0.011)
        assert list(a) == list(b)  # the same keys in the same order
        assert {key: a[key] for key in a if key not in ("distance_m", "route")} == \
            {key: b[key] for key in b if key not in ("distance_m", "route")}
        route = np.array(a["route"])
        assert GEOD.inv(lon, lat, *route[0])[2] < 0.05  # from the rider
        assert GEOD.inv(a["lon"], a["lat"], *route[-1])[2] < 0.05  # to the station
        length = GEOD.line_length(route[:, 0], route[:, 1])
        if profile == "walk":
            assert length == pytest.approx(a["network_distance_m"], rel=0.01, abs=2)
        else:  # riding against a one-way street costs more than its length
            assert length <= a["network_distance_m"] * 1.01 + 2
    return got


def test_table_answers_as_the_exact_search(engine, sample_area, settings):
    keeper = _ready(engine, sample_area, settings)
    rng = np.random.default_rng(14)
    w, s, e, n = sample_area.boundary.bounds
    filters = [StationFilter(), StationFilter(amenities=["charging"]), StationFilter(kind="small"),
               StationFilter(open_at=datetime(2026, 11, 25, 21, 30)), StationFilter(all_day=True),
               StationFilter(amenities=["toilet"], open_at=datetime(2026, 11, 28, 8, 0))]
    before = dict(keeper.counts)
    answered = 0
    for i, (lon, lat) in enumerate(zip(rng.uniform(w, e, 240), rng.uniform(s, n, 240), strict=True)):
        flt = filters[i % len(filters)]
        k = (1, 3, 5, 8)[i % 4]
        got = _same(engine, settings, float(lon), float(lat), k, flt)
        answered += got is not None
    from_table = keeper.counts["table"] - before["table"]
    assert answered > 200
    assert from_table > answered // 2, keeper.counts  # most answers came from the table, not the fallback


def test_bike_table_with_one_way_streets(engine, sample_area, settings):
    keeper = _ready(engine, sample_area, settings, profile="bike")
    rng = np.random.default_rng(41)
    w, s, e, n = sample_area.boundary.bounds
    before = keeper.counts["table"]
    for lon, lat in zip(rng.uniform(w, e, 60), rng.uniform(s, n, 60), strict=True):
        _same(engine, settings, float(lon), float(lat), 5, StationFilter(), profile="bike")
    assert keeper.counts["table"] - before > 30


def test_k_beyond_the_table_is_searched_exactly(engine, sample_area, settings):
    keeper = _ready(engine, sample_area, settings)
    w, s, e, n = sample_area.boundary.bounds
    before = dict(keeper.counts)
    got = _same(engine, settings, (w + e) / 2, (s + n) / 2, TABLE_K + 2, StationFilter())
    assert got  # the sample area has fewer stations than that: all of them
    assert keeper.counts["exact"] == before["exact"] + 1 and keeper.counts["table"] == before["table"]


def test_rows_are_each_nodes_nearest_stations(engine, sample_area, settings):
    """Every node's row against one Dijkstra per station (door to door), and the route walked from each slot
    ends at its station with the row's distance."""
    graph = load_area_graph(sample_area, "walk", settings)
    with engine.connect() as conn:
        _, stations = list_stations(conn, area=sample_area.name, status="active", limit=1000)
    to_m = Transformer.from_crs(4326, graph.crs_epsg, always_xy=True)
    x, y = to_m.transform(np.array([s["lon"] for s in stations]), np.array([s["lat"] for s in stations]))
    table = build_street_table(graph, x, y, k=4, bound_m=1500, max_snap_m=settings.max_snap_m, batch=3)
    snap = snap_points(graph, np.column_stack([x, y]), max_snap_m=settings.max_snap_m)
    full = np.full((len(stations), graph.n_nodes), np.inf)
    a = graph.adjacency_t
    for j in np.flatnonzero(~snap.too_far):
        e, t = snap.edge[j], snap.offset_m[j]
        ends = dijkstra(a, directed=True, indices=[int(graph.u[e]), int(graph.v[e])])
        back = (graph.length[e] - t) * graph.reverse_factor[e]
        full[j] = np.minimum(ends[0] + t, ends[1] + back) + snap.offstreet_m[j]
    full[full > 1500] = np.inf
    assert (table.station >= 0).sum() > graph.n_nodes  # the rows are not empty
    for node in range(graph.n_nodes):
        expect = np.sort(full[:, node])[:4]
        row = table.dist[node]
        assert np.allclose(row[np.isfinite(row)], expect[np.isfinite(expect)], atol=1e-6), node
        for slot in np.flatnonzero(table.station[node] >= 0):
            assert full[table.station[node, slot], node] == pytest.approx(row[slot], abs=1e-6)


def test_registry_change_seen_once_refreshed(engine, sample_area, settings):
    keeper = _ready(engine, sample_area, settings)
    graph = load_area_graph(sample_area, "walk", settings)
    # a point on a street near the middle: the new station opens right there
    to_ll = Transformer.from_crs(graph.crs_epsg, 4326, always_xy=True)
    node = int(np.argmin(np.hypot(graph.x - graph.x.mean(), graph.y - graph.y.mean())))
    lon, lat = (float(c) for c in to_ll.transform(graph.x[node] + 3.0, graph.y[node] + 3.0))
    first = _same(engine, settings, lon, lat, 3, StationFilter())
    assert first is not None and "NEW-1" not in [st["id"] for st in first]
    before, builds = dict(keeper.counts), keeper.builds
    keeper.paused = True  # the rebuild waits, so that the exact search is seen answering meanwhile
    row = f'NEW-1,新驿站,small,{lon:.7f},{lat:.7f},shop,,,charging,"24/7",4,3,active'
    import_stations(engine, "new.csv", area=sample_area.name, data=f"{HEADER}\n{row}\n".encode(),
                    filename="new.csv")
    deadline = time.monotonic() + 10
    while keeper.table(sample_area, "walk", graph, settings.max_snap_m) is not None:  # until the change is heard
        assert time.monotonic() < deadline
        time.sleep(0.005)
    stale = _same(engine, settings, lon, lat, 3, StationFilter())  # the exact search answers meanwhile
    assert stale is not None and stale[0]["id"] == "NEW-1"
    assert keeper.counts["table"] == before["table"] and keeper.counts["exact"] == before["exact"] + 1
    keeper.resume()
    assert keeper.wait_built(builds, 60), keeper.last_error
    fresh = _same(engine, settings, lon, lat, 3, StationFilter())
    assert fresh is not None and fresh[0]["id"] == "NEW-1"
    assert keeper.counts["table"] == before["table"] + 1
    assert Point(fresh[0]["route"][-1]).distance(Point(lon, lat)) < 1e-6


def test_short_rows_certify_or_decline(engine, sample_area, settings):
    """A table of 2 stations per node within 1 km: the answers it gives are the exact search's; it declines
    the others (k beyond what the two end nodes' rows can certify)."""
    graph = load_area_graph(sample_area, "walk", settings)
    with engine.connect() as conn:
        _, stations = list_stations(conn, area=sample_area.name, status="active", limit=1000)
    stations.sort(key=lambda st: st["id"])
    ids = [st["id"] for st in stations]
    to_m = Transformer.from_crs(4326, graph.crs_epsg, always_xy=True)
    x, y = to_m.transform(np.array([s["lon"] for s in stations]), np.array([s["lat"] for s in stations]))
    table = build_street_table(graph, x, y, k=2, bound_m=1000, max_snap_m=settings.max_snap_m)
    rng = np.random.default_rng(3)
    w, s, e, n = sample_area.boundary.bounds
    outcomes = {"answered": 0, "declined": 0}
    for lon, lat in zip(rng.uniform(w, e, 150), rng.uniform(s, n, 150), strict=True):
        origin = snap_points(graph, np.array([to_m.transform(lon, lat)]), max_snap_m=settings.max_snap_m)
        if origin.too_far[0]:
            continue
        for k in (1, 2):
            got = nearest_in_table(table, origin, k, ids, lambda j: True)
            if got is None:
                outcomes["declined"] += 1
                continue
            outcomes["answered"] += 1
            exact = exact_along_streets(engine, float(lon), float(lat), k=k, flt=StationFilter(), settings=settings)
            assert [ids[f.station] for f in got] == [st["id"] for st in exact]
            assert [round(f.distance_m, 1) for f in got] == [st["network_distance_m"] for st in exact]
    assert outcomes["answered"] > 50 and outcomes["declined"] > 10, outcomes


def test_over_http_the_table_answers(engine, db_url, sample_area, settings, live_api):
    client = live_api(settings.model_copy(update={"database_url": db_url}))
    w, s, e, n = sample_area.boundary.bounds
    params = {"lon": (w + e) / 2, "lat": (s + n) / 2, "k": 3, "by": "network", "max_distance_m": 50_000}
    assert client.get("/stations/nearest", params=params).status_code == 200  # asks for the table
    keeper = keeper_for(engine)  # the server's, too: one per database
    assert keeper is not None and keeper.wait_built(0, 60), keeper.last_error
    before = keeper.counts["table"]
    rng = np.random.default_rng(8)
    sources = []
    for lon, lat in zip(rng.uniform(w, e, 10), rng.uniform(s, n, 10), strict=True):
        r = client.get("/stations/nearest", params={**params, "lon": lon, "lat": lat})
        sources.append(r.headers.get("x-nearest-source"))
        try:
            exact = exact_along_streets(engine, float(lon), float(lat), k=3, flt=StationFilter(), settings=settings)
        except InvalidInput:
            assert r.status_code == 422
            continue
        assert r.status_code == 200, r.text
        props = [f["properties"] for f in r.json()["features"]]
        assert [p["id"] for p in props] == [st["id"] for st in exact]
        assert [p["network_distance_m"] for p in props] == [st["network_distance_m"] for st in exact]
    assert keeper.counts["table"] > before
    assert "table" in sources  # answered from memory on the server's event loop, no worker thread
