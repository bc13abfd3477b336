"""Nothing dangerous goes out: every CSV and XLSX yizhan writes (the stations export, the gap report's CSV and
workbook, through the service, the ``yizhan`` command and the staff routes over HTTP) keeps text that begins with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return from being a live formula: CSV cells get one leading
apostrophe (OWASP), XLSX cells are text cells; numbers stay numbers; our own import reads the originals back."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from cli_runner import run_cli
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import ensure_area, import_units, resolve_area
from yizhan.coverage.analysis import run_coverage
from yizhan.data.demand import import_demand
from yizhan.data.sample import SampleArea
from yizhan.db.engine import make_engine
from yizhan.reports.run_report import GAP_COLUMNS, SHEETS, STATION_COLUMNS, UNIT_COLUMNS, load_report
from yizhan.reports.writer import write_report
from yizhan.settings import Settings
from yizhan.stations.cells import FORMULA_STARTS, keep_text, neutralise, neutralise_frame, restore_text
from yizhan.stations.export import HEADERS, write_stations
from yizhan.stations.importer import StationRecord
from yizhan.stations.registry import export_frame, upsert_stations
from yizhan.stations.service import export_stations

UTM50 = 32650
TO_LL = Transformer.from_crs(UTM50, 4326, always_xy=True)
ORIGIN = (440_000.0, 4_427_000.0)  # metres in UTM 50N, near Wudaokou
KEY = "exports-key"
STAFF = {"X-API-Key": KEY}
AREA = "hostile"
HYPERLINK = '=HYPERLINK("http://x","y")'
# id, name, address, township, x, y (metres from ORIGIN), status
STATIONS = [
    ("S1", HYPERLINK, "+1 成府路", "-2", 1000, 1500, "active"),
    ("S2", "+1", "@SUM(A1)", "=1+1", 5000, 1500, "active"),
    ("-3", "-2", "=cmd|' /C calc'!A0", "@街道", 3000, 2600, "active"),
    ("S4", "@SUM(A1)", "'=已有引号", "+街道", 3000, 400, "active"),
    ("S5", "普通驿站", "成府路1号", "西街道", 200, 200, "closed"),
    ("T1", "\t=TAB", "\r=CR", "正常街道", 5800, 2800, "closed"),
]
TEXT_FIELDS = ("id", "name", "address", "township")
UNITS = ("=西片区", "+东片区")


def _ll(x, y):  # type: ignore[no-untyped-def]
    return TO_LL.transform(ORIGIN[0] + np.asarray(x, float), ORIGIN[1] + np.asarray(y, float))


def _originals() -> dict[str, dict[str, str]]:
    return {s[0]: dict(zip(TEXT_FIELDS, s[:4], strict=True)) for s in STATIONS}


def _build(engine: Engine, tmp: Path) -> int:
    """A 6 x 3 km area whose stations, addresses, townships and units begin with formula characters; a coverage
    run over it at 600 m (many gaps, each naming its nearest station). Returns the run id."""
    lo, la = _ll([0, 6000], [0, 3000])
    with engine.begin() as conn:
        area = ensure_area(conn, AREA, boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)
        (w0, w1), (s0, s1) = _ll([0, 3000], [0, 3000])
        (e0, e1), _ = _ll([3000, 6000], [0, 3000])
        import_units(conn, area, gpd.GeoDataFrame({"name": list(UNITS)},
                                                  geometry=[box(w0, s0, w1, s1), box(e0, s0, e1, s1)], crs=4326))
        records = []
        for sid, name, address, township, x, y, status in STATIONS:
            lon, lat = _ll(x, y)
            records.append(StationRecord(sid, name, "small", float(lon), float(lat), address=address,
                                         township=township, seats=4, status=status))
        upsert_stations(conn, area.id, area.name, records)  # as stored: tab and CR too, which an import trims
    xs, ys = np.meshgrid(np.arange(100, 6000, 200), np.arange(100, 3000, 200))
    dlon, dlat = _ll(xs.ravel(), ys.ravel())
    demand = tmp / "demand.csv"
    pd.DataFrame({"lon": dlon, "lat": dlat, "weight": 1.0}).to_csv(demand, index=False, float_format="%.10f")
    import_demand(engine, demand, area=AREA, cell_size_m=200)
    return int(run_coverage(engine, area=AREA, radius_m=600.0)["run_id"])


@pytest.fixture(scope="module")
def hostile(fresh_database, tmp_path_factory) -> Iterator[tuple[Engine, str, int]]:  # type: ignore[no-untyped-def]
    """The hostile area and its run in a database of the module's own: (engine, database url, run id)."""
    with fresh_database() as url:
        engine = make_engine(url)
        try:
            yield engine, url, _build(engine, tmp_path_factory.mktemp("hostile"))
        finally:
            engine.dispose()


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    """The ``yizhan`` command's environment for the module's database (no YIZHAN_* from outside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")}
    env.update(DATABASE_URL=url, YIZHAN_OUT_DIR=str(tmp_path / "out"), YIZHAN_DATA_DIR=str(tmp_path / "data"),
               COLUMNS="200")
    return env


# -- checks ----------------------------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    """The CSV's rows (UTF-8, with or without a BOM) by header, after checking that no text cell in it would start
    a formula: every cell beginning with a formula character is a number."""
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows
    ragged = [r for r in rows if None in r or None in r.values()]
    assert not ragged, f"rows with more or fewer fields than the header: {ragged}"
    live = [(i, k, v) for i, r in enumerate(rows) for k, v in r.items() if v[:1] in FORMULA_STARTS
            and not _is_number(v)]
    assert not live, f"cells that a spreadsheet runs as formulas: {live}"
    return rows


def _workbook(data: bytes) -> openpyxl.Workbook:
    """The workbook, after checking that no cell of any sheet is a formula and every text cell is a text cell."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (ws.title, cell.coordinate, cell.value, cell.data_type)
    return book


def _column(ws, header: str) -> list[object]:  # type: ignore[no-untyped-def]
    """The column's values under the header, without a report's totals row (its first cell 合计 total)."""
    heads = [c.value for c in ws[1]]
    j = heads.index(header) + 1
    last = ws.max_row - (str(ws.cell(ws.max_row, 1).value).startswith("合计 total"))
    return [ws.cell(i, j).value for i in range(2, last + 1)]


def _check_stations_csv(data: bytes, head: dict[str, str] | None = None) -> None:
    head = head or {f: f for f in (*TEXT_FIELDS, "lon", "lat", "seats")}
    rows = _csv_rows(data)
    want = _originals()
    got = {restore_text(r[head["id"]]): {f: r[head[f]] for f in (*TEXT_FIELDS, "lon", "lat", "seats")} for r in rows}
    assert set(got) == set(want)
    for sid, fields in want.items():
        for f, value in fields.items():
            assert got[sid][f] == neutralise(value), (sid, f, got[sid][f])
        assert _is_number(got[sid]["lon"]) and _is_number(got[sid]["lat"]) and got[sid]["seats"] == "4"
    assert got["S5"]["name"] == "普通驿站" and got["S4"]["address"] == "''=已有引号"
    assert got["S1"]["name"] == "'" + HYPERLINK and got["S2"]["name"] == "'+1" and got["-3"]["name"] == "'-2"


def _check_stations_sheet(ws, labels: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    head = labels or {f: f for f in (*TEXT_FIELDS, "lon")}
    want = _originals()
    ids = _column(ws, head["id"])
    assert set(ids) == set(want)
    for f in TEXT_FIELDS:
        # XML reads a carriage return in a cell's text as a line feed (line-end normalisation)
        expected = {k: v[f].replace("\r", "\n") for k, v in want.items()}
        assert dict(zip(ids, _column(ws, head[f]), strict=True)) == expected, f
    heads = [c.value for c in ws[1]]
    lon_col = heads.index(head["lon"]) + 1
    assert all(ws.cell(i, lon_col).data_type == "n" for i in range(2, ws.max_row + 1))


def _check_gaps_csv(data: bytes) -> None:
    rows = _csv_rows(data)
    names = {s[1] for s in STATIONS}
    nearest = [r[GAP_COLUMNS["nearest_station"]] for r in rows]
    assert nearest and all(restore_text(n) in names for n in nearest)
    assert all(n == neutralise(restore_text(n)) for n in nearest)
    assert any(n.startswith("'") for n in nearest)
    addresses = {s[1]: s[2] for s in STATIONS}
    for r in rows:
        name = restore_text(r[GAP_COLUMNS["nearest_station"]])
        assert r[GAP_COLUMNS["nearest_station_address"]] == neutralise(addresses[name])
        assert float(r[GAP_COLUMNS["demand"]]) > 0


def _check_gaps_xlsx(data: bytes) -> None:
    book = _workbook(data)
    assert book.sheetnames == list(SHEETS.values())
    gaps = book[SHEETS["gaps"]]
    names = {s[1] for s in STATIONS}
    nearest = _column(gaps, GAP_COLUMNS["nearest_station"])
    assert nearest and set(nearest) <= names
    assert set(nearest) & {HYPERLINK, "+1", "-2", "@SUM(A1)"}
    assert all(isinstance(v, (int, float)) for v in _column(gaps, GAP_COLUMNS["demand"]))
    units = _column(book[SHEETS["units"]], UNIT_COLUMNS["name"])
    assert set(UNITS) <= set(units)
    _check_stations_sheet(book[SHEETS["stations"]], STATION_COLUMNS)


# -- the helper ------------------------------------------------------------------------------------------------
def test_cells_neutralise_text_and_restore_it():
    texts = [HYPERLINK, "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'=x", "''-1", "'", "''", "", "a=b", "普通",
             "'plain", " =x"]
    for t in texts:
        assert restore_text(neutralise(t)) == t, t
        assert neutralise(t)[:1] not in FORMULA_STARTS
    assert neutralise("=x") == "'=x" and neutralise("'=x") == "''=x" and neutralise("'plain") == "'plain"
    assert neutralise(-12.5) == -12.5 and neutralise(None) is None
    df = pd.DataFrame({"name": ["-2", "ok", None], "value": [-12.5, 3.0, np.nan], "n": [-1, 2, 3]})
    out = neutralise_frame(df).to_csv(index=False)
    assert out.splitlines() == ["name,value,n", "'-2,-12.5,-1", "ok,3.0,2", ",,3"]
    assert df["name"].iloc[0] == "-2"  # the caller's frame is left as it was
    book = openpyxl.Workbook()
    ws = book.active
    ws.append([HYPERLINK, "+1", -12.5, "ok"])
    keep_text(ws)
    buf = io.BytesIO()
    book.save(buf)
    row = list(openpyxl.load_workbook(io.BytesIO(buf.getvalue())).active[1])
    assert [(c.value, c.data_type) for c in row] == [(HYPERLINK, "s"), ("+1", "s"), (-12.5, "n"), ("ok", "s")]
    assert row[0].quotePrefix and row[1].quotePrefix and not row[3].quotePrefix


# -- the stations export -----------------------------------------------------------------------------------------
def test_stations_export_writes_no_formulas(hostile, tmp_path):
    engine, url, _ = hostile
    path, n = export_stations(engine, tmp_path / "st.csv", area=AREA)
    assert n == len(STATIONS)
    _check_stations_csv(path.read_bytes())
    path, _ = export_stations(engine, tmp_path / "st.xlsx", area=AREA)
    _check_stations_sheet(_workbook(path.read_bytes())["stations"])
    env = _env(url, tmp_path)
    for suffix in ("csv", "xlsx"):
        out = tmp_path / f"cli.{suffix}"
        run_cli("stations", "export", str(out), "--area", AREA, env=env)
        if suffix == "csv":
            _check_stations_csv(out.read_bytes())
        else:
            _check_stations_sheet(_workbook(out.read_bytes())["stations"])


def test_chinese_stations_export_writes_no_formulas(hostile, tmp_path):
    """The export in Chinese (headers and labels) keeps text out of formulas as the English one does; GeoJSON and
    GeoPackage, which no spreadsheet runs, hold the text as it is."""
    engine, _, _ = hostile
    with engine.connect() as conn:
        df = export_frame(conn, resolve_area(conn, AREA).id)
    zh = HEADERS["zh"]
    _check_stations_csv(write_stations(df, tmp_path / "st.csv", lang="zh").read_bytes(), zh)
    _check_stations_sheet(_workbook(write_stations(df, tmp_path / "st.xlsx", lang="zh").read_bytes())["站点"], zh)
    names = {k: v["name"] for k, v in _originals().items()}
    gdf = gpd.read_file(write_stations(df, tmp_path / "st.gpkg", lang="zh"))
    assert dict(zip(gdf["编号"], gdf["名称"], strict=True)) == names
    doc = json.loads(write_stations(df, tmp_path / "st.geojson", lang="zh").read_text(encoding="utf-8"))
    assert {f["properties"]["编号"]: f["properties"]["名称"] for f in doc["features"]} == names


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_stations_export_round_trip_through_import(hostile, tmp_path, suffix):
    """An exported registry imports back (``yizhan stations import`` into a new area) as the values it was written
    from. T1's leading tab and carriage return aside: an import trims every value, so T1 is left out."""
    engine, url, _ = hostile
    want = {k: v for k, v in _originals().items() if k != "T1"}
    lo, la = _ll([0, 6000], [0, 3000])
    copy = f"copy_{suffix}"
    with engine.begin() as conn:
        ensure_area(conn, copy, boundary=box(lo[0], la[0], lo[1], la[1]), crs_epsg=UTM50)
    out = tmp_path / f"st.{suffix}"
    export_stations(engine, out, area=AREA)
    run_cli("stations", "import", str(out), "--area", copy, env=_env(url, tmp_path))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT s.external_id, s.name, s.address, s.township FROM stations s "
                                 "JOIN areas a ON a.id = s.area_id WHERE a.name = :a"), {"a": copy}).all()
    got = {r[0]: dict(zip(TEXT_FIELDS, r, strict=True)) for r in rows}
    assert {k: got.get(k) for k in want} == want


# -- the gap report --------------------------------------------------------------------------------------------
def test_gap_report_writes_no_formulas(hostile, tmp_path):
    engine, url, rid = hostile
    paths = write_report(load_report(engine, rid), tmp_path / "rep", ["csv", "xlsx"])
    _check_gaps_csv(paths["csv"].read_bytes())
    _check_gaps_xlsx(paths["xlsx"].read_bytes())
    run_cli("report", "--run", str(rid), "--format", "csv,xlsx", "--out", str(tmp_path / "cli"),
            env=_env(url, tmp_path))
    _check_gaps_csv((tmp_path / "cli" / f"gaps_run{rid}.csv").read_bytes())
    _check_gaps_xlsx((tmp_path / "cli" / f"gaps_run{rid}.xlsx").read_bytes())


def test_gap_report_routes_serve_no_formulas(hostile, tmp_path, live_api):
    _, url, rid = hostile
    client = live_api(Settings(database_url=url, staff_key=KEY, data_dir=tmp_path / "data"), timeout=60)
    for route in (f"/runs/{rid}/gaps.csv", "/gaps.csv"):
        r = client.get(route, headers=STAFF)
        assert r.status_code == 200, r.text[:300]
        _check_gaps_csv(r.content)
    r = client.get(f"/runs/{rid}/gaps.xlsx", headers=STAFF)
    assert r.status_code == 200, r.text[:300]
    _check_gaps_xlsx(r.content)


# -- the sample-area builder's files ------------------------------------------------------------------------------
def test_sample_area_stations_csv_writes_no_formulas(tmp_path):
    """The demo's stations file carries names from OpenStreetMap, which anyone may edit."""
    lon, lat = _ll([1000, 2000], [1000, 1000])
    stations = pd.DataFrame({"id": ["OSM1", "OSM2"], "name": [HYPERLINK, "普通驿站"], "kind": "small",
                             "lon": lon, "lat": lat, "address": ["@SUM(A1)", "-2"], "seats": [4, 6]})
    demand = pd.DataFrame({"lon": lon, "lat": lat, "weight": [-12.5, 2.0]})
    sample = SampleArea("s", box(0, 0, 1, 1), UTM50, stations, demand, "synthetic")
    paths = sample.write(tmp_path)
    rows = _csv_rows(paths["stations"].read_bytes())
    assert [r["name"] for r in rows] == ["'" + HYPERLINK, "普通驿站"]
    assert [r["address"] for r in rows] == ["'@SUM(A1)", "'-2"] and [r["seats"] for r in rows] == ["4", "6"]
    assert [float(r["lon"]) for r in rows] == pytest.approx(list(lon), abs=1e-9)
    assert [r["weight"] for r in _csv_rows(paths["demand"].read_bytes())] == ["-12.5", "2.0"]
