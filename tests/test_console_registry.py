"""The console's registry and demand pages over real HTTP (uvicorn, real PostGIS) and in Chromium: a staff member
uploads a bad sheet (the bad rows shown, grouped as the API groups them; the stations table unchanged: count and
checksum), then a good one (added, updated, unchanged, stored); downloads read back; the table searched, sorted
and paged on the server; a planner sees the table but may not upload or download; no session, no CSRF token, an
upload over the limit, each refused before anything is stored; demand uploaded with its cells, total and area, a
bad file named in one line; screenshots of the bad-row table at phone and desktop widths."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import openpyxl
import pytest
from browser import needs_chromium, page_width
from console_session import HTML, Clock, form_token, make_user, served, signed_in
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
GOOD = (SAMPLES / "stations_registry_zh.csv").read_bytes()
"""The clerk's sheet of the samples: 9 stations in Wudaokou, Chinese headers and words."""
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


def bad_sheet() -> bytes:
    """The clerk's sheet with bad cells: a kind nobody uses in two rows (3 and 5), a star rating of 6 (row 4), a
    longitude that is no number (row 6)."""
    rows = list(csv.reader(io.StringIO(GOOD.decode("utf-8-sig"))))
    rows[2][2] = rows[4][2] = "大站点"
    rows[3][11] = "6"
    rows[5][3] = "东经116度"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@pytest.fixture
def site(db_url: str, tmp_path: Path, wudaokou: AreaInfo) -> Iterator[httpx.Client]:
    """The app over HTTP, the Wudaokou area in its database; a client (one browser's cookie jar)."""
    yield from served(db_url, tmp_path, Clock(), timeout=60)


def staff(site: httpx.Client, engine: Engine, name: str = "李文", role: str = "staff") -> httpx.Client:
    make_user(engine, name, role)
    assert signed_in(site, name).status_code == 303
    return site


def stations_state(engine: Engine) -> tuple[int, str]:
    """The stations table's row count and a checksum of every row."""
    with engine.connect() as conn:
        n, digest = conn.execute(text(
            "SELECT count(*), coalesce(md5(string_agg(s::text, '|' ORDER BY s.id)), '') FROM stations s")).one()
    return int(n), str(digest)


def upload(client: httpx.Client, content: bytes, name: str = "登记表.csv", *, token: str | None = None,
           **fields: str) -> httpx.Response:
    if token is None:
        token = form_token(client.get("/console/registry", headers=HTML))
    data = {"area": "wudaokou", **fields}
    if token:
        data["csrf_token"] = token
    return client.post("/console/registry", headers=HTML, data=data,
                       files={"file": (name, content, "application/octet-stream")})


def test_a_bad_sheet_shows_its_rows_and_stores_nothing_then_a_good_one_is_stored(site: httpx.Client,
                                                                                 engine: Engine) -> None:
    staff(site, engine)
    assert upload(site, GOOD).status_code == 200
    before = stations_state(engine)
    assert before[0] == 9

    r = upload(site, bad_sheet())
    assert r.status_code == 422, r.text
    assert "未导入任何数据" in r.text and "Nothing was imported" in r.text
    assert stations_state(engine) == before  # one transaction: not a row changed
    page = r.text
    body = page[page.index('<table class="problems">'):page.index("</table>", page.index('class="problems"'))]
    cells = [[c.strip() for c in row.split("</td>")[:-1]] for row in body.split("<tr>")[2:]]
    texts = [[c.split(">", 1)[1] for c in row] for row in cells]
    assert [t[0] for t in texts] == ["3, 5", "4", "6"], texts  # grouped by bad value, in the order of first rows
    assert "大站点" in texts[0][2] and "大型" in texts[0][4]  # the closest word says how to fix it
    assert "6" in texts[1][2] and "东经116度" in texts[2][2]

    changed = GOOD.replace("海淀区成府路南侧".encode(), "海淀区成府路南侧一层".encode())
    extra = "HD-0199,新驿站,小型,116.3200,40.0000,银行,海淀区,学院路街道,饮水,24/7,4,3,运营\n".encode()
    r = upload(site, changed + extra)
    assert r.status_code == 200, r.text
    figures = r.text[r.text.index('class="figures"'):r.text.index("</ul>", r.text.index('class="figures"'))]
    assert [f.split("<strong>")[1].split("</strong>")[0] for f in figures.split("<li>")[1:]] == ["1", "1", "8"]
    assert "新增" in figures and "已更新" in figures and "未变" in figures
    assert stations_state(engine)[0] == 10
    with engine.connect() as conn:
        assert conn.execute(text("SELECT address FROM stations WHERE external_id = 'HD-0101'")).scalar_one() \
            == "海淀区成府路南侧一层"


def test_downloads_read_back_in_chinese_and_english(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    assert upload(site, GOOD).status_code == 200
    r = site.get("/console/registry/stations.xlsx", params={"area": "wudaokou", "lang": "zh"})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="stations.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("编号", "名称", "类型") and len(rows) == 10
    assert {row[0] for row in rows[1:]} == {f"HD-01{i:02d}" for i in range(1, 10)}
    assert "大型驿站" in {row[2] for row in rows[1:]}
    r = site.get("/console/registry/stations.csv", params={"area": "wudaokou", "lang": "en"})
    assert r.status_code == 200
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["id", "name", "kind"] and "large" in {row[2] for row in table[1:]}
    r = site.get("/console/registry/stations.geojson", params={"area": "wudaokou"})
    assert r.status_code == 200 and len(r.json()["features"]) == 9
    r = site.get("/console/registry/stations.gpkg", params={"area": "wudaokou"})
    assert r.status_code == 200 and r.content.startswith(b"SQLite format 3")
    # the page links every download of the area
    page = site.get("/console/registry", params={"area": "wudaokou"}, headers=HTML).text
    for fmt in ("csv", "xlsx", "geojson", "gpkg"):
        for lang in ("zh", "en"):
            assert f"/console/registry/stations.{fmt}?area=wudaokou&amp;lang={lang}" in page


def test_the_table_is_searched_sorted_and_paged_on_the_server(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    lines = ["id,name,kind,lon,lat,host,address,township"]
    for i in range(1, 121):
        town = "东升镇" if i % 3 == 0 else "学院路街道"
        lines.append(f"T-{i:03d},驿站{i:03d},small,{116.31 + i * 0.0001:.4f},40.0000,bank,成府路{i}号,{town}")
    assert upload(site, ("\n".join(lines) + "\n").encode()).status_code == 200

    def ids(page: str) -> list[str]:
        if '<table class="stations">' not in page:
            return []
        body = page[page.index('<table class="stations">'):]
        return [c.split(">", 1)[1].split("<", 1)[0] for c in body.split('<td data-label="编号 ID"')[1:]]

    first = site.get("/console/registry", params={"area": "wudaokou"}, headers=HTML).text
    assert ids(first) == [f"T-{i:03d}" for i in range(1, 51)] and "第 1 / 3 页" in first
    last = site.get("/console/registry", params={"area": "wudaokou", "page": 3}, headers=HTML).text
    assert ids(last) == [f"T-{i:03d}" for i in range(101, 121)]
    beyond = site.get("/console/registry", params={"area": "wudaokou", "page": 99}, headers=HTML).text
    assert ids(beyond) == ids(last)  # a page past the end is the last
    down = site.get("/console/registry", params={"area": "wudaokou", "sort": "name", "order": "desc"},
                    headers=HTML).text
    assert ids(down)[:3] == ["T-120", "T-119", "T-118"]
    found = site.get("/console/registry", params={"area": "wudaokou", "q": "东升"}, headers=HTML).text
    assert ids(found) == [f"T-{i:03d}" for i in range(3, 121, 3)]
    assert '站点 <span class="en">Stations</span>：40' in found
    by_address = site.get("/console/registry", params={"area": "wudaokou", "q": "成府路17号"}, headers=HTML).text
    assert ids(by_address) == ["T-017"]
    literal = site.get("/console/registry", params={"area": "wudaokou", "q": "100%"}, headers=HTML).text
    assert ids(literal) == [] and "没有与“100%”匹配的站点" in literal  # % is a character, not a wildcard
    # the sorted column's link turns the order around; a search's links keep the search
    assert "/console/registry?area=wudaokou&amp;sort=name&amp;order=asc&amp;page=1" in down
    assert "q=%E4%B8%9C%E5%8D%87&amp;sort=name" in found


def test_text_from_a_sheet_is_escaped(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    sheet = "id,name,kind,lon,lat,address\nX-1,<script>alert(1)</script>,small,116.32,40.0,<b>路</b>\n"
    assert upload(site, sheet.encode()).status_code == 200
    page = site.get("/console/registry", params={"area": "wudaokou"}, headers=HTML).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>路</b>" not in page
    r = upload(site, b"id,name,kind,lon,lat\nX-2,a,<img src=x>,116.32,40.0\n")
    assert r.status_code == 422 and "<img src=x>" not in r.text and "&lt;img src=x&gt;" in r.text


def test_a_planner_sees_the_table_but_may_not_upload_or_download(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    assert upload(site, GOOD).status_code == 200
    site.cookies.clear()
    staff(site, engine, "规划员", "planner")
    page = site.get("/console/registry", params={"area": "wudaokou"}, headers=HTML)
    assert page.status_code == 200 and "HD-0101" in page.text
    assert 'enctype="multipart/form-data"' not in page.text and "stations.xlsx" not in page.text
    before = stations_state(engine)
    token = form_token(page)  # the sign-out form's: a planner's own valid token
    r = upload(site, GOOD.replace(b"HD-0101", b"HD-0999"), token=token)
    assert r.status_code == 403 and "无权访问" in r.text, r.text
    assert stations_state(engine) == before
    assert site.get("/console/registry/stations.xlsx", params={"area": "wudaokou"}, headers=HTML).status_code == 403


def test_no_session_no_token_or_too_large_a_file_stores_nothing(db_url: str, tmp_path: Path, engine: Engine,
                                                                 wudaokou: AreaInfo) -> None:
    for site in served(db_url, tmp_path, Clock(), timeout=60, max_upload_mb=0.01):
        before = stations_state(engine)
        for method, path in (("GET", "/console/registry"), ("GET", "/console/registry?area=wudaokou&q=x"),
                             ("GET", "/console/registry/stations.xlsx"), ("GET", "/console/demand")):
            r = site.request(method, path, headers=HTML)
            assert r.status_code == 303 and r.headers["location"] == "/console/signin?next=" + quote(path, safe="/")
        r = site.post("/console/registry", headers=HTML, data={"area": "wudaokou"}, files={"file": ("a.csv", GOOD)})
        assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/console/signin"
        staff(site, engine)
        r = upload(site, GOOD, token="")
        assert r.status_code == 403 and "表单无效" in r.text
        r = upload(site, GOOD, token="not-the-token")
        assert r.status_code == 403
        r = upload(site, GOOD + b"\n" * 20_000)  # 0.01 MB is 10,485 bytes
        assert r.status_code == 413 and "上传上限" in r.text and "0.01 MB" in r.text, r.text
        r = upload(site, GOOD + b"\n" * 200_000)  # the declared length alone refuses it
        assert r.status_code == 413
        token = form_token(site.get("/console/registry", headers=HTML))
        r = site.post("/console/registry", headers=HTML, data={"area": "wudaokou", "csrf_token": token},
                      files=[("file", ("a.csv", GOOD)), ("file", ("b.csv", GOOD))])
        assert r.status_code == 400, r.text  # one file per upload: the form's own limits hold
        assert stations_state(engine) == before
        assert upload(site, GOOD).status_code == 200  # within the limit


@needs_chromium
def test_the_bad_row_table_in_a_browser_at_phone_and_desktop_sizes(site: httpx.Client, engine: Engine,
                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    make_user(engine, "李文", "staff")
    base = str(site.base_url).rstrip("/")
    bad = tmp_path / "登记表.csv"
    bad.write_bytes(bad_sheet())
    good = tmp_path / "good.csv"
    good.write_bytes(GOOD)
    orders = tmp_path / "订单.csv"
    orders.write_bytes(ORDERS)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            for label, viewport in (("390x844", PHONE), ("1366x768", DESKTOP)):
                context = browser.new_context(viewport=viewport, locale="zh-CN", accept_downloads=True)
                page = context.new_page()
                page.goto(f"{base}/console")
                page.fill("#name", "李文")
                page.fill("#password", "correct horse battery")
                page.click("button.primary")
                page.click("a.tile[href='/console/registry']")
                page.set_input_files("#up-file", str(good))
                page.click("form[enctype] button.primary")
                assert page.locator(".figures li").first.inner_text().split()[:2] in (["9", "新增"], ["0", "新增"])
                before = stations_state(engine)
                page.set_input_files("#up-file", str(bad))
                page.click("form[enctype] button.primary")
                rows = page.locator("table.problems tbody tr")
                assert rows.count() == 3
                assert stations_state(engine) == before
                for selector in ("#up-file", "form[enctype] button.primary", "#q"):
                    box = page.locator(selector).bounding_box()
                    assert box is not None and box["height"] >= 44, (label, selector, box)
                assert page_width(page) <= viewport["width"], label
                page.screenshot(path=str(shots / f"registry-bad-rows-{label}.png"), full_page=True)
                with page.expect_download() as got:
                    page.click("a[href*='stations.xlsx'][href*='lang=zh']")
                assert got.value.suggested_filename == "stations.xlsx"
                book = openpyxl.load_workbook(io.BytesIO(got.value.path().read_bytes()), read_only=True)
                rows_back = list(book.worksheets[0].iter_rows(values_only=True))
                assert rows_back[0][0] == "编号" and len(rows_back) == 10
                page.click("nav.sections a[href='/console/demand']")
                page.set_input_files("#up-file", str(orders))
                page.click("form[enctype] button.primary")
                assert page.locator(".result .figures li").first.inner_text().split()[:2] == ["400", "个需求点"]
                assert page_width(page) <= viewport["width"], label
                page.screenshot(path=str(shots / f"demand-{label}.png"), full_page=True)
                context.close()
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == ["demand-1366x768.png", "demand-390x844.png",
                                                       "registry-bad-rows-1366x768.png",
                                                       "registry-bad-rows-390x844.png"]


# --- demand ------------------------------------------------------------------------------------------------------
ORDERS = (SAMPLES / "orders_sample.csv").read_bytes()
"""The demo's 400 orders in Wudaokou: 经度, 纬度, 订单量 (605 in all), 时间."""


def demand_stored(engine: Engine) -> tuple[int, int, float]:
    """The demand points and cells stored, and the cells' total."""
    with engine.connect() as conn:
        points = conn.execute(text("SELECT coalesce(sum(n), 0) FROM demand_point_blocks")).scalar_one()
        cells, total = conn.execute(text("SELECT count(*), coalesce(sum(weight), 0) FROM area_cells")).one()
    return int(points), int(cells), float(total)


def upload_demand(client: httpx.Client, content: bytes, name: str, **fields: str) -> httpx.Response:
    token = form_token(client.get("/console/demand", headers=HTML))
    return client.post("/console/demand", headers=HTML, data={"area": "wudaokou", "csrf_token": token, **fields},
                       files={"file": (name, content, "application/octet-stream")})


def figures(page: str) -> list[str]:
    """The figures of the result card: the numbers in bold, in order."""
    start = page.index('class="figures')
    part = page[start:page.index("</ul>", start)]
    return [f.split("<strong>")[1].split("</strong>")[0] for f in part.split("<li>")[1:]]


def test_demand_is_uploaded_with_its_cells_total_and_area(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    r = upload_demand(site, ORDERS, "订单.csv", cell_size="250")
    assert r.status_code == 200, r.text
    points, cells, total = demand_stored(engine)
    assert (points, total) == (400, 605.0) and cells > 10
    assert figures(r.text) == ["400", str(cells), "605", f"{cells * 0.0625:.2f}"]  # 250 m squares: 0.0625 km²
    assert "250 米" in r.text and "经度" in r.text  # the cell edge and the columns used
    page = site.get("/console/demand", params={"area": "wudaokou"}, headers=HTML).text
    assert figures(page) == [str(cells), "605", f"{cells * 0.0625:.2f}", "250"]


def test_demand_as_geoparquet_and_as_a_zipped_shapefile(site: httpx.Client, engine: Engine,
                                                        tmp_path: Path) -> None:
    import zipfile

    import geopandas as gpd
    import pandas as pd

    staff(site, engine)
    df = pd.read_csv(io.BytesIO(ORDERS), encoding="utf-8-sig")
    gdf = gpd.GeoDataFrame({"订单量": df["订单量"]}, geometry=gpd.points_from_xy(df["经度"], df["纬度"]),
                           crs="EPSG:4326")
    gdf.to_parquet(tmp_path / "orders.parquet")
    r = upload_demand(site, (tmp_path / "orders.parquet").read_bytes(), "orders.parquet")
    assert r.status_code == 200, r.text
    assert demand_stored(engine)[0::2] == (400, 605.0)
    gdf.rename(columns={"订单量": "weight"}).to_file(tmp_path / "orders.shp", encoding="utf-8")
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        for part in tmp_path.glob("orders.*"):
            if part.suffix != ".parquet":
                z.write(part, part.name)
    r = upload_demand(site, packed.getvalue(), "orders.zip", append="true")
    assert r.status_code == 200, r.text
    assert demand_stored(engine)[0::2] == (800, 1210.0)  # added to the parquet's points
    r = upload_demand(site, (tmp_path / "orders.shp").read_bytes(), "orders.shp")
    assert r.status_code == 422 and ".zip" in r.text


def test_a_bad_demand_file_is_named_in_one_line_and_stores_nothing(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    assert upload_demand(site, ORDERS, "订单.csv").status_code == 200
    before = demand_stored(engine)
    lines = ORDERS.decode("utf-8-sig").splitlines()
    lines[2] = "116.323439,北纬40度,3,2024-05-13T11:09:53+08:00"  # row 3
    lines[7] = "116.323439,北纬40度,1,2024-05-13T11:09:53+08:00"  # row 8, the same bad value
    lines[9] = "116.5,40.0,1,2024-05-13T11:09:53+08:00"  # far east of Wudaokou
    r = upload_demand(site, ("\n".join(lines) + "\n").encode(), "bad.csv")
    assert r.status_code == 422, r.text
    error = r.text[r.text.index('<p class="error"'):r.text.index("</p>", r.text.index('<p class="error"'))]
    assert "\n" not in error and "bad.csv" in error and "北纬40度" in error and "3, 8" in error, error
    assert demand_stored(engine) == before
    r = upload_demand(site, ORDERS, "订单.csv", cell_size="二百")
    assert r.status_code == 422 and "cell_size" in r.text and "二百" in r.text
    r = upload_demand(site, b"a,b\n1,2\n", "notes.docx")
    assert r.status_code == 422 and "unsupported file type .docx" in r.text
    assert demand_stored(engine) == before


def test_a_planner_sees_the_demand_but_may_not_upload(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine)
    assert upload_demand(site, ORDERS, "订单.csv").status_code == 200
    site.cookies.clear()
    staff(site, engine, "规划员", "planner")
    page = site.get("/console/demand", params={"area": "wudaokou"}, headers=HTML)
    assert page.status_code == 200 and "605" in page.text and 'method="post" action="/console/demand"' not in page.text
    before = demand_stored(engine)
    r = site.post("/console/demand", headers=HTML, data={"area": "wudaokou", "csrf_token": form_token(page)},
                  files={"file": ("o.csv", ORDERS)})
    assert r.status_code == 403 and demand_stored(engine) == before


def test_a_planner_replaces_the_week_profile(site: httpx.Client, engine: Engine) -> None:
    staff(site, engine, "规划员", "planner")
    page = site.get("/console/demand", params={"area": "wudaokou"}, headers=HTML)
    assert page.status_code == 200 and "内置外卖周曲线" in page.text
    assert "<section" not in page.text.split("</title>")[0]
    wide = "小时,周一,周二,周三,周四,周五,周六,周日\n" + "\n".join(
        f"{h}," + ",".join("5" if h in (12, 18) else "1" for _ in range(7)) for h in range(24))

    def post(content: bytes | None, name: str = "曲线.csv", **fields: str) -> httpx.Response:
        token = form_token(site.get("/console/demand", params={"area": "wudaokou"}, headers=HTML))
        files = {"file": (name, content, "text/csv")} if content is not None else None
        return site.post("/console/demand/profile", headers=HTML, files=files,
                         data={"area": "wudaokou", "csrf_token": token, **fields})

    bad = wide.replace("\n3,1,", "\n3,很多,")
    r = post(bad.encode())
    assert r.status_code == 422 and "很多" in r.text and "nothing was imported" in r.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM demand_profiles")).scalar_one() == 0
    r = post(wide.encode())
    assert r.status_code == 200 and "曲线.csv" in r.text
    with engine.connect() as conn:
        weights = conn.execute(text("SELECT weights FROM demand_profiles")).scalar_one()
    assert len(weights) == 168 and abs(sum(weights) - 1) < 1e-9 and weights[12] == 5 * weights[3]
    r = post(None, clear="1")
    assert r.status_code == 200 and "内置" in r.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM demand_profiles")).scalar_one() == 0
