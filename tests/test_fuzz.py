"""Property-based fuzzing of the HTTP API against its own OpenAPI schema: no input may cause a 5xx.

Schemathesis generates requests (valid and invalid: its examples, coverage and fuzzing phases) for every
operation of the app's OpenAPI document, the multipart ``POST /stations/import`` included, and sends them over
real HTTP (uvicorn, ``live_server``) to the app on a PostGIS database seeded with the Wudaokou area, the sample
stations, demand and one straight-line coverage run; the staff key goes with every request. Only
``not_a_server_error`` is checked: the other checks would flag FastAPI's undeclared but correct 401/404/503
answers rather than bugs. Generation is deterministic (fixed seed, derandomized) and bounded per operation.

Random values rarely land where the deep code runs (a point inside the area, along its streets; a file with
well-formed rows), so targeted Hypothesis tests follow: the rider's nearest search around Wudaokou, by straight
line and along the streets, any bytes as the staff key, and the registry import fed structured CSV text, JSON
documents and random bytes. Inputs that once caused a 500 are kept as explicit ``@example``s.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import WUDAOKOU_BOUNDS
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st
from live_server import live_server
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from shapely.geometry import box

from yizhan.api import create_app
from yizhan.areas import AreaInfo, ensure_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.streets import build_area_graph
from yizhan.data.demand import import_demand
from yizhan.db.engine import make_engine
from yizhan.errors import InvalidInput
from yizhan.settings import Settings
from yizhan.stations import vocab
from yizhan.stations.importer import stations_from_file
from yizhan.stations.service import import_stations

pytestmark = pytest.mark.fuzz

KEY = "k"
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
MAX_EXAMPLES = 30  # per operation, fuzzing phase; the coverage phase adds its own fixed set of boundary cases
CONFIG = {
    "seed": 20250607,
    "headers": {"X-API-Key": KEY},
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none", "mode": "all"},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False}},
    "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
}


def _settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(database_url=database_url, staff_key=KEY, data_dir=data_dir, rate_limit_per_minute=0)


# Collection needs the schema before any database exists. Creating the app connects to nothing, and the
# ``server`` fixture checks that the live server serves this very document. (Schemathesis's lazy
# ``schemathesis.pytest.from_fixture`` would load it from the server, but fails under pytest 9: it sets
# ``request.node._nodeid``, which pytest 9 no longer has.)
SCHEMA_DOC = create_app(_settings("postgresql://unused/unused", Path("unused"))).openapi()
schema = schemathesis.openapi.from_dict(SCHEMA_DOC, config=SchemathesisConfig.from_dict(CONFIG))


@dataclass
class Server:
    base_url: str
    settings: Settings
    area: AreaInfo


@pytest.fixture(scope="module")
def fuzz_db(fresh_database: Callable[[], contextlib.AbstractContextManager[str]]) -> Iterator[str]:
    """A fresh database for the module: every fuzzed operation talks to the same seeded server."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(fuzz_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app over HTTP: Wudaokou with the sample stations, demand around them and one straight-line run."""
    engine = make_engine(fuzz_db)
    try:
        with engine.begin() as conn:
            area = ensure_area(conn, "wudaokou", boundary=box(*WUDAOKOU_BOUNDS), source="test")
        import_stations(engine, SAMPLE_CSV, area=area.name)
        lines = ["lon,lat,weight"]
        for i in range(6):
            for j in range(6):
                lines.append(f"{116.3100 + 0.0035 * i:.6f},{39.9930 + 0.0030 * j:.6f},{1 + (i * j) % 4}")
        demand = tmp_path_factory.mktemp("fuzz") / "demand.csv"
        demand.write_text("\n".join(lines) + "\n")
        import_demand(engine, demand, area=area.name, cell_size_m=200)
        assert run_coverage(engine, area=area.name, radius_m=500)["gaps"] >= 1
    finally:
        engine.dispose()
    cfg = _settings(fuzz_db, tmp_path_factory.mktemp("data"))
    app = create_app(cfg)
    try:
        with live_server(app) as base:
            served = httpx.get(f"{base}/openapi.json", headers={"X-API-Key": KEY}, timeout=30).json()
            assert served == SCHEMA_DOC, "the served schema differs from the one the tests were generated from"
            yield Server(base, cfg, area)
    finally:
        app.state.db.dispose()


@schema.parametrize()
def test_no_server_error(case: schemathesis.Case, server: Server) -> None:
    case.call_and_validate(base_url=server.base_url, checks=[not_a_server_error], timeout=30)


# --- the rider's nearest search where the stations and streets are -----------------------------------------------


@pytest.fixture(scope="module")
def streets(server: Server, extracts: tuple[Path, Path]) -> Server:
    """The server's area with walk and bike street graphs (the app loads them on first use)."""
    for profile in ("walk", "bike"):
        build_area_graph(server.area, extracts[1], profile=profile, settings=server.settings)
    return server


WEST, SOUTH, EAST, NORTH = WUDAOKOU_BOUNDS
OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60 - 59, 23 * 60 + 59))
OPEN_AT = st.one_of(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                                 timezones=st.none() | OFFSETS).map(datetime.isoformat),
                    st.sampled_from(["2025-06-07T22:00:00", "2025-06-07T22:00:00+14:00", "0001-01-01T00:00:00",
                                     "9999-12-31T23:59:59-12:00", "2200-12-31T23:59:59-12:00", "2025-02-29T12:00:00",
                                     "now", ""]))
# mostly valid filters, so that the search runs; schemathesis above covers invalid values of every parameter
NEAREST = st.fixed_dictionaries({
    "lon": st.one_of(st.floats(WEST - 0.01, EAST + 0.01), st.sampled_from([-180.0, 180.0, 0.0, WEST, EAST])),
    "lat": st.one_of(st.floats(SOUTH - 0.01, NORTH + 0.01), st.sampled_from([-90.0, 90.0, 0.0, SOUTH, NORTH])),
    "k": st.integers(1, 100),
    "by": st.sampled_from(["straight", "network", "network"]),
}, optional={
    "amenity": st.lists(st.sampled_from(list(vocab.AMENITIES)), max_size=2),
    "open_at": OPEN_AT,
    "kind": st.sampled_from(list(vocab.KINDS)),
    "area": st.sampled_from(["wudaokou", "wudaokou", "nowhere"]),
    "coord": st.sampled_from(["wgs84", "gcj02", "bd09"]),
    "profile": st.sampled_from(["walk", "bike"]),
})


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(params=NEAREST)
def test_nearest_around_the_area(streets: Server, params: dict) -> None:
    """Points in and around Wudaokou, by straight line and along the streets: an answer or a 4xx, never a 5xx;
    an answer holds at most k active stations, nearest first."""
    query = {k: v for k, v in params.items() if v is not None}
    r = httpx.get(f"{streets.base_url}/stations/nearest", params=query, timeout=30)
    assert r.status_code < 500, (query, r.text)
    if r.status_code != 200:
        assert r.status_code in (404, 422), (query, r.status_code, r.text)
        assert r.json()["detail"]
        return
    features = r.json()["features"]
    assert len(features) <= params["k"]
    assert all(f["properties"]["status"] == "active" for f in features)
    key = "network_distance_m" if params["by"] == "network" else "distance_m"
    distances = [f["properties"][key] for f in features]
    assert distances == sorted(distances)


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(key=st.binary(min_size=1, max_size=200).filter(lambda b: b.strip() == b and b"\n" not in b
                                                       and b"\r" not in b and b"\x00" not in b))
def test_staff_key_values(server: Server, key: bytes) -> None:
    """Whatever bytes arrive as X-API-Key, the answer is 401 (or 200 for the key), never a 5xx. A value with
    control characters is not a valid HTTP field value (RFC 9110, 5.5): a strict parser (httptools) may refuse
    the request with 400 before the app sees it."""
    try:
        r = httpx.get(f"{server.base_url}/gaps.geojson", headers={"X-API-Key": key}, timeout=30)
    except httpx.LocalProtocolError:
        reject()  # the client itself refuses to send such a header: nothing reaches the server
    if key == KEY.encode():
        assert r.status_code == 200, r.text
    elif all(b == 9 or 32 <= b <= 126 or b >= 128 for b in key):
        assert r.status_code == 401, r.text
    else:
        assert r.status_code in (400, 401), r.text


# --- the registry import: structured files reach the row checks that random bytes rarely do --------------------

CELL = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e309", "-0", "116.32", "40.0", "40.0,116.32", "abc", "\x00",
                     "大型", "small", "closed", "24/7", "Mo-Fr 08:00-20:00", "Mo-Fr 25:00-26:00", "toilet;wifi",
                     "1.5", "10001", "3", "0x10", "１２", "NaN", '"']),
    st.text(max_size=12),
)
COLUMN = st.sampled_from(["id", "name", "kind", "lon", "lat", "seats", "stars", "status", "opening_hours", "amenities",
                          "host", "经度", "纬度", "编号", "x", "ID", ""])
# any Unicode code point, lone surrogates included: JSON's \u escapes can carry them, UTF-8 text cannot
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)
JSON_VALUE = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | ANY_TEXT | CELL,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
                          max_leaves=8)
FEATURE = st.fixed_dictionaries({
    "type": st.just("Feature"),
    "geometry": st.one_of(st.none(), st.fixed_dictionaries({
        "type": st.sampled_from(["Point", "LineString", ""]),
        "coordinates": st.one_of(st.tuples(st.floats(116.30, 116.34), st.floats(39.98, 40.02)).map(list),
                                 JSON_VALUE)})),
    "properties": st.one_of(st.dictionaries(st.one_of(COLUMN, ANY_TEXT), JSON_VALUE, max_size=8),
                            st.fixed_dictionaries({"id": ANY_TEXT, "name": ANY_TEXT, "kind": st.just("small")},
                                                  optional={"amenities": JSON_VALUE, "opening_hours": JSON_VALUE}),
                            JSON_VALUE),
}, optional={"id": JSON_VALUE})
GEOJSON = st.lists(FEATURE, max_size=4).map(lambda fs: json.dumps({"type": "FeatureCollection", "features": fs}))


def _upload(server: Server, name: str, data: bytes) -> httpx.Response:
    r = httpx.post(f"{server.base_url}/stations/import", files={"file": (name, data, "application/octet-stream")},
                   data={"area": server.area.name}, headers={"X-API-Key": KEY}, timeout=60)
    assert r.status_code in (200, 422), (r.status_code, r.text)
    assert r.status_code == 200 or r.json()["detail"]
    return r


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(header=st.lists(COLUMN, min_size=1, max_size=14),
       rows=st.lists(st.lists(CELL, min_size=0, max_size=14), min_size=0, max_size=5),
       name=st.sampled_from(["s.csv", "s.txt", "s.CSV"]))
@example(header=["id", "name", "kind", "lon", "lat", "经度"], rows=[["A", "a", "small", "116.32", "40.0", "116.32"]],
         name="s.csv")  # two columns for lon: was a 500 (TypeError in pandas)
def test_import_csv_text(server: Server, header: list[str], rows: list[list[str]], name: str) -> None:
    """Any CSV text is imported (200) or rejected with a message (422), never a 5xx."""
    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"'

    text = ",".join(header) + "\n" + "\n".join(",".join(quote(c) for c in r) for r in rows)
    _upload(server, name, text.encode("utf-8"))


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(doc=GEOJSON)
@example(doc="[" * 100_000 + "]" * 100_000)  # was a 500: RecursionError in json.loads
@example(doc='{"type": "FeatureCollection", "features": [], "n": 1' + "0" * 5000 + "}")  # was a 500: ValueError
@example(doc='{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", '
             '"coordinates": [116.32, 40.0]}, "properties": {"id": "G\\ud800", "name": "g", "kind": "small"}}]}')
def test_import_geojson_documents(server: Server, doc: str) -> None:
    """Any JSON document (lone surrogates, deep nesting, huge numbers) is imported or rejected with a 422."""
    _upload(server, "s.geojson", doc.encode("utf-8"))


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".geojson", ".xlsx", ".json"]))
def test_importer_random_bytes(data: bytes, suffix: str) -> None:
    """Below the API: whatever the bytes, records or ``InvalidInput`` (a 422 at the API)."""
    with contextlib.suppress(InvalidInput):
        stations_from_file("upload" + suffix, data=data, filename="upload" + suffix)
