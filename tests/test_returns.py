"""The monthly return (月报): two consecutive months of a changed registry (the differences listed are exactly the
registry's changes), the workbook's print set-up, repeated header rows, totals and date cells read back with
openpyxl, the PDF's text in Chinese only with lang zh, the stored return replaced only when asked, the signers
remembered, the area's display name and its remembered extract; the ``yizhan report --month`` and
``yizhan area create --display-name`` commands."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from cli_runner import run_cli
from pyproj import Geod, Transformer
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area, import_units, remember_extract, remembered_extract
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import import_demand
from yizhan.errors import Conflict, InvalidInput
from yizhan.reports import drawing as report_map
from yizhan.reports.workbook import TOTAL_LABEL
from yizhan.returns.document import return_pdf
from yizhan.returns.period import Period, parse_period
from yizhan.returns.snapshot import compare
from yizhan.returns.store import PENDING, Signers, load_return, make_return
from yizhan.returns.workbook import CHANGE_COLUMNS, SHEETS, STATION_COLUMNS, TOWNSHIP_COLUMNS, return_xlsx
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

UTM50 = 32650
TO_LL = Transformer.from_crs(UTM50, 4326, always_xy=True)
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N, near Wudaokou
HEADER = "id,name,kind,lon,lat,host,address,township,amenities,opening_hours,seats,stars,status"
OCTOBER_NOW = datetime(2026, 10, 30, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
NOVEMBER_NOW = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 2026-12-01 01:30 in Beijing: still November in UTC
SETTINGS = Settings(timezone="Asia/Shanghai")
SIGNED = Signers("海淀区总工会", "王芳", "李强")
GEOD = Geod(ellps="WGS84")


def _ll(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LL.transform(ORIGIN[0] + x, ORIGIN[1] + y)
    return float(lon), float(lat)


# id -> (name, kind, x, y (metres from ORIGIN), amenities, hours, status, township); October's registry
OCTOBER = {
    "S1": ("成府路驿站", "large", 1000, 1500, "drinking_water;charging", "Mo-Fr 08:00-18:00", "active", "西街道"),
    "S2": ("清华东路驿站", "small", 5000, 1500, "toilet", "24/7", "active", "东街道"),
    "S3": ("学院路驿站", "small", 3000, 500, "charging", "24/7", "active", "东街道"),
    "S5": ("关闭的站", "mobile", 2000, 2500, "", "", "closed", "西街道"),
}
# November: S4 opened, S2 closed, S1's hours changed, S3 moved 400 m north; S5 unchanged
NOVEMBER = {
    **OCTOBER,
    "S1": (*OCTOBER["S1"][:5], "24/7", *OCTOBER["S1"][6:]),
    "S2": (*OCTOBER["S2"][:6], "closed", *OCTOBER["S2"][7:]),
    "S3": (*OCTOBER["S3"][:3], 900, *OCTOBER["S3"][4:]),
    "S4": ("知春路驿站", "small", 4000, 2500, "wifi", "Mo-Su 07:00-22:00", "active", "东街道"),
}
EXPECTED = {"opened": {"S4": set()}, "closed": {"S2": set()}, "changed": {"S1": {"hours"}, "S3": {"location"}}}


def _registry_csv(stations: dict[str, tuple], path: Path) -> Path:  # type: ignore[type-arg]
    lines = [HEADER]
    for sid, (name, kind, x, y, amen, hours, status, town) in stations.items():
        lon, lat = _ll(x, y)
        lines.append(f'{sid},{name},{kind},{lon:.9f},{lat:.9f},shop,{name}门前,{town},{amen},"{hours}",4,3,{status}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _area(engine: Engine, tmp_path: Path) -> None:
    """A 6 x 3 km area "grid" (UTM 50N) with two townships and demand at every 200 m cell."""
    (w, s), (e, n) = _ll(0, 0), _ll(6000, 3000)
    with engine.begin() as conn:
        area = ensure_area(conn, "grid", boundary=box(w, s, e, n), crs_epsg=UTM50, display_name="海淀区测试街道")
        (w0, s0), (w1, s1) = _ll(0, 0), _ll(2800, 3000)
        (e0, _), (e1, _) = _ll(2800, 0), _ll(6000, 3000)
        import_units(conn, area, gpd.GeoDataFrame({"name": ["西街道", "东街道"]},
                                                  geometry=[box(w0, s0, w1, s1), box(e0, s0, e1, s1)], crs=4326))
    xs, ys = np.meshgrid(np.arange(100, 6000, 200), np.arange(100, 3000, 200))
    lon, lat = TO_LL.transform(ORIGIN[0] + xs.ravel(), ORIGIN[1] + ys.ravel())
    demand = tmp_path / "demand.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "weight": 1.0}).to_csv(demand, index=False, float_format="%.10f")
    import_demand(engine, demand, area="grid", cell_size_m=200)


def _month(engine: Engine, tmp_path: Path, registry: dict[str, tuple], month: str,  # type: ignore[type-arg]
           now: datetime, signers: Signers = Signers(), **kw: object):  # type: ignore[no-untyped-def]
    import_stations(engine, _registry_csv(registry, tmp_path / f"registry_{month}.csv"), area="grid",
                    trust_coords=True)
    run_coverage(engine, area="grid", radius_m=1000)
    return make_return(engine, month, settings=SETTINGS, area="grid", signers=signers, now=now, **kw)


@pytest.fixture
def two_months(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The grid area's returns of 2026-10 (first) and 2026-11 (after the changed registry was imported)."""
    _area(engine, tmp_path)
    october = _month(engine, tmp_path, OCTOBER, "2026-10", OCTOBER_NOW, SIGNED)
    november = _month(engine, tmp_path, NOVEMBER, "2026-11", NOVEMBER_NOW)
    return october, november


def test_two_months_list_exactly_the_registry_changes(engine, two_months):
    october, november = two_months
    assert october.previous is None and len(october.changes) == 0
    assert november.previous is not None and november.previous.period == Period(2026, 10)
    got = {kind: {c.id: {f.field for f in c.fields} for c in getattr(november.changes, kind)}
           for kind in ("opened", "closed", "changed")}
    assert got == EXPECTED
    by_id = {c.id: c for c in november.changes.all}
    hours = by_id["S1"].fields[0]
    assert (hours.old, hours.new) == ("周一至周五 08:00–18:00", "24小时开放")  # the rules said in Chinese
    moved = by_id["S3"]
    lon0, lat0 = _ll(3000, 500)
    lon1, lat1 = _ll(3000, 900)
    assert moved.fields[0].old == f"{lon0:.6f}, {lat0:.6f}" and moved.fields[0].new == f"{lon1:.6f}, {lat1:.6f}"
    metres = GEOD.inv(lon0, lat0, lon1, lat1)[2]
    assert abs(metres - 400) < 1  # UTM scale factor near the central meridian's edge, under a metre
    assert f"移动 {metres:,.0f} 米" in moved.note and "moved" in moved.note
    assert "新登记" in by_id["S4"].note and by_id["S4"].name == "知春路驿站"
    assert by_id["S2"].note_zh == "运营 → 关闭"
    # the signers were remembered from October's return; the snapshot is the registry as imported
    r = november.record
    assert (r.union_name, r.preparer, r.reviewer) == ("海淀区总工会", "王芳", "李强")
    assert {s["id"] for s in r.stations} == set(NOVEMBER) and r.active_stations == 3  # S4 in, S2 out
    assert october.record.active_stations == 3
    # the same comparison with the stored snapshots turned round lists the reverse
    back = compare(november.record.stations, october.record.stations)
    assert {c.id for c in back.opened} == {"S2"} and {c.id for c in back.closed} == {"S4"}
    # last month's shares are October's
    towns = november.townships().set_index("name")
    october_shares = {u["name"]: u["covered_share"] for u in october.record.units}
    assert towns["share_last"].to_dict() == pytest.approx(october_shares)
    assert (towns["change"] == towns["share_now"] - towns["share_last"]).all()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM monthly_returns")).scalar_one() == 2


def test_a_return_measures_like_the_last_one_and_says_when_it_cannot(engine, two_months, tmp_path):
    _, november = two_months
    assert not november.notes()  # straight line, 1000 m both months; the run is newer than the registry
    straight = november.record.run_id
    run_coverage(engine, area="grid", radius_m=600)  # a newer run measured another way
    again = make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW, replace=True)
    assert again.record.run_id == straight  # the latest run measured like October's, not the newest run
    assert not again.notes()
    other = run_coverage(engine, area="grid", radius_m=600)["run_id"]
    told = make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW, replace=True,
                       run_id=other)
    assert [zh for zh, _ in told.notes()] == ["上月与本月的覆盖分析方法不同（距离算法或半径），覆盖率变化含方法差异"]
    assert "600 m" in told.notes()[0][1] and "1,000 m" in told.notes()[0][1]
    # a station changed after the run: the shares are not those of the registry
    import_stations(engine, _registry_csv({**NOVEMBER, "S9": NOVEMBER["S1"]}, tmp_path / "later.csv"),
                    area="grid", trust_coords=True)
    stale = make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW, replace=True)
    assert any("登记册在该覆盖分析之后有变更" in zh for zh, _ in stale.notes())
    cover = openpyxl.load_workbook(io.BytesIO(return_xlsx(stale)))[SHEETS["cover"]]
    assert any("登记册在该覆盖分析之后有变更" in str(c.value) for row in cover.iter_rows() for c in row)


def test_the_workbook_prints_and_holds_the_changes(two_months, tmp_path):
    _, november = two_months
    book = openpyxl.load_workbook(io.BytesIO(return_xlsx(november)))
    assert book.sheetnames == list(SHEETS.values())
    for ws in book.worksheets:
        assert int(ws.page_setup.paperSize) == 9, ws.title  # A4
        assert ws.page_setup.orientation in ("portrait", "landscape")
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1, ws.title
        assert ws.page_setup.fitToHeight == 0, ws.title
        assert ws.print_title_rows == "$1:$1", ws.title  # the header row on every printed page
        assert ws.freeze_panes == "A2"
        assert "海淀区总工会" in ws.oddHeader.center.text and "&P" in ws.oddFooter.center.text
    assert book[SHEETS["stations"]].page_setup.orientation == "landscape"  # 15 columns
    assert book[SHEETS["cover"]].page_setup.orientation == "portrait"

    cover = {ws_row[0].value: ws_row[1] for ws_row in book[SHEETS["cover"]].iter_rows(min_row=2)}
    assert cover["工会 union"].value == "海淀区总工会" and cover["区域 area"].value == "海淀区测试街道"
    assert cover["区域代码 area code name"].value == "grid"
    assert (cover["填报人 preparer"].value, cover["审核人 reviewer"].value) == ("王芳", "李强")
    made = cover["制表日期 made at"]
    assert made.is_date and made.value == datetime(2026, 12, 1, 1, 30)  # local time, a real date cell
    assert made.number_format == "yyyy-mm-dd hh:mm"
    period = cover["报告期 period"]
    assert period.is_date and period.value == datetime(2026, 11, 1) and "年" in period.number_format
    assert cover["开通 opened"].value == 1 and cover["关闭 closed"].value == 1 and cover["变更 changed"].value == 2
    assert cover["本月覆盖率 covered share now"].number_format == "0.0%"
    assert cover["拥挤、夜间关闭驿站 crowded, night-closed"].value == PENDING

    changes = book[SHEETS["changes"]]
    head = [c.value for c in changes[1]]
    assert head == list(CHANGE_COLUMNS.values())
    rows = [[c.value for c in r] for r in changes.iter_rows(min_row=2)]
    assert rows[-1][0] == TOTAL_LABEL and "开通 opened 1" in rows[-1][2]
    listed = {(r[1], r[3]) for r in rows[:-1]}
    assert listed == {("S4", None), ("S2", None), ("S1", "开放时间 hours"), ("S3", "位置 location")}

    towns = book[SHEETS["townships"]]
    assert [c.value for c in towns[1]] == list(TOWNSHIP_COLUMNS.values())
    body = list(towns.iter_rows(min_row=2, values_only=True))
    total = body[-1]
    assert total[0] == TOTAL_LABEL and total[4] == pytest.approx(november.record.figures["covered_share"])
    assert total[5] == pytest.approx(november.previous.figures["covered_share"])
    assert total[6] == pytest.approx(total[4] - total[5])
    assert total[2] == pytest.approx(sum(r[2] for r in body[:-1]))  # demand: the sum of the townships
    assert towns.cell(towns.max_row, 5).number_format == "0.0%"

    stations = book[SHEETS["stations"]]
    head = [c.value for c in stations[1]]
    assert head == list(STATION_COLUMNS.values())
    values = {r[0]: dict(zip(head, r, strict=True)) for r in stations.iter_rows(min_row=2, values_only=True)}
    assert values["S1"]["服务设施 amenities"] == "饮水、充电" and values["S1"]["开放时间 hours"] == "24小时开放"
    assert values["S2"]["状态 status"] == "关闭"
    assert str(values[TOTAL_LABEL]["名称 name"]).startswith("5 个驿站")
    assert values[TOTAL_LABEL]["座位数 seats"] == 20


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    assert data.startswith(b"%PDF-")
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("poppler-utils (pdftotext) missing in CI")
        pytest.skip("poppler-utils not installed: the PDF's text is not checked")
    path = tmp_path / "return.pdf"
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M) and "(A4)" in info, info
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_the_pdf_in_chinese_only_when_asked(two_months, tmp_path):
    if report_map.cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: fonts-wqy-zenhei or fonts-noto-cjk)")
    _, november = two_months
    zh = _pdf_text(return_pdf(november, lang="zh"), tmp_path)
    for words in ("海淀区总工会", "2026年11月", "海淀区测试街道", "王芳", "李强", "知春路驿站", "清华东路驿站",
                  "西街道", "合计", "营业时间分析"):
        assert words in zh, words
    assert not re.search(r"monthly return|covered share|opened|township", zh)
    both = _pdf_text(return_pdf(november), tmp_path)
    assert "海淀区总工会" in both and "monthly return" in both and "covered share" in both


def test_a_month_is_made_once_unless_replaced(engine, two_months, tmp_path):
    _, november = two_months
    with pytest.raises(Conflict, match=r"2026-11.*--replace"):
        make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW)
    again = make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW, replace=True,
                        signers=Signers(reviewer="赵敏"))
    assert again.record.id != november.record.id and again.record.reviewer == "赵敏"
    assert again.record.preparer == "王芳"  # the rest as on the last return
    assert {c.id for c in again.changes.all} == {c.id for c in november.changes.all}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM monthly_returns")).scalar_one() == 2
    loaded = load_return(engine, "2026-11", settings=SETTINGS, area="grid", now=NOVEMBER_NOW)
    assert loaded.record.reviewer == "赵敏" and loaded.previous is not None


def test_the_first_return_needs_its_signers_and_a_month_that_has_begun(engine, tmp_path):
    _area(engine, tmp_path)
    import_stations(engine, _registry_csv(OCTOBER, tmp_path / "r.csv"), area="grid")
    run_coverage(engine, area="grid", radius_m=1000)
    with pytest.raises(InvalidInput, match=r"--preparer、--reviewer.*first return"):
        make_return(engine, "2026-10", settings=SETTINGS, area="grid", now=OCTOBER_NOW, signers=Signers("工会"))
    with pytest.raises(InvalidInput, match=r"2026-11.*has not begun.*2026-10"):
        make_return(engine, "2026-11", settings=SETTINGS, area="grid", now=OCTOBER_NOW, signers=SIGNED)
    with pytest.raises(InvalidInput, match=r"'11/2026'.*YYYY-MM"):
        make_return(engine, "11/2026", settings=SETTINGS, area="grid", now=OCTOBER_NOW, signers=SIGNED)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM monthly_returns")).scalar_one() == 0


def test_periods_follow_the_time_zone():
    # 2026-11-30 17:30 UTC is already December in Beijing
    assert parse_period("2026-12", now=NOVEMBER_NOW, tz="Asia/Shanghai") == Period(2026, 12)
    with pytest.raises(InvalidInput, match="2026-12"):
        parse_period("2026-12", now=NOVEMBER_NOW, tz="UTC")
    assert parse_period("2026年3月", now=NOVEMBER_NOW, tz="UTC").first_day == date(2026, 3, 1)
    assert parse_period("202601", now=NOVEMBER_NOW, tz="UTC").previous() == Period(2025, 12)
    with pytest.raises(InvalidInput, match="2026-13"):
        parse_period("2026-13", now=NOVEMBER_NOW, tz="UTC")


def test_gaps_are_named_by_the_remembered_extract(engine, sample_area, sample_extract, settings, osm_path,
                                                   tmp_path):
    assert sample_extract.display_name == "北京市海淀区五道口（示例）"  # what the demo stores for its area
    run_coverage(engine, area=sample_area.name, radius_m=600, mode="network", profile="walk", settings=settings)
    with engine.begin() as conn:
        assert remembered_extract(conn, sample_area.id) is None
        remember_extract(conn, sample_area.id, osm_path)
        assert remembered_extract(conn, sample_area.id) == osm_path.resolve()
    now = datetime.now(UTC)
    month = f"{now.year}-{now.month:02d}"
    ret = make_return(engine, month, settings=settings, area=sample_area.name, signers=SIGNED)
    assert ret.record.gaps and ret.record.figures["streets_source"] == osm_path.name
    streets = [g["street"] for g in ret.record.gaps if g["street"]]
    assert streets and all(g["location"].startswith(g["street"]) for g in ret.record.gaps if g["street"])


def test_report_month_and_display_name_commands(engine, db_url, tmp_path, osm_path, cli_env):
    _area(engine, tmp_path)
    import_stations(engine, _registry_csv(OCTOBER, tmp_path / "r.csv"), area="grid")
    run_coverage(engine, area="grid", radius_m=1000)
    proc = run_cli("area", "create", "grid", "--display-name", "北京市海淀区测试街道", env=cli_env)
    assert "北京市海淀区测试街道" in proc.stdout
    assert "北京市海淀区测试街道" in run_cli("area", "list", env=cli_env).stdout
    now = datetime.now(UTC).astimezone()
    month = f"{now.year}-{now.month:02d}"
    out = tmp_path / "returns"
    proc = run_cli("report", "--area", "grid", "--month", month, "--out", str(out), env=cli_env, check=False)
    assert proc.returncode == 2 and "--union" in proc.stderr, proc.stderr
    proc = run_cli("report", "--area", "grid", "--month", month, "--union", "海淀区总工会", "--preparer", "王芳",
                   "--reviewer", "李强", "--lang", "zh", "--out", str(out), env=cli_env)
    assert "首份月报" in proc.stdout
    assert {p.name for p in out.iterdir()} == {f"return_grid_{month}.xlsx", f"return_grid_{month}.pdf"}
    cover = openpyxl.load_workbook(out / f"return_grid_{month}.xlsx")[SHEETS["cover"]]
    assert cover["B3"].value == "北京市海淀区测试街道"
    proc = run_cli("report", "--area", "grid", "--month", month, "--format", "xlsx", env=cli_env, check=False)
    assert proc.returncode != 0 and "--replace" in proc.stderr
    proc = run_cli("report", "--area", "grid", "--month", month, "--format", "csv", env=cli_env, check=False)
    assert proc.returncode == 2 and "xlsx" in proc.stderr and "csv" in proc.stderr
    proc = run_cli("report", "--area", "grid", "--month", month, "--replace", "--lang", "fr", env=cli_env,
                   check=False)
    assert proc.returncode == 2 and "zh-en" in proc.stderr
    # the gap report prints the display name and keeps its print set-up; its PDF takes the same languages
    proc = run_cli("report", "--area", "grid", "--format", "pdf", "--lang", "en", env=cli_env, check=False)
    assert proc.returncode == 2 and "zh-en" in proc.stderr
    run_cli("report", "--area", "grid", "--format", "xlsx", "--out", str(tmp_path / "gaps"), env=cli_env)
    gaps = openpyxl.load_workbook(next((tmp_path / "gaps").glob("*.xlsx")))
    summary = {r[0]: r[1] for r in gaps.worksheets[0].iter_rows(min_row=2, values_only=True)}
    assert summary["研究区 area"] == "北京市海淀区测试街道 (grid)"
    assert isinstance(summary["运行时间 created at"], datetime)
    assert all(ws.print_title_rows == "$1:$1" and ws.page_setup.fitToWidth == 1 for ws in gaps.worksheets)
    # building the network from an extract remembers it for the area
    (w, s, e, n) = (116.3084, 39.9905, 116.3320, 40.0123)
    run_cli("area", "create", "wudaokou", "--bbox", f"{w},{s},{e},{n}", env=cli_env)
    run_cli("network", "build", "--area", "wudaokou", "--osm", str(osm_path), "--profile", "walk", env=cli_env)
    with engine.connect() as conn:
        area_id = conn.execute(text("SELECT id FROM areas WHERE name = 'wudaokou'")).scalar_one()
        assert remembered_extract(conn, area_id) == osm_path.resolve()
