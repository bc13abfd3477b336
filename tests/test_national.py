"""The synthetic national registry: deterministic, realistic shares, inside China, loads into PostGIS."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sqlalchemy import Engine, text

from yizhan.data.national import CITIES, load_national, national_registry
from yizhan.stations import vocab
from yizhan.stations.hours import check_hours
from yizhan.stations.importer import CHINA
from yizhan.stations.registry import nearest_stations


@pytest.fixture(scope="module")
def full() -> list:
    return national_registry()


def test_deterministic_for_a_seed() -> None:
    a, b = national_registry(5_000, seed=7), national_registry(5_000, seed=7)
    assert a == b
    assert national_registry(5_000, seed=8) != a
    assert national_registry(0) == []


def test_full_size_is_well_formed(full: list) -> None:
    """186,100 well-formed stations (how fast they are generated: benchmarks/national.py)."""
    assert len(full) == 186_100
    ids = [r.external_id for r in full]
    assert ids[0] == "CN-0000001" and ids[-1] == "CN-0186100"
    assert len(set(ids)) == len(ids)
    assert len({r.name for r in full}) == len(full)
    cities = {c[0] for c in CITIES}
    for r in full[:2000]:
        assert r.township in cities
        assert r.name.startswith(f"{r.township}户外劳动者服务站")
        assert r.kind in vocab.KINDS and r.host in vocab.HOSTS and r.status in vocab.STATUSES
        assert set(r.amenities) <= set(vocab.AMENITIES)
        assert r.seats is not None and 2 <= r.seats <= 40
        assert r.stars is None or 1 <= r.stars <= 5
    for hours in {r.opening_hours for r in full} - {None}:
        check_hours(hours)


def test_shares_and_bounds(full: list) -> None:
    n = len(full)
    kinds = Counter(r.kind for r in full)
    assert abs(kinds["large"] / n - 0.20) < 0.01
    assert abs(kinds["small"] / n - 0.75) < 0.01
    assert abs(kinds["mobile"] / n - 0.05) < 0.01
    assert 0.95 < sum(r.status == "active" for r in full) / n < 0.99
    assert 0.2 < sum(r.opening_hours == "24/7" for r in full) / n < 0.3
    lon = np.array([r.lon for r in full])
    lat = np.array([r.lat for r in full])
    w, s, e, nn = CHINA
    assert ((lon > w) & (lon < e) & (lat > s) & (lat < nn)).all()
    # dense city centres: more than half of Shanghai's stations within ~15 km of People's Square
    sh = np.array([r.township == "上海" for r in full])
    d_km = np.hypot((lon[sh] - 121.474) * 111 * np.cos(np.radians(31.23)), (lat[sh] - 31.23) * 111)
    assert np.median(d_km) < 15
    by_city = Counter(r.township for r in full)
    assert by_city.most_common(1)[0][0] == "上海"
    assert by_city["上海"] > 10 * by_city["拉萨"] > 0
    assert len(by_city) == len(CITIES)


def test_loads_into_postgis_and_answers_nearest(engine: Engine) -> None:
    n = 20_000
    summary = load_national(engine, n)
    assert (summary.area, summary.rows, summary.inserted, summary.updated) == ("china", n, n, 0)
    again = load_national(engine, n)
    assert (again.inserted, again.updated) == (0, n)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == n
        crs = conn.execute(text("SELECT crs_epsg FROM areas WHERE name = 'china'")).scalar_one()
        assert crs == 32650
        for lon, lat in [(116.40, 39.90), (121.47, 31.23), (87.6, 43.8), (100.0, 35.0)]:
            found = nearest_stations(conn, lon, lat, k=5)
            assert len(found) == 5
            d = [s["distance_m"] for s in found]
            assert d == sorted(d)
            assert all(s["status"] == "active" and s["area"] == "china" for s in found)
        near_beijing = nearest_stations(conn, 116.40, 39.90, k=5)
        assert near_beijing[-1]["distance_m"] < 5_000  # a dense centre
