"""The rider's page in a real browser: the system Chromium driven by Playwright, against yizhan served over HTTP
on 127.0.0.1 with the seeded Wudaokou stations (tests/api_data.py), the phone's position held at ``Q``.

The page must list exactly what ``GET /stations/nearest`` answers for the same query, in the same order; its
filter chips must change the list as the API would; its navigation buttons are the features' own links, each
landing within 1 m of the station in WGS 84; no request may leave for another host than the server; and a text
from data (a station named ``<script>``) shows as text. Screenshots at 390 x 844 and 1366 x 768 are saved under
the test's ``tmp_path``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import geopandas as gpd
import httpx
import pytest
from api_data import GEOD, STATIONS, Q
from browser import page_width
from playwright.sync_api import Browser, Page, Route
from sqlalchemy import Engine

from yizhan.areas import AreaInfo, import_units
from yizhan.db.cluster import free_port
from yizhan.geo.coords import to_wgs84
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
NASTY = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
"""A station name that would run script if the page put it into HTML unescaped."""
XSS_ID = "N-XSS"
XSS_POINT = (116.3196, 40.0004)  # WGS 84 lon, lat: about 60 m from Q, 24/7, so first in every list it fits
TOWNSHIPS = Path(__file__).resolve().parents[1] / "data" / "samples" / "townships_sample.geojson"


@pytest.fixture
def rider_site(engine: Engine, seeded: AreaInfo, db_url: str, tmp_path: Path,
               live_api: Any) -> httpx.Client:
    """yizhan over HTTP with the seeded stations and one more whose name is HTML, 24/7, with a phone number."""
    csv = ("id,name,kind,lon,lat,amenities,opening_hours,phone,address,status\n"
           f'{XSS_ID},"{NASTY}",small,{XSS_POINT[0]},{XSS_POINT[1]},charging;drinking_water;heating,24/7,'
           f'010-6234 5678,"<b>成府路</b> 1号",active\n').encode()
    import_stations(engine, "xss.csv", area=seeded.name, data=csv, filename="xss.csv")
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key="k"))
    return client


class Session:
    """A browser context at the rider's position that records every URL the page asks for and refuses every one
    not on 127.0.0.1."""

    def __init__(self, browser: Browser, base: str, viewport: dict[str, int],
                 at: tuple[float, float] = Q) -> None:
        self.base = base
        self.requested: list[str] = []
        self.context = browser.new_context(viewport=viewport, geolocation={"latitude": at[1], "longitude": at[0]},
                                           permissions=["geolocation"], locale="zh-CN")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda m: self.errors.append(m.text) if "Content Security Policy" in m.text else None)

    def _route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    def outside(self) -> list[str]:
        return [u for u in self.requested if urlsplit(u).hostname != "127.0.0.1" and not u.startswith("data:")]


@pytest.fixture
def session(browser: Browser, rider_site: httpx.Client) -> Iterator[Session]:
    s = Session(browser, str(rider_site.base_url).rstrip("/"), PHONE)
    try:
        yield s
    finally:
        s.context.close()


def wait_listed(page: Page, after: int = 0) -> list[str]:
    """The ids the page lists once its search ``after`` a given number of searches has answered."""
    page.wait_for_function("n => { const l = document.getElementById('list');"
                           " return l.dataset.state === 'done' && Number(l.dataset.searches || 0) > n; }",
                           arg=after, timeout=15_000)
    return page.eval_on_selector_all("#list > li.card", "els => els.map(e => e.dataset.id)")


def searches(page: Page) -> int:
    return int(page.eval_on_selector("#list", "l => Number(l.dataset.searches || 0)"))


def api_answer(client: httpx.Client, at: tuple[float, float] = Q, **params: Any) -> tuple[dict[str, Any], str]:
    """The API's answer to the page's query from ``at`` (WGS 84 lon, lat) along the streets where the area has
    them, else straight, and which it was."""
    base = {"lon": f"{at[0]:.7f}", "lat": f"{at[1]:.7f}", "k": 5, "open_now": "true", **params}
    for by in ("network", "straight"):
        r = client.get("/stations/nearest", params={**base, "by": by})
        if r.status_code == 200:
            return r.json(), by
    raise AssertionError(r.text)


def ids(body: dict[str, Any]) -> list[str]:
    return [f["id"] for f in body["features"]]


def station_at(sid: str) -> tuple[float, float]:
    return XSS_POINT if sid == XSS_ID else (STATIONS[sid][0], STATIONS[sid][1])


def landing(href: str) -> tuple[float, float]:
    """The WGS 84 (lon, lat) degrees a navigation link leads to, read back in the coordinate system it states."""
    if href.startswith("geo:"):
        lat, lon = map(float, href[4:].split("?")[0].split(",")[:2])
        return lon, lat
    query = parse_qs(urlsplit(href).query)
    if "to" in query:  # Amap: to=LON,LAT,NAME in GCJ-02 (coordinate=gaode) or WGS 84 (coordinate=wgs84)
        lon, lat = map(float, query["to"][0].split(",")[:2])
        system = "gcj02" if query.get("coordinate", ["gaode"])[0] == "gaode" else "wgs84"
    elif "destination" in query:  # Baidu: destination=latlng:LAT,LON|name:... with coord_type
        m = re.match(r"latlng:([-\d.]+),([-\d.]+)", unquote(query["destination"][0]))
        assert m, href
        lat, lon = float(m[1]), float(m[2])
        system = {"wgs84": "wgs84", "gcj02": "gcj02", "bd09ll": "bd09"}[query.get("coord_type", ["bd09ll"])[0]]
    else:
        raise AssertionError(f"a navigation link the test cannot read: {href}")
    x, y = to_wgs84(lon, lat, system)
    return float(x), float(y)


def test_the_page_lists_what_the_api_answers_and_filters_as_it_would(session: Session, rider_site: httpx.Client,
                                                                     tmp_path: Path) -> None:
    page = session.page
    page.goto(session.base + "/")
    listed = wait_listed(page)
    body, by = api_answer(rider_site)
    assert listed == ids(body)
    assert listed, "the held position has stations open around it at any hour (N-247, N-XSS are 24/7)"
    assert page.eval_on_selector("#list", "l => l.dataset.by") == by
    page.screenshot(path=str(tmp_path / "rider-390x844.png"), full_page=False)
    assert page_width(page) <= PHONE["width"]  # nothing runs off the side

    # charging: the API's answer with amenity=charging
    n = searches(page)
    page.click(".chip[data-filter=charging]")
    charging = wait_listed(page, n)
    assert charging == ids(api_answer(rider_site, amenity="charging")[0])
    # microwave: no station has one, so the list empties and the page says why
    n = searches(page)
    page.click(".chip[data-filter=microwave]")
    assert wait_listed(page, n) == [] == ids(api_answer(rider_site, amenity=["charging", "microwave"])[0])
    assert page.is_visible("#reason")
    assert page.inner_text("#reason h2").strip()
    n = searches(page)
    page.click(".chip[data-filter=microwave]")
    page.click(".chip[data-filter=charging]")
    page.wait_for_function("n => Number(document.getElementById('list').dataset.searches) >= n + 2", arg=n)
    # open now off: every active station, open or not, as the API answers without open_now
    n = searches(page)
    page.click(".chip[data-filter=open_now]")
    every = wait_listed(page, n)
    body_all, _ = api_answer(rider_site, open_now="false")
    expected_all = ids(body_all)
    assert every == expected_all
    assert "N-CLOSED" not in every  # closed for good: never listed
    # 24 hours: the API's answer with open_24h=true (stations open round the clock), nearest first
    n = searches(page)
    page.click(".chip[data-filter='24h']")
    all_day, _ = api_answer(rider_site, open_now="false", open_24h="true")
    assert wait_listed(page, n) == ids(all_day) == ["N-XSS", "N-247", "N-FAR"]  # the 24/7 ones, nearest first
    assert "open_24h=true" in (page.get_attribute("#list", "data-query") or "")
    assert session.errors == []
    assert session.outside() == []
    assert any(u.endswith("/leaflet.js") for u in session.requested)


def test_navigation_buttons_are_the_features_links_and_land_on_the_station(session: Session,
                                                                           rider_site: httpx.Client) -> None:
    page = session.page
    page.goto(session.base + "/")
    listed = wait_listed(page)
    body, _ = api_answer(rider_site)
    assert listed
    for feature in body["features"]:
        hrefs = page.eval_on_selector_all(f"#list > li.card[data-id='{feature['id']}'] a.navbtn",
                                          "els => els.map(e => e.getAttribute('href'))")
        nav = feature["properties"]["nav"]
        assert hrefs == [nav[k] for k in ("amap_ride", "baidu_ride", "geo")]
        lon0, lat0 = station_at(feature["id"])
        for href in hrefs:
            lon, lat = landing(href)
            assert GEOD.inv(lon0, lat0, lon, lat)[2] < 1.0, href
    tel = page.get_attribute(f"#list > li.card[data-id='{XSS_ID}'] a.call", "href")
    assert tel == "tel:010-62345678"


def test_html_in_data_shows_as_text(session: Session) -> None:
    page = session.page
    page.goto(session.base + "/")
    wait_listed(page)
    name = page.inner_text(f"#list > li.card[data-id='{XSS_ID}'] h2")
    assert NASTY in name
    assert "<b>成府路</b> 1号" in page.inner_text(f"#list > li.card[data-id='{XSS_ID}'] .where")
    page.goto(f"{session.base}/s/{XSS_ID}")
    assert page.inner_text("#name") == NASTY
    assert page.get_attribute("a.call", "href") == "tel:010-62345678"
    assert page.evaluate("window.__pwned") is None
    assert session.errors == []


def test_a_stations_own_page(session: Session, rider_site: httpx.Client, tmp_path: Path) -> None:
    page = session.page
    page.goto(f"{session.base}/s/N-WEEK?area=wudaokou")
    assert page.inner_text("#name") == "驿站 N-WEEK"
    assert page.inner_text("#hours").startswith("周一至周五 08:00")
    assert re.fullmatch(r"(营业至 .*|已关闭 · .*开放)", page.inner_text("#status"))
    assert [" ".join(t.split()) for t in page.locator(".amenity").all_inner_texts()] == ["充电 charging",
                                                                                        "卫生间 toilet"]
    share = page.get_attribute("#share", "href")
    assert share == f"{session.base}/s/N-WEEK?area=wudaokou"
    assert page.locator("#qr svg").count() == 1
    assert page.locator("#qr svg path").count() >= 1
    hrefs = page.eval_on_selector_all("#nav a", "els => els.map(e => e.getAttribute('href'))")
    feature = rider_site.get("/stations/N-WEEK").json()
    assert page.inner_text("#status") == feature["properties"]["status_zh"]
    assert page.inner_text("#hours") == feature["properties"]["hours_zh"]
    nav = feature["properties"]["nav"]
    assert hrefs == [nav[k] for k in ("amap_walk", "amap_ride", "baidu_walk", "baidu_ride", "baidu_web", "geo")]
    for href in hrefs:
        lon, lat = landing(href)
        assert GEOD.inv(STATIONS["N-WEEK"][0], STATIONS["N-WEEK"][1], lon, lat)[2] < 1.0, href
    page.screenshot(path=str(tmp_path / "station-390x844.png"), full_page=True)
    assert page_width(page) <= PHONE["width"]
    tel = page.get_attribute("a.call", "href") if page.locator("a.call").count() else None
    assert tel is None  # N-WEEK has no phone number
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(tmp_path / "station-1366x768.png"))
    assert session.outside() == []


def test_the_page_on_a_desktop(browser: Browser, rider_site: httpx.Client, tmp_path: Path) -> None:
    s = Session(browser, str(rider_site.base_url).rstrip("/"), DESKTOP)
    try:
        s.page.goto(s.base + "/")
        listed = wait_listed(s.page)
        assert listed == ids(api_answer(rider_site)[0])
        s.page.screenshot(path=str(tmp_path / "rider-1366x768.png"))
        # every button and chip is a large tap target (44 CSS pixels at least)
        sizes = s.page.eval_on_selector_all(".chip, .btn", "els => els.map(e => e.getBoundingClientRect().height)")
        assert sizes and min(sizes) >= 44
        assert s.outside() == [] and s.errors == []
    finally:
        s.context.close()


def test_an_empty_answer_says_why_and_shows_the_nearest_beyond(browser: Browser, rider_site: httpx.Client) -> None:
    far = (116.3600, 40.0300)  # WGS 84: about 3.7 km from the nearest seeded station (N-FAR)
    s = Session(browser, str(rider_site.base_url).rstrip("/"), PHONE, at=far)
    try:
        s.page.goto(s.base + "/")
        listed = wait_listed(s.page)
        body, _ = api_answer(rider_site, at=far)
        assert listed == ids(body) == []
        assert body["reason"]["code"] == "none_within"
        said = " ".join(s.page.inner_text("#reason h2").split())
        assert said == f"{body['reason']['zh']} {body['reason']['en']}"
        beyond = s.page.eval_on_selector_all("#reason li.card.nearest_beyond", "els => els.map(e => e.dataset.id)")
        assert beyond == [body["nearest_beyond"]["id"]] == ["N-FAR"]
        assert s.outside() == [] and s.errors == []
    finally:
        s.context.close()


def test_without_the_position_the_page_asks_for_a_tap(browser: Browser, rider_site: httpx.Client) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")  # no geolocation permission: refused
    try:
        page = context.new_page()
        page.goto(str(rider_site.base_url).rstrip("/") + "/")
        page.wait_for_function("document.getElementById('status').textContent.includes('无法获取位置')")
        assert "tap the map" in page.inner_text("#status")
        assert page.locator("#list > li").count() == 0
    finally:
        context.close()


def test_a_tap_on_the_map_searches_from_there(session: Session, rider_site: httpx.Client) -> None:
    page = session.page
    page.goto(session.base + "/")
    wait_listed(page)
    n = searches(page)
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.click("#map", position={"x": box["width"] * 0.8, "y": box["height"] * 0.3})  # among the stations
    listed = wait_listed(page, n)
    query = parse_qs(page.get_attribute("#list", "data-query") or "")
    lon, lat = float(query["lon"][0]), float(query["lat"][0])
    assert GEOD.inv(Q[0], Q[1], lon, lat)[2] > 100  # searched from the tapped point, not the phone's position
    body, _ = api_answer(rider_site, at=(lon, lat))
    assert listed == ids(body) and listed


def test_streets_only_where_the_area_has_a_graph(rider_site: httpx.Client) -> None:
    r = rider_site.get("/rider-streets", params={"area": "wudaokou", "lon": Q[0], "lat": Q[1]})
    assert r.status_code == 404 and "没有街道数据" in r.text
    assert rider_site.get("/rider-streets", params={"area": "nowhere", "lon": Q[0], "lat": Q[1]}).status_code == 404


def test_an_unknown_station_and_asset_are_answered_in_chinese(rider_site: httpx.Client) -> None:
    r = rider_site.get("/s/NOPE")
    assert r.status_code == 404
    assert "没有这个驿站" in r.text and "NOPE" in r.text
    assert rider_site.get("/rider-assets/rider.js").headers["content-type"].startswith("text/javascript")
    for name in ("..%2Frider.py", "missing.js", ".hidden.css"):
        assert rider_site.get(f"/rider-assets/{name}").status_code == 404


def test_along_the_streets_where_the_area_has_a_street_graph(browser: Browser, sample_area: AreaInfo, db_url: str,
                                                             settings: Settings, live_api: Any,
                                                             tmp_path: Path) -> None:
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=settings.data_dir, staff_key="k"))
    first = client.get("/stations", params={"area": sample_area.name, "status": "active", "limit": 1}).json()
    lon, lat = first["features"][0]["geometry"]["coordinates"]
    at = (lon + 0.0008, lat + 0.0005)  # about 90 m from a station, among the sample's streets
    s = Session(browser, str(client.base_url).rstrip("/"), PHONE, at=at)
    try:
        s.page.goto(s.base + "/")
        wait_listed(s.page)
        n = searches(s.page)
        s.page.click(".chip[data-filter=open_now]")  # every station, whatever the hour
        listed = wait_listed(s.page, n)
        body, by = api_answer(client, at=at, open_now="false")
        assert by == "network"
        assert listed == ids(body) and listed
        assert s.page.eval_on_selector("#list", "l => l.dataset.by") == "network"
        assert "沿街" in s.page.inner_text("#list > li.card .dist")
        assert s.page.locator("path.route").count() == 1  # the chosen (first) station's way along the streets
        # the area's own streets drawn without tiles: the edges the street graph has around the rider
        s.page.wait_for_selector("#map[data-streets]")
        streets = client.get("/rider-streets", params={"area": sample_area.name, "lon": f"{at[0]:.6f}",
                                                       "lat": f"{at[1]:.6f}"}).json()
        assert int(s.page.get_attribute("#map", "data-streets") or 0) == len(streets["coordinates"]) > 10
        assert s.page.locator("path.streets").count() == 1
        for line in streets["coordinates"]:  # each drawn street has an end within the radius (1500 m)
            ends = [line[0], line[-1]]
            assert min(GEOD.inv(at[0], at[1], x, y)[2] for x, y in ends) < 1500 + 5
        s.page.screenshot(path=str(tmp_path / "rider-network-390x844.png"))
        assert s.outside() == [] and s.errors == []
    finally:
        s.context.close()


def test_the_24h_chip_says_why_when_no_station_is_open_all_day(browser: Browser, engine: Engine,
                                                               wudaokou: AreaInfo, db_url: str, tmp_path: Path,
                                                               live_api: Any) -> None:
    csv = ("id,name,kind,lon,lat,amenities,opening_hours,status\n"
           "D-1,白天驿站一,small,116.3185,39.9990,charging,Mo-Su 08:00-20:00,active\n"
           "D-2,白天驿站二,small,116.3230,40.0010,toilet,Mo-Fr 09:00-17:00,active\n").encode()
    import_stations(engine, "day.csv", area=wudaokou.name, data=csv, filename="day.csv")
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=tmp_path / "data", staff_key="k"))
    s = Session(browser, str(client.base_url).rstrip("/"), PHONE)
    try:
        s.page.goto(s.base + "/")
        wait_listed(s.page)
        n = searches(s.page)
        s.page.click(".chip[data-filter='24h']")
        assert wait_listed(s.page, n) == []
        body, _ = api_answer(client, open_24h="true")
        assert body["features"] == [] and body["reason"]["code"] == "none_all_day"
        assert s.page.get_attribute("#reason", "data-code") == "none_all_day"
        assert " ".join(s.page.inner_text("#reason h2").split()) == f"{body['reason']['zh']} {body['reason']['en']}"
        assert s.outside() == [] and s.errors == []
    finally:
        s.context.close()


def offered(page: Page, q: str) -> list[str]:
    """Type ``q`` into the place box and wait for the places the page offers; their names."""
    page.fill("#q", q)
    page.wait_for_function("q => { const l = document.getElementById('places');"
                           " return !l.hidden && l.dataset.q === q; }", arg=q, timeout=15_000)
    return [" ".join(t.split()) for t in page.locator("#places button.placebtn").all_inner_texts()]


def test_a_typed_place_searches_from_there(browser: Browser, rider_site: httpx.Client, engine: Engine,
                                           seeded: AreaInfo, tmp_path: Path) -> None:
    with engine.begin() as conn:
        import_units(conn, seeded, gpd.read_file(TOWNSHIPS), level="township")
    context = browser.new_context(viewport=PHONE, locale="zh-CN")  # no position: the rider types a place
    try:
        page = context.new_page()
        page.goto(str(rider_site.base_url).rstrip("/") + "/")
        page.wait_for_function("document.getElementById('status').textContent.includes('输入地点')")
        places = rider_site.get("/places", params={"q": "学院路"}).json()["places"]
        assert [p["name"] for p in places] == ["学院路街道"]
        assert offered(page, "学院路") == ["学院路街道 街道 township"]
        page.click("#places button.placebtn")
        listed = wait_listed(page)
        at = (places[0]["lon"], places[0]["lat"])
        body, _ = api_answer(rider_site, at=at)
        assert listed == ids(body) and listed
        query = parse_qs(page.get_attribute("#list", "data-query") or "")
        assert (float(query["lon"][0]), float(query["lat"][0])) == pytest.approx(at, abs=1e-7)
        assert page.input_value("#q") == "学院路街道" and page.is_hidden("#places")
        # a station's address (成府路) and Enter: the first place offered, the station's own position
        n = searches(page)
        first = rider_site.get("/places", params={"q": "成府路"}).json()["places"][0]
        assert first["station_id"] == XSS_ID and first["kind"] == "address"
        page.fill("#q", "成府路")
        page.press("#q", "Enter")
        listed = wait_listed(page, n)
        assert listed == ids(api_answer(rider_site, at=XSS_POINT)[0]) and listed[0] == XSS_ID
        # a name nothing has: said, and the list stays
        assert offered(page, "火星路") == []
        assert "没有找到这个地点" in page.inner_text("#places")
        assert NASTY in offered(page, "<script>")[0]  # a name that is HTML is offered as text
        assert page.evaluate("window.__pwned") is None
    finally:
        context.close()


def test_before_a_position_the_map_shows_the_area_then_a_typed_place(browser: Browser, sample_area: AreaInfo,
                                                                     db_url: str, settings: Settings,
                                                                     live_api: Any, tmp_path: Path) -> None:
    client: httpx.Client = live_api(Settings(database_url=db_url, data_dir=settings.data_dir, staff_key="k"))
    active = client.get("/stations", params={"area": sample_area.name, "status": "active", "limit": 1000}).json()
    s = Session(browser, str(client.base_url).rstrip("/"), PHONE)
    s.context.clear_permissions()  # the position is refused: only the area is known
    try:
        page = s.page
        page.goto(s.base + "/")
        page.wait_for_selector("#map[data-streets][data-stations]")
        assert page.get_attribute("#map", "data-area") == sample_area.name
        lon, lat = map(float, (page.get_attribute("#map", "data-centre") or "").split(","))
        streets = client.get("/rider-streets", params={"area": sample_area.name, "lon": f"{lon:.6f}",
                                                       "lat": f"{lat:.6f}"}).json()
        assert int(page.get_attribute("#map", "data-streets") or 0) == len(streets["coordinates"]) > 100
        assert page.locator("path.streets").count() == 1
        assert page.locator("path.overview").count() == len(active["features"]) == active["total"] > 0
        assert page.locator("#list > li").count() == 0
        page.wait_for_function("document.getElementById('status').textContent.includes('无法获取位置')")
        page.screenshot(path=str(tmp_path / "rider-area-390x844.png"))
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(tmp_path / "rider-area-1366x768.png"))
        page.set_viewport_size(PHONE)

        # the rider types a street: the page offers what GET /places answers, in its order
        n = searches(page)
        page.click(".chip[data-filter=open_now]")  # every station, whatever the hour
        places = client.get("/places", params={"q": "成府路"}).json()["places"]
        assert places and all(p["kind"] == "address" for p in places)
        assert [t.split(" ")[0] for t in offered(page, "成府路")] == [p["name"] for p in places]
        page.screenshot(path=str(tmp_path / "rider-places-390x844.png"))
        page.locator("#places button.placebtn").nth(1).click()
        listed = wait_listed(page, n)
        at = (places[1]["lon"], places[1]["lat"])
        body, by = api_answer(client, at=at, open_now="false")
        assert by == "network" and listed == ids(body) and listed
        assert listed[0] == places[1]["station_id"]  # the station at that address is nearest
        page.wait_for_timeout(500)  # for the picture only: the map's zoom to the answer is animated
        page.screenshot(path=str(tmp_path / "rider-typed-390x844.png"))
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(tmp_path / "rider-typed-1366x768.png"))
        assert s.outside() == [] and s.errors == []
    finally:
        s.context.close()


def test_an_unknown_area_is_said_and_a_named_one_is_shown(rider_site: httpx.Client, seeded: AreaInfo) -> None:
    r = rider_site.get("/", params={"area": "nowhere"})
    assert r.status_code == 404 and "没有区域 nowhere" in r.text and "no area named" in r.text
    page = rider_site.get("/", params={"area": seeded.name}).text
    assert f'data-area="{seeded.name}"' in page


def test_the_page_loads_while_the_database_is_down(tmp_path: Path, live_api: Any) -> None:
    client: httpx.Client = live_api(Settings(database_url=f"postgresql+psycopg://yizhan@127.0.0.1:{free_port()}/none",
                                             data_dir=tmp_path / "data", staff_key="k"), timeout=60)
    r = client.get("/")
    assert r.status_code == 200 and 'id="q"' in r.text and "data-area" not in r.text  # no area to show
    assert client.get("/places", params={"q": "五道口"}).status_code == 503
