"""Places a rider can type (``stations.places`` and ``GET /places``), on real data: the demo sample area's stations
(built from the Wudaokou extract), the seeded Wudaokou stations and the sample townships file."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from api_data import STATIONS
from conftest import WUDAOKOU_BOUNDS, SampleTemplate
from shapely.geometry import Point, box
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area, import_units
from yizhan.errors import InvalidInput
from yizhan.settings import Settings
from yizhan.stations.area_view import area_view
from yizhan.stations.memindex import LOAD_SQL, StationIndex
from yizhan.stations.places import MAX_PLACES, MAX_QUERY_CHARS, StationNames, find_places, names_of, normalised

TOWNSHIPS = Path(__file__).resolve().parents[1] / "data" / "samples" / "townships_sample.geojson"


def demo_stations(sample_template: SampleTemplate) -> pd.DataFrame:
    """The demo sample's stations as its registry file has them (read here, not through the registry)."""
    return pd.read_csv(sample_template.files["stations"], dtype=str).astype({"lon": float, "lat": float})


def test_normalised_ignores_spaces_punctuation_width_and_case() -> None:
    assert normalised("<b>成府路</b> 1号") == "b成府路b1号"
    assert normalised("成府路 1 号") == normalised("成府路1号") == "成府路1号"
    assert normalised("ＡＢＣ－１２３") == normalised("abc 123") == "abc123"
    assert normalised("户外劳动者驿站·中国银行（西区）") == "户外劳动者驿站中国银行西区"


def test_a_street_is_found_through_the_addresses_that_name_it(engine: Engine, sample_area: AreaInfo,
                                                              sample_template: SampleTemplate) -> None:
    demo = demo_stations(sample_template)
    on_street = demo[demo["address"].str.contains("成府路", na=False) & (demo["status"] == "active")]
    assert len(on_street) >= 2, "the demo puts several stations on 成府路"
    with engine.connect() as conn:
        found = find_places(conn, "成府路", limit=MAX_PLACES)
    assert [p.station_id for p in found] == sorted(on_street["id"])  # the same text: by station id
    for p in found:
        row = on_street.set_index("id").loc[p.station_id]
        assert (p.kind, p.name, p.detail, p.area) == ("address", row["address"], row["name"], sample_area.name)
        assert (p.lon, p.lat) == pytest.approx((row["lon"], row["lat"]), abs=1e-7)


def test_a_stations_name_is_found_by_any_part_of_it(engine: Engine, sample_area: AreaInfo,
                                                    sample_template: SampleTemplate) -> None:
    demo = demo_stations(sample_template).set_index("id")
    sid = demo.index[0]
    name = str(demo.loc[sid, "name"])
    part = name.split("·")[-1][-4:]  # e.g. 清华园支行's last four characters
    with engine.connect() as conn:
        whole = find_places(conn, name)
        some = find_places(conn, part)
        spaced = find_places(conn, " ".join(part))  # 清 华 园 支 行: spaces do not matter
    assert whole[0].station_id == sid and whole[0].kind == "station" and whole[0].name == name
    assert sid in [p.station_id for p in some]
    assert [p.station_id for p in spaced] == [p.station_id for p in some]
    assert all(normalised(part) in normalised(p.name) for p in some)


def test_the_registrys_townships_are_places_at_the_middle_of_their_stations(
        engine: Engine, sample_area: AreaInfo, sample_template: SampleTemplate) -> None:
    demo = demo_stations(sample_template)
    township = demo["township"].mode()[0]  # e.g. 东南片区
    mine = demo[(demo["township"] == township) & (demo["status"] == "active")]
    with engine.connect() as conn:
        found = find_places(conn, township)
    first = found[0]
    assert (first.kind, first.name, first.station_id) == ("township", township, None)
    assert (first.lon, first.lat) == pytest.approx((mine["lon"].mean(), mine["lat"].mean()), abs=1e-7)
    assert first.kind_zh == "街道" and first.kind_en == "township"


@pytest.fixture
def townships(engine: Engine, seeded: AreaInfo) -> gpd.GeoDataFrame:
    """The seeded Wudaokou area with its display name and the sample townships imported as its units."""
    units = gpd.read_file(TOWNSHIPS)
    with engine.begin() as conn:
        ensure_area(conn, seeded.name, display_name="海淀区五道口街道")
        import_units(conn, seeded, units, level="township")
    return units


def test_imported_townships_and_the_area_are_places(engine: Engine, seeded: AreaInfo,
                                                    townships: gpd.GeoDataFrame) -> None:
    with engine.connect() as conn:
        xueyuan = find_places(conn, "学院路")
        wudaokou = find_places(conn, "五道口")
        exact = find_places(conn, "东升镇")
    assert [(p.kind, p.name) for p in xueyuan] == [("township", "学院路街道")]
    polygon = townships.set_index("name").geometry["学院路街道"]
    assert polygon.contains(Point(xueyuan[0].lon, xueyuan[0].lat))
    assert [(p.kind, p.name, p.area) for p in wudaokou] == [("area", "海淀区五道口街道", seeded.name)]
    assert exact[0].name == "东升镇"


def test_exact_then_prefix_then_contained_and_the_limit(engine: Engine, seeded: AreaInfo) -> None:
    with engine.connect() as conn:
        found = find_places(conn, "驿站 N-WEEK", limit=MAX_PLACES)  # N-WEEK exactly; N-WEEK2 starts with it
        assert [p.station_id for p in found] == ["N-WEEK", "N-WEEK2"]
        every = find_places(conn, "驿站", limit=MAX_PLACES)
        two = find_places(conn, "驿站", limit=2)
    active = sorted(s for s, v in STATIONS.items() if v[4] == "active")
    assert sorted(p.station_id or "" for p in every) == active  # closed N-CLOSED is no place to go
    assert two == every[:2]


def test_text_never_becomes_sql_and_bad_queries_are_told(engine: Engine, seeded: AreaInfo) -> None:
    with engine.connect() as conn:
        for q in ("%", "驿站%", "N%WEEK", "' OR '1'='1", "驿站'); DROP TABLE stations; --"):
            assert find_places(conn, q) == [], q  # strpos on a bound parameter: no wildcard, no statement
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == len(STATIONS)
        with pytest.raises(InvalidInput, match=rf"太长.*最多 {MAX_QUERY_CHARS}.*at most {MAX_QUERY_CHARS}"):
            find_places(conn, "五" * (MAX_QUERY_CHARS + 1))
        with pytest.raises(InvalidInput, match=r"没有可以查找的字.*nothing to search for"):
            find_places(conn, " ·、 ")
        with pytest.raises(InvalidInput, match="limit=0"):
            find_places(conn, "驿站", limit=0)


def test_places_of_one_area_only_when_it_is_named(engine: Engine, seeded: AreaInfo,
                                                  sample_template: SampleTemplate) -> None:
    other = sample_template.files["stations"]
    from yizhan.stations.service import import_stations

    with engine.begin() as conn:
        ensure_area(conn, "other", boundary=box(*WUDAOKOU_BOUNDS))
    import_stations(engine, other, area="other")
    with engine.connect() as conn:
        both = {p.area for p in find_places(conn, "驿站", limit=MAX_PLACES)}
        mine = {p.area for p in find_places(conn, "驿站", area=seeded.name, limit=MAX_PLACES)}
        view = area_view(conn)
        named = area_view(conn, seeded.name)
    assert both == {"other", seeded.name} and mine == {seeded.name}
    demo = demo_stations(sample_template)
    n_seeded = sum(v[4] == "active" for v in STATIONS.values())
    most = "other" if (demo["status"] == "active").sum() > n_seeded else seeded.name
    assert view is not None and view.name == most
    assert named is not None and named.name == seeded.name and named.stations == n_seeded
    w, s, e, n = named.bounds
    assert all(w <= v[0] <= e and s <= v[1] <= n for v in STATIONS.values())


def test_the_places_route(db_url: str, seeded: AreaInfo, townships: Any, tmp_path: Path, live_api: Any) -> None:
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key="k"))
    r = client.get("/places", params={"q": "学院路", "area": seeded.name})
    assert r.status_code == 200
    assert r.json()["places"][0] | {"lon": 0, "lat": 0} == {
        "name": "学院路街道", "kind": "township", "kind_zh": "街道", "kind_en": "township", "detail": None,
        "station_id": None, "area": seeded.name, "lon": 0, "lat": 0}
    assert client.get("/places", params={"q": "驿站", "limit": 3}).json()["places"].__len__() == 3
    long = client.get("/places", params={"q": "五" * (MAX_QUERY_CHARS + 1)})
    assert long.status_code == 422 and long.json()["detail"].startswith("地点 q 太长")
    assert client.get("/places", params={"q": "？"}).status_code == 422
    assert client.get("/places", params={"q": "驿站", "limit": MAX_PLACES + 1}).status_code == 422
    missing = client.get("/places", params={"q": "驿站", "area": "nowhere"})
    assert missing.status_code == 404


def test_the_places_route_is_rate_limited_like_the_riders(db_url: str, seeded: AreaInfo, tmp_path: Path,
                                                          live_api: Any) -> None:
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key="k",
                                             rate_limit_per_minute=3))
    codes = [client.get("/places", params={"q": "驿站"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_in_memory_the_same_places_as_in_the_database(engine: Engine, sample_area: AreaInfo,
                                                      sample_template: SampleTemplate) -> None:
    other = sample_template.files["stations"]
    from yizhan.stations.service import import_stations

    with engine.begin() as conn:  # a second area holding the same stations under the same ids
        ensure_area(conn, "other", boundary=box(*WUDAOKOU_BOUNDS))
    import_stations(engine, other, area="other")
    demo = demo_stations(sample_template)
    with engine.connect() as conn:
        index = StationIndex.from_rows(list(conn.execute(text(LOAD_SQL)).all()))
        assert names_of(index) is None  # being built in the background: the database answers meanwhile
        names = names_of(index, wait=True)
        assert names is not None and names_of(index) is names  # built once per index
        queries = ["成府路", "银行", "驿站", "片区", "东南片区", "火星", "1", str(demo["name"][0]),
                   str(demo["address"][0]), "ＤＥＭＯ"]
        for q in queries:
            for area in (None, sample_area.name, "other"):
                in_memory = find_places(conn, q, area=area, limit=MAX_PLACES, names=names)
                in_database = find_places(conn, q, area=area, limit=MAX_PLACES)
                assert [replace(p, lon=0, lat=0) for p in in_memory] == [replace(p, lon=0, lat=0)
                                                                         for p in in_database], (q, area)
                # a township's middle is a mean, summed in another order: equal to far below a millimetre
                assert [c for p in in_memory for c in (p.lon, p.lat)] == pytest.approx(
                    [c for p in in_database for c in (p.lon, p.lat)], abs=1e-9)
        assert {p.area for p in find_places(conn, "驿站", limit=MAX_PLACES, names=names)} == {"other",
                                                                                            sample_area.name}


def test_no_station_in_memory_finds_no_station(engine: Engine, wudaokou: AreaInfo) -> None:
    names = StationNames([])
    assert names.stations("驿站", None) == [] and names.townships("驿站", None) == []
    with engine.connect() as conn:
        assert find_places(conn, "驿站", names=names) == []


def test_the_route_answers_alike_from_the_database_and_from_memory(db_url: str, sample_area: AreaInfo,
                                                                   settings: Settings, live_api: Any) -> None:
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=settings.data_dir, staff_key="k"))
    asked = [{"q": "成府路"}, {"q": "银行", "area": sample_area.name}, {"q": "片区"}]
    first = [client.get("/places", params={**a, "limit": MAX_PLACES}) for a in asked]
    deadline = time.monotonic() + 30
    while client.get("/places", params={"q": "驿站"}).headers["X-Places-Source"] != "index":
        assert time.monotonic() < deadline, "the station index and its names were not loaded within 30 s"
        time.sleep(0.1)
    later = [client.get("/places", params={**a, "limit": MAX_PLACES}) for a in asked]
    assert first[0].headers["X-Places-Source"] == "database"  # the first request starts the index
    assert {r.headers["X-Places-Source"] for r in later} == {"index"}
    for before, after in zip(first, later, strict=True):
        assert [p | {"lon": 0, "lat": 0} for p in before.json()["places"]] == [
            p | {"lon": 0, "lat": 0} for p in after.json()["places"]]
        assert [c for p in before.json()["places"] for c in (p["lon"], p["lat"])] == pytest.approx(
            [c for p in after.json()["places"] for c in (p["lon"], p["lat"])], abs=1e-7)
    assert later[0].json()["places"]
