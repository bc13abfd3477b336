"""The in-process station index answers exactly what the database answers, and follows the registry."""

from __future__ import annotations

import time

import httpx
import numpy as np
import orjson
import psycopg
import pytest
from live_server import live_server
from sqlalchemy import Engine, text

from yizhan.api import create_app
from yizhan.areas import ensure_area
from yizhan.db.engine import libpq_url
from yizhan.errors import InvalidInput
from yizhan.settings import Settings
from yizhan.stations.importer import StationRecord
from yizhan.stations.memindex import APPLICATION_NAME, R_MIN, IndexKeeper, StationIndex, chord_bound, unit_vectors
from yizhan.stations.registry import nearest_stations, upsert_stations

AMENITY_SETS = [["drinking_water"], ["drinking_water", "charging"], ["charging", "toilet"], [], ["wifi"]]
KINDS = ["large", "small", "mobile"]
CITIES = [(116.4, 39.9), (121.5, 31.2), (113.3, 23.1)]
WAIT_S = 60.0  # upper bound for background work in these tests (not a performance figure)


@pytest.fixture
def registry(engine: Engine) -> list[StationRecord]:
    """4,000 stations in three areas around three cities plus a thin spread over eastern China: every kind,
    amenity sets, a rare amenity (love_fridge on 6 stations), closed ones and twins (same point, two ids)."""
    rng = np.random.default_rng(23)
    n = 4000
    city = rng.integers(0, 3, n)
    lon = np.array([CITIES[c][0] for c in city]) + rng.normal(0, 0.08, n)
    lat = np.array([CITIES[c][1] for c in city]) + rng.normal(0, 0.06, n)
    spread = rng.random(n) < 0.15
    lon[spread], lat[spread] = rng.uniform(100, 125, spread.sum()), rng.uniform(20, 45, spread.sum())
    lon[1::50], lat[1::50] = lon[0::50], lat[0::50]
    recs = []
    for i in range(n):
        amen = AMENITY_SETS[i % 5] + (["love_fridge"] if i % 667 == 5 else [])
        recs.append(StationRecord(f"S{(i * 7919) % n:05d}", f"站{i}", KINDS[i % 3], float(lon[i]), float(lat[i]),
                                  amenities=amen, opening_hours="24/7" if i % 2 else None,
                                  seats=i % 7 or None, status="closed" if i % 11 == 0 else "active"))
    with engine.begin() as conn:
        for a, name in enumerate(["north", "east", "south"]):
            area = ensure_area(conn, name, crs_epsg=32650)
            upsert_stations(conn, area.id, area.name, [r for j, r in enumerate(recs) if city[j] == a])
    return recs


def _load(db_url: str) -> StationIndex:
    with psycopg.connect(libpq_url(db_url)) as conn:
        return StationIndex.load(conn)


def _same(got: list[dict], want: list[dict], case: object) -> None:
    assert [s["id"] for s in got] == [s["id"] for s in want], case
    np.testing.assert_allclose([s["distance_m"] for s in got], [s["distance_m"] for s in want], atol=0.01,
                               err_msg=str(case))
    assert [{**s, "distance_m": 0} for s in got] == [{**s, "distance_m": 0} for s in want], case


def test_the_radius_bound_holds() -> None:
    """Geodesic metres never exceed R_MIN times the unit-sphere angle, so ``chord_bound`` never cuts a station."""
    from pyproj import Geod

    rng = np.random.default_rng(1)
    lon1, lat1 = rng.uniform(70, 140, 20000), rng.uniform(0, 60, 20000)
    lon2, lat2 = lon1 + rng.normal(0, 0.5, 20000), np.clip(lat1 + rng.normal(0, 0.5, 20000), -89, 89)
    _, _, s = Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)
    chord = np.linalg.norm(unit_vectors(lon1, lat1) - unit_vectors(lon2, lat2), axis=1)
    angle = 2 * np.arcsin(chord / 2)
    assert np.all(s >= R_MIN * angle * (1 - 1e-12))
    assert all(c <= chord_bound(float(d)) for c, d in zip(chord, s, strict=True))
    assert np.max(s / (R_MIN * angle)) < 1.01  # and the bound is tight: few stations are re-checked


def test_index_equals_database(engine: Engine, db_url: str, registry: list[StationRecord]) -> None:
    """For random points near and far and k in (1, 5, 20), with amenity, kind and area filters (also a rare
    amenity and an unknown area), the index gives the database path's stations in its order."""
    index = _load(db_url)
    assert len(index) == sum(r.status == "active" for r in registry)
    rng = np.random.default_rng(29)
    filters: list[dict] = [{}, {"amenities": ["charging"]}, {"amenities": ["drinking_water", "charging"]},
                           {"kind": "mobile"}, {"area": "east"}, {"amenities": ["charging"], "kind": "large",
                                                                  "area": "north"},
                           {"amenities": ["love_fridge"]}, {"area": "nowhere"}, {"amenities": ["wifi", "toilet"]}]
    cases = 0
    ties = 0
    with engine.connect() as conn:
        for i in range(150):
            c = CITIES[i % 3]
            lon, lat = ((rng.normal(c[0], 0.1), rng.normal(c[1], 0.08)) if i % 4
                        else (rng.uniform(95, 130), rng.uniform(18, 48)))
            for k in (1, 5, 20):
                flt = filters[(i + k) % len(filters)]
                got = index.nearest(float(lon), float(lat), k=k, **flt)
                want = nearest_stations(conn, float(lon), float(lat), k=k, **flt)
                assert got is not None
                _same(got, want, (lon, lat, k, flt))
                cases += 1
                ties += len({s["distance_m"] for s in got}) != len(got)
        # a station's own point: distance 0 and its twin
        twin = next(r for r in registry[0::50] if r.status == "active")
        got = index.nearest(twin.lon, twin.lat, k=3)
        assert got is not None and got[0]["distance_m"] == 0
        _same(got, nearest_stations(conn, twin.lon, twin.lat, k=3), "twin")
        # filtered searches that give up growing the candidates and scan every station passing the filter
        index.grow_cap = 64
        for i in range(60):
            lon, lat, k = float(rng.uniform(100, 125)), float(rng.uniform(20, 45)), (1, 5, 20)[i % 3]
            flt = [{"amenities": ["love_fridge"]}, {"amenities": ["wifi"], "area": "south"}, {"kind": "large"}][i % 3]
            got = index.nearest(lon, lat, k=k, **flt)
            assert got is not None
            _same(got, nearest_stations(conn, lon, lat, k=k, **flt), (lon, lat, k, flt))
    assert ties  # equal distances were ordered by id
    assert cases == 450


def test_index_validation_and_edge_cases(db_url: str, engine: Engine, registry: list[StationRecord]) -> None:
    index = _load(db_url)
    with pytest.raises(InvalidInput, match="teleporter"):
        index.nearest(116.4, 39.9, amenities=["teleporter"])
    with pytest.raises(InvalidInput, match="kind"):
        index.nearest(116.4, 39.9, kind="huge")
    assert index.nearest(116.4, 39.9, area="no\x00where") is None  # the database path answers (422)
    active = sum(r.status == "active" for r in registry)
    with engine.connect() as conn:
        everything = index.nearest(116.4, 39.9, k=active + 5)
        assert everything is not None and len(everything) == active
        assert [s["id"] for s in everything] == [s["id"] for s in nearest_stations(conn, 116.4, 39.9, k=active + 5)]
    empty = StationIndex.from_rows([])
    assert empty.nearest(116.4, 39.9, k=3) == []


def _write(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def test_keeper_follows_imports_and_outages(engine: Engine, db_url: str, registry: list[StationRecord]) -> None:
    """A new, a moved and a closed station change the answers after one reload; a lost connection takes the
    index out of service until it has reconnected and reloaded."""
    keeper = IndexKeeper(db_url, ttl_s=30)
    keeper.start()
    try:
        assert keeper.wait_for_reload(0, WAIT_S), keeper.last_error
        idx = keeper.current()
        assert idx is not None
        point = (116.41, 39.91)
        before = idx.nearest(*point, k=5)
        assert before is not None and len(before) == 5
        loads = keeper.reloads
        with engine.begin() as conn:  # one import: a new station on the point, the nearest closed, one moved
            area = ensure_area(conn, "north", crs_epsg=32650)
            upsert_stations(conn, area.id, area.name, [StationRecord("NEW-1", "新站", "small", *point)])
            conn.execute(text("UPDATE stations SET status = 'closed' WHERE external_id = :id"), {"id": before[0]["id"]})
            conn.execute(text("UPDATE stations SET geom = ST_SetSRID(ST_MakePoint(116.4101, 39.9101), 4326) "
                              "WHERE external_id = :id"), {"id": before[4]["id"]})
        assert keeper.wait_for_reload(loads, WAIT_S)
        idx = keeper.current()
        assert idx is not None
        after = idx.nearest(*point, k=5)
        with engine.connect() as conn:
            want = nearest_stations(conn, *point, k=5)
        assert after is not None
        _same(after, want, "after the import")
        assert after[0]["id"] == "NEW-1" and after[1]["id"] == before[4]["id"]
        assert before[0]["id"] not in {s["id"] for s in after}

        loads = keeper.reloads
        with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = %s", [APPLICATION_NAME])
        deadline = time.monotonic() + WAIT_S
        while keeper.reloads == loads and keeper.current() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert keeper.wait_for_reload(loads, WAIT_S), keeper.last_error  # reconnected and loaded again
        assert keeper.last_error and keeper.current() is not None
    finally:
        keeper.stop()
    assert keeper.current() is None


def test_route_answers_from_the_index(db_url: str, engine: Engine, registry: list[StationRecord], tmp_path) -> None:
    """Over HTTP the index answers once loaded (``X-Nearest-Source: index``), the same bytes as the database
    path; with ``YIZHAN_NEAREST_INDEX_TTL_S=0`` the database answers."""
    params = {"lon": 121.49, "lat": 31.21, "k": 7, "amenity": "charging"}
    bodies = {}
    for ttl in (0.0, 2.0):
        app = create_app(Settings(database_url=db_url, data_dir=tmp_path / "data", nearest_index_ttl_s=ttl))
        try:
            with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
                r = client.get("/stations/nearest", params=params)
                assert r.status_code == 200, r.text
                assert r.headers["x-nearest-source"] == "database"
                keeper = app.state.db.station_index
                if ttl:
                    assert keeper is not None and keeper.wait_for_reload(0, WAIT_S), keeper and keeper.last_error
                    r = client.get("/stations/nearest", params=params)
                    assert r.headers["x-nearest-source"] == "index"
                    assert client.get("/stations/nearest", params={**params, "area": "no\x00where"}).status_code == 422
                    assert client.get("/stations/nearest", params={**params, "amenity": "x"}).status_code == 422
                else:
                    assert keeper is None
                bodies[ttl] = r.content
        finally:
            app.state.db.dispose()
    assert timeless(bodies[0.0]) == timeless(bodies[2.0])


NOW_KEYS = ("open_now", "opens_at", "closes_at", "status_zh", "status_en")
"""A station's state at the request time: two requests a minute apart may differ in them."""


def timeless(body: bytes) -> list[object]:
    """A nearest answer's keys in order and its values, without the request time and the states at it."""
    answer = orjson.loads(body)
    answer["query"].pop("at")
    for f in answer["features"]:
        for key in NOW_KEYS:
            f["properties"][key] = None
    return [list(answer), list(answer["query"]), [list(f["properties"]) for f in answer["features"]], answer]
