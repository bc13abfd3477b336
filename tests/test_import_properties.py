"""Property-based proof of the station importer: nothing bad gets in, and what gets in is what the file said.

Hypothesis feeds the importer random bytes, random CSV structures (headers drawn from the accepted names and junk,
every separator, quoting, ragged rows, full-width digits, formulas, huge numbers, empty cells) and random XLSX
workbooks (written by openpyxl: several sheets, merged title rows, formulas, numbers and text), against a real
PostGIS database that already holds the Wudaokou registry. After every file either

- the import is refused cleanly: ``InvalidInput`` (``ImportRejected`` naming rows), no other exception type, and
  a full dump of the stored registry is the same as before; or
- every row is stored exactly as the file gave it, after the documented normalisations (surrounding spaces
  stripped, full-width digits read as digits, vocabulary labels stored as their codes, an exported CSV cell's
  protective apostrophe removed, ``status`` active when empty).

One HTTP variant sends random bodies to ``POST /stations/import``: never a 500.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from conftest import WUDAOKOU_BOUNDS
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from live_server import live_server
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.api import create_app
from yizhan.areas import ensure_area
from yizhan.db.engine import make_engine
from yizhan.errors import ImportRejected, InvalidInput
from yizhan.settings import Settings
from yizhan.stations import vocab
from yizhan.stations.columns import ALIASES, CHINESE_HEADERS
from yizhan.stations.service import import_stations

pytestmark = pytest.mark.fuzz

KEY = "k"
AREA = "wudaokou"
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "data" / "samples" / "stations_sample.csv"
WEST, SOUTH, EAST, NORTH = WUDAOKOU_BOUNDS
FIELDS = ["id", "name", "kind", "lon", "lat", "host", "address", "township", "amenities", "opening_hours",
          "seats", "stars", "status"]
REQUIRED = ["id", "name", "kind", "lon", "lat"]
TEXT_FIELDS = ("name", "address", "township")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
AMENITY_SPLIT = re.compile(r"[;；,，、|]")
COMMON = settings(max_examples=40, derandomize=True, deadline=None, database=None)


@dataclass
class Registry:
    engine: Engine
    area_id: int


@pytest.fixture(scope="module")
def registry(fresh_database: Callable[[], contextlib.AbstractContextManager[str]]) -> Iterator[Registry]:
    """A database of its own for the module holding Wudaokou and the sample registry (35 stations)."""
    with fresh_database() as url:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                area = ensure_area(conn, AREA, boundary=box(*WUDAOKOU_BOUNDS), source="test")
            import_stations(engine, SAMPLE_CSV, area=AREA)
            yield Registry(engine, area.id)
        finally:
            engine.dispose()


def dump(reg: Registry) -> list[tuple[Any, ...]]:
    """Every stored station of every area, every column (the point as text), in id order."""
    with reg.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, area_id, external_id, name, kind, host, address, township, amenities, opening_hours, seats, "
            "stars, status, ST_AsText(geom), updated_at FROM stations ORDER BY id"))]


# --- the oracle: what a row of the file means ------------------------------------------------------------------


def _plain(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _restore(value: str) -> str:
    """A CSV cell as read back: the apostrophe our exports put before a formula-like text is taken off."""
    return value[1:] if value.startswith("'") and value.lstrip("'")[:1] in FORMULA_STARTS else value


def expected_row(cells: dict[str, Any], *, csv_file: bool) -> dict[str, Any]:
    """The stored values of a row the file gives as ``cells`` (field -> cell value), if it is stored at all."""
    def txt(f: str) -> str:
        v = cells.get(f, "")
        s = v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)
        s = s.strip()
        return _restore(s) if csv_file else s

    def num(f: str) -> float | None:
        v = cells.get(f, "")
        return float(v) if isinstance(v, (int, float)) else float(_plain(v)) if _plain(v) else None

    amenities: list[str] = []
    for a in filter(None, (x.strip() for x in AMENITY_SPLIT.split(txt("amenities")))):
        code = vocab.canonical("amenity", a)
        if code not in amenities:
            amenities.append(code)
    seats = num("seats")
    host = txt("host")
    return {
        "name": txt("name"), "kind": vocab.canonical("kind", txt("kind")),
        "host": (vocab.canonical("host", host) or vocab.host_type_of_name(host)) if host else None,
        "address": txt("address") or None, "township": txt("township") or None, "amenities": amenities,
        "opening_hours": txt("opening_hours") or None, "seats": None if seats is None else int(seats),
        "stars": vocab.stars_of(txt("stars")),
        "status": vocab.canonical("status", txt("status")) if txt("status") else "active",
        "lon": num("lon"), "lat": num("lat"),
    }


def stored(reg: Registry, ids: list[str]) -> dict[str, dict[str, Any]]:
    with reg.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT external_id, name, kind, host, address, township, amenities, opening_hours, seats, stars, status, "
            "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations WHERE area_id = :a AND external_id = ANY(:ids)"),
            {"a": reg.area_id, "ids": ids}).mappings()
        return {r["external_id"]: {k: v for k, v in r.items() if k != "external_id"} for r in rows}


def check_import(reg: Registry, data: bytes, filename: str, rows: list[dict[str, Any]] | None, *,
                 must_refuse: bool = False, bad_rows: tuple[int, ...] = ()) -> bool:
    """Import ``data``; assert a clean refusal with the registry unchanged, or ``rows`` stored exactly (``rows`` None:
    random bytes, no oracle). ``must_refuse``: the file is broken (a ragged row, a formula without a value); a
    refusal naming rows then names ``bad_rows``. True if the file was imported."""
    before = dump(reg)
    try:
        report = import_stations(reg.engine, filename, area=AREA, data=data, filename=filename)
    except InvalidInput as exc:
        message = str(exc)
        assert message.strip(), "a refusal says why"
        assert "Traceback" not in message
        if isinstance(exc, ImportRejected):
            assert exc.problems, message
            assert all(isinstance(p.row, int) and p.row >= 1 for p in exc.problems), message
            if bad_rows:
                assert set(bad_rows) & {p.row for p in exc.problems}, (bad_rows, message)
        assert dump(reg) == before, f"a refused import changed the registry: {message}"
        _event(f"refused: {type(exc).__name__}")
        return False
    _event("imported")
    assert not must_refuse, f"a broken file was imported: {report}"
    if rows is None:
        return True
    given_rows = [r for r in rows if any(str(v).strip() for v in r.values())]
    csv_file = filename.lower().endswith((".csv", ".txt", ".tsv"))
    want = {_id(r, csv_file): expected_row(r, csv_file=csv_file) for r in given_rows}
    assert len(want) == len(given_rows), "rows with the same id were all imported"
    got = stored(reg, list(want))
    assert set(got) == set(want), (sorted(want), sorted(got))
    for sid, exp in want.items():
        have = got[sid]
        for f in ("lon", "lat"):
            assert exp[f] is not None and math.isclose(have[f], exp[f], abs_tol=1e-9), (sid, f, have[f], exp[f])
        assert {k: v for k, v in have.items() if k not in ("lon", "lat")} == \
               {k: v for k, v in exp.items() if k not in ("lon", "lat")}, sid
    return True


def _event(outcome: str) -> None:
    """Count the outcome in Hypothesis's statistics (``--hypothesis-show-statistics``) when a property runs."""
    if currently_in_test_context():
        event(outcome)


def _id(cells: dict[str, Any], csv_file: bool) -> str:
    v = str(cells.get("id", "")).strip()
    return _restore(v) if csv_file else v


# --- the files ---------------------------------------------------------------------------------------------------

SAFE_TEXT = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="\x00"), max_size=10)
FORMULAS = ["=1+1", "=HYPERLINK(\"http://x\",\"y\")", "+86 10 6275", "-2", "@SUM(A1:A2)", "'=1+1", "'-x"]


def _coordinates(lo: float, hi: float) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    """(good, bad) coordinate texts between ``lo`` and ``hi`` degrees: ASCII or full-width digits; junk, huge,
    non-finite."""
    good = st.floats(lo, hi).map(lambda v: f"{v:.6f}")
    full_width = good.map(lambda s: s.translate(str.maketrans("0123456789.", "０１２３４５６７８９．")))
    return (st.one_of(good, full_width),
            st.sampled_from(["", "nan", "inf", "1e309", "9" * 40, "abc", "116,32", "=116.32", "-0"]))


def _both(good: list[str], bad: list[str]) -> tuple[st.SearchStrategy[str], st.SearchStrategy[str]]:
    return st.sampled_from(good), st.sampled_from(bad)


TEXT = st.one_of(*[SAFE_TEXT] * 5, st.sampled_from(FORMULAS))
VALUES: dict[str, tuple[st.SearchStrategy[str], st.SearchStrategy[str]]] = {
    "id": (st.one_of(st.sampled_from(["P1", "P2", "P3", "SAMPLE-001", "SAMPLE-002", "１２"]),
                     SAFE_TEXT.map(lambda s: "Q" + s)), st.sampled_from(["", "=P4", "\x00"])),
    "name": (TEXT.map(lambda s: "站" + s if not s or s[0] not in "=+-@'" else s), st.just("")),
    "kind": _both(["large", "small", "mobile", "大型", "小型", "流动", " Small "], ["huge", ""]),
    "lon": _coordinates(WEST + 0.001, EAST - 0.001),
    "lat": _coordinates(SOUTH + 0.001, NORTH - 0.001),
    "host": _both(["", "bank", "shop", "加油站"], ["castle"]),
    "address": (TEXT, st.just("x" * 301)),
    "township": (TEXT, st.just("x" * 101)),
    "amenities": _both(["", "wifi", "toilet;wifi", "卫生间、饮水", "wifi;wifi"], ["jacuzzi"]),
    "opening_hours": _both(["", "24/7", "Mo-Fr 08:00-20:00"], ["Mo-Fr 25:00-26:00", "always"]),
    "seats": _both(["", "0", "12", "１２", "1e3"], ["10001", "1.5", "9" * 30, "=1+1", "-1"]),
    "stars": _both(["", "1", "5", "３"], ["6", "0", "x"]),
    "status": _both(["", "active", "closed", "运营", "关闭"], ["open"]),
}
"""(good, bad) cell texts of each field."""
HEADER_NAMES = {f: [f] + [k for k, v in {**CHINESE_HEADERS, **ALIASES}.items() if v == f] for f in FIELDS}
JUNK_HEADERS = ["备注", "remark", "Unnamed", "", "id2"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(fields, headers, rows): the columns in file order (a field name, or '' for a junk column), their header
    cells, and the rows as field -> cell text."""
    optional = draw(st.lists(st.sampled_from(FIELDS[5:]), unique=True, max_size=8))
    missing = draw(st.sampled_from([None] * 15 + REQUIRED))  # a required column is now and then missing
    required = [f for f in REQUIRED if f != missing]
    fields = draw(st.permutations(required + optional))
    if draw(st.sampled_from([False] * 5 + [True])):
        fields = [*fields, ""]
    headers = [draw(st.sampled_from(HEADER_NAMES[f])) if f else draw(st.sampled_from(JUNK_HEADERS)) for f in fields]
    clean = draw(st.booleans())  # every cell good: such a file is stored, unless a rule across rows refuses it
    cell = {f: VALUES[f][0] if clean else st.one_of(VALUES[f][0], VALUES[f][0], VALUES[f][1]) for f in fields if f}
    rows = draw(st.lists(st.fixed_dictionaries(cell), min_size=1, max_size=5,
                         unique_by=(lambda r: r.get("id")) if clean else None))
    return fields, headers, rows


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str, list[dict[str, Any]], int | None]:
    """(bytes, file name, rows, the 1-based file row made ragged or None)."""
    fields, headers, rows = draw(tables())
    sep = draw(st.sampled_from([",", "\t", ";", "|"]))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(headers)
    junk = draw(st.sampled_from(["", "x"]))
    lines = [[r.get(f, junk) if f else junk for f in fields] for r in rows]
    ragged = None
    if draw(st.sampled_from([False] * 3 + [True])):
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()) or len(lines[i]) < 2:
            lines[i] = [*lines[i], draw(st.sampled_from(["", "x", "116.32"]))]
        else:
            lines[i] = lines[i][:-1]
        ragged = i + 2
    writer.writerows(lines)
    body = buf.getvalue().encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])))
    with contextlib.suppress(UnicodeDecodeError):
        body.decode("utf-8")  # GB 18030 bytes that are also UTF-8 ('站' alone is 'վ') say two things: send UTF-8
        body = buf.getvalue().encode("utf-8") if not body.startswith(b"\xef\xbb\xbf") else body
    return body, draw(st.sampled_from(["s.csv", "s.txt", "S.CSV"])), rows, ragged


def _xlsx_value(field: str, value: str, as_number: bool) -> Any:
    """A cell as a spreadsheet holds it: numbers as numbers where asked and possible, text otherwise (text that
    begins with '=' is a formula, as openpyxl writes it; characters a worksheet cannot hold are left out)."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if as_number and field in ("lon", "lat", "seats", "stars") and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    return value


@st.composite
def xlsx_files(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]], bool]:
    """(bytes, the rows of every registry sheet with their cell values, whether a registry cell is a formula)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    all_rows: list[dict[str, Any]] = []
    formulas = False
    for n in range(draw(st.integers(1, 3))):
        ws = wb.create_sheet(f"表{n}")
        shape = draw(st.sampled_from(["registry"] * 4 + ["junk", "empty"]))
        if shape == "junk":
            for _ in range(draw(st.integers(1, 4))):
                ws.append(draw(st.lists(st.one_of(SAFE_TEXT.map(lambda s: "junk" + s), st.integers(), st.just("=1+1")),
                                        max_size=5)))
        if shape != "registry":
            continue
        fields, headers, rows = draw(tables())
        if draw(st.booleans()):  # a merged title row above the header
            ws.append(["驿站登记表"])
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(1, len(fields)))
        ws.append(headers)
        as_number = draw(st.booleans())
        for r in rows:
            if r.get("id"):
                r["id"] = f"{r['id']}-{n}"  # distinct ids across sheets
            cells = {f: _xlsx_value(f, v, as_number) for f, v in r.items()}
            formulas |= any(isinstance(v, str) and v.startswith("=") for v in cells.values())
            r.update(cells)
            ws.append([cells.get(f, "") if f else "" for f in fields])
            all_rows.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue(), all_rows, formulas


# --- the properties ----------------------------------------------------------------------------------------------


@COMMON
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".xlsx", ".geojson", ".txt"]),
       prefix=st.sampled_from([b"", b"PK\x03\x04", b"\xef\xbb\xbfid,name,kind,lon,lat\n", b'{"type":']))
def test_random_bytes(registry: Registry, data: bytes, suffix: str, prefix: bytes) -> None:
    """Any bytes: refused with InvalidInput and the registry unchanged (random bytes that happen to import need
    no oracle)."""
    check_import(registry, prefix + data, "upload" + suffix, None)


@settings(max_examples=60, derandomize=True, deadline=None, database=None)
@given(file=csv_files())
@example(file=("id,name,kind,lon,lat,seats\nP9,站,small,１１６.３２,４０.００１,１２\n".encode(), "s.csv",
               [{"id": "P9", "name": "站", "kind": "small", "lon": "１１６.３２", "lat": "４０.００１",
                 "seats": "１２"}], None))
@example(file=(b"id,name,kind,lon,lat\nP8,a,small,116.32,40.0,extra\n", "s.csv", [], 2))
@example(file=(b"id,name,kind,lon,lat\n\x00P,a,small,116.32,40.0\n", "s.csv",
               [{"id": "\x00P", "name": "a", "kind": "small", "lon": "116.32", "lat": "40.0"}], None))
# was a DataError from the database: an id with a NUL character was looked up among the stored stations
def test_random_csv(registry: Registry, file: tuple[bytes, str, list[dict[str, Any]], int | None]) -> None:
    """Random CSV structures: a clean refusal (a ragged row always refused, by its number), or the rows stored as
    the file gave them."""
    data, name, rows, ragged = file
    check_import(registry, data, name, rows, must_refuse=ragged is not None,
                 bad_rows=(ragged,) if ragged is not None else ())


@COMMON
@given(file=xlsx_files())
def test_random_xlsx(registry: Registry, file: tuple[bytes, list[dict[str, Any]], bool]) -> None:
    """Random workbooks: a clean refusal (a formula without a stored value always refused), or the rows of every
    registry sheet stored as the file gave them."""
    data, rows, formulas = file
    check_import(registry, data, "s.xlsx", rows, must_refuse=formulas)


def test_clean_files_are_stored(registry: Registry) -> None:
    """The properties are not vacuous: a clean CSV with full-width digits, text that looks like a formula and an
    exported apostrophe, and a workbook with a title row and a number-typed second sheet, are stored as given."""
    rows = [{"id": "P7", "name": "=1+1", "kind": "大型", "lon": "１１６.３２", "lat": "40.001", "seats": "１２",
             "township": "'-x", "amenities": "卫生间、饮水", "status": "关闭"}]
    body = "id,name,kind,lon,lat,seats,township,amenities,status\n" + \
           "P7,=1+1,大型,１１６.３２,40.001,１２,'-x,卫生间、饮水,关闭\n"
    assert check_import(registry, body.encode("gb18030"), "s.csv", rows)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["驿站登记表"])
    ws.merge_cells("A1:E1")
    ws.append(["编号", "名称", "类型", "经度", "纬度"])
    ws.append(["X1", "站一", "small", 116.321, 40.002])
    second = wb.create_sheet("二")
    second.append(["id", "name", "kind", "lon", "lat", "stars"])
    second.append(["X2", "站二", "mobile", 116.322, 40.003, 4])
    out = io.BytesIO()
    wb.save(out)
    assert check_import(registry, out.getvalue(), "s.xlsx", [
        {"id": "X1", "name": "站一", "kind": "small", "lon": 116.321, "lat": 40.002},
        {"id": "X2", "name": "站二", "kind": "mobile", "lon": 116.322, "lat": 40.003, "stars": 4}])


# --- over HTTP ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = registry.engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, staff_key=KEY, data_dir=tmp_path_factory.mktemp("data"),
                              rate_limit_per_minute=0))
    try:
        with live_server(app) as base:
            yield base
    finally:
        app.state.db.dispose()


MULTIPART = st.builds(
    lambda boundary, head, body, tail: b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + body + tail,
    st.sampled_from([b"b", b"xyz", b""]),
    st.sampled_from([b'Content-Disposition: form-data; name="file"; filename="s.csv"',
                     b'Content-Disposition: form-data; name="file"; filename="s.xlsx"',
                     b'Content-Disposition: form-data; name="area"', b"", b"Content-Type: text/plain"]),
    st.binary(max_size=300),
    st.sampled_from([b"\r\n--b--\r\n", b"\r\n--xyz--\r\n", b"", b"\r\n--b"]))


@COMMON
@given(body=st.one_of(st.binary(max_size=400), MULTIPART),
       content_type=st.sampled_from(["multipart/form-data; boundary=b", "multipart/form-data; boundary=xyz",
                                     "multipart/form-data", "application/octet-stream", "text/csv", ""]))
def test_http_random_bodies(server: str, body: bytes, content_type: str) -> None:
    """Any body to POST /stations/import: an answer below 500 with a reason."""
    headers = {"X-API-Key": KEY}
    if content_type:
        headers["Content-Type"] = content_type
    r = httpx.post(f"{server}/stations/import", content=body, headers=headers, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code != 200:
        assert r.json()["detail"], r.text
