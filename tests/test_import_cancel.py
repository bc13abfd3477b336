"""Imports stop when their caller goes away, and a stopping server does not wait for them without limit.

The import service asks its ``cancelled`` callable between its steps and chunks (and while it waits for the area's
import lock); once it says yes, the import ends with ``ImportCancelled`` and its transaction rolls back. The API's
import route sets it when the client disconnects or when the server cancels the request; ``yizhan serve`` cancels
the requests still running ``shutdown_grace_s`` seconds after SIGTERM. All on the real database, over real HTTP,
with a real ``yizhan serve`` process.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from api_data import KEY, STAFF
from cli_runner import start_server
from conftest import WUDAOKOU_BOUNDS, area_held
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.errors import ImportCancelled, ImportRejected, YizhanError, http_status
from yizhan.settings import Settings, get_settings
from yizhan.stations.columns import read_registry
from yizhan.stations.service import import_stations

HEADER = "id,name,kind,lon,lat,status"


def registry_csv(ids: list[str], seed: int) -> bytes:
    """A registry CSV of ``ids`` at random points inside the Wudaokou bounds."""
    west, south, east, north = WUDAOKOU_BOUNDS
    rng = np.random.default_rng(seed)
    lons = rng.uniform(west + 1e-4, east - 1e-4, len(ids)).round(6)
    lats = rng.uniform(south + 1e-4, north - 1e-4, len(ids)).round(6)
    lines = [HEADER] + [f"{sid},station {sid},small,{lon},{lat},active" for sid, lon, lat in
                        zip(ids, lons, lats, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def stored_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT external_id FROM stations")).scalars())


# -- the service ---------------------------------------------------------------------------------------------------
class Asks:
    """A ``cancelled`` callable that counts how often it was asked and says yes from the ``yes_from``-th time."""

    def __init__(self, yes_from: int | None = None) -> None:
        self.asked = 0
        self.yes_from = yes_from

    def __call__(self) -> bool:
        self.asked += 1
        return self.yes_from is not None and self.asked >= self.yes_from


def test_cancelled_after_the_first_chunk_stores_nothing(engine: Engine, wudaokou: AreaInfo) -> None:
    """Five chunks of 100 rows: cancelled when asked before the second chunk, the registry keeps what it held."""
    before = [f"B{i:04d}" for i in range(500)]
    counted = Asks()
    import_stations(engine, "b.csv", area=wudaokou.name, data=registry_csv(before, 1), filename="b.csv",
                    chunk_rows=100, cancelled=counted)
    # the last questions are: before each of the 5 chunks, before the merge; the same for a file of as many rows
    second_chunk = counted.asked - 4
    ids = [f"C{i:04d}" for i in range(500)]
    cancel = Asks(yes_from=second_chunk)
    with pytest.raises(ImportCancelled) as info:
        import_stations(engine, "c.csv", area=wudaokou.name, data=registry_csv(ids, 2), filename="c.csv",
                        chunk_rows=100, cancelled=cancel)
    message = str(info.value)
    assert "\n" not in message and "c.csv" in message and "nothing was stored" in message and "导入已取消" in message
    assert isinstance(info.value, YizhanError) and http_status(info.value) == 400
    assert cancel.asked == second_chunk  # it stopped at the first question after the first chunk was copied
    assert stored_ids(engine) == set(before)
    # the area is free and the same file imports whole when nobody cancels it
    report = import_stations(engine, "c.csv", area=wudaokou.name, data=registry_csv(ids, 2), filename="c.csv",
                             chunk_rows=100, cancelled=lambda: False)
    assert report.inserted == len(ids) and stored_ids(engine) == set(before) | set(ids)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_file_reader_asks_while_reading(kind: str) -> None:
    """The reader asks before parsing and while it reads the rows (a CSV's chunks, a sheet's rows)."""
    data = registry_csv([f"R{i}" for i in range(10)], 6)
    if kind == "xlsx":
        frame = pd.read_csv(io.BytesIO(data), dtype=str)
        buffer = io.BytesIO()
        frame.to_excel(buffer, index=False)
        data = buffer.getvalue()
    read_registry(f"r.{kind}", data=data, filename=f"r.{kind}", cancelled=(counted := Asks()))
    assert counted.asked >= 2
    with pytest.raises(ImportCancelled):
        read_registry(f"r.{kind}", data=data, filename=f"r.{kind}", cancelled=Asks(yes_from=2))
    with pytest.raises(ImportCancelled):
        read_registry(f"r.{kind}", data=data, filename=f"r.{kind}", cancelled=lambda: True)


def _workbook(n: int, formulas: bool = False) -> bytes:
    """A one-sheet registry workbook of ``n`` rows; with ``formulas`` its names are formulas without stored
    results (written by a program, never opened in Excel)."""
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "name", "kind", "lon", "lat"])
    for i in range(n):
        ws.append([f"R{i}", f'="n{i}"' if formulas else f"n{i}", "small", 116.32, 40.0])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _geojson(n: int) -> bytes:
    features = [{"type": "Feature", "properties": {"id": f"G{i}", "name": "g", "kind": "small"},
                 "geometry": {"type": "Point", "coordinates": [116.32, 40.0]}} for i in range(n)]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _asked(name: str, data: bytes) -> int:
    counted = Asks()
    with contextlib.suppress(ImportRejected):  # the formulas without results: asked all the same
        read_registry(name, data=data, filename=name, cancelled=counted)
    return counted.asked


@pytest.mark.parametrize("kind", ["sheet", "sheet with formulas", "geojson"])
def test_long_sheets_and_feature_lists_are_asked_every_few_thousand_rows(kind: str) -> None:
    """6,000 rows are asked about at least 3 times more than 10 rows (every CANCEL_EVERY_ROWS rows or features),
    the formula check of a sheet included; before, a sheet was asked every 100,000 rows and a GeoJSON file, its
    formula check and its archive never."""
    if kind == "geojson":
        small, large, name = _geojson(10), _geojson(6000), "g.geojson"
    else:
        formulas = kind == "sheet with formulas"
        small, large, name = _workbook(10, formulas), _workbook(6000, formulas), "w.xlsx"
    assert _asked(name, large) - _asked(name, small) >= 3
    with pytest.raises(ImportCancelled):
        read_registry(name, data=large, filename=name, cancelled=Asks(yes_from=_asked(name, small) + 1))


def test_the_archive_check_asks_before_each_worksheet() -> None:
    """The scan of a workbook's archive for formulas asks before each worksheet member (and each MB read)."""
    with pytest.raises(ImportCancelled) as info:
        read_registry("w.xlsx", data=_workbook(10), filename="w.xlsx", cancelled=Asks(yes_from=2))
    assert any(entry.name == "_has_formulas" for entry in info.traceback)


def test_cancel_ends_the_wait_for_the_area_lock(engine: Engine, wudaokou: AreaInfo) -> None:
    """An import waiting for another import's lock stops as soon as it is cancelled, not at the lock wait."""
    stop = threading.Event()
    with area_held(engine, wudaokou):
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(ImportCancelled):
            import_stations(engine, "w.csv", area=wudaokou.name, data=registry_csv(["W1"], 2), filename="w.csv",
                            lock_wait_s=30, cancelled=stop.is_set)
        assert time.monotonic() - started < 3
    assert stored_ids(engine) == set()


# -- over HTTP -----------------------------------------------------------------------------------------------------
def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` part; the body and its content type."""
    boundary = "yizhan-cancel-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _send_and_leave(base_url: str, data: bytes, filename: str) -> socket.socket:
    """Send a whole import request on a raw socket and return it unread (the caller closes it: a client that
    goes away before the answer)."""
    url = httpx.URL(base_url)
    body, content_type = _multipart(data, filename)
    sock = socket.create_connection((url.host, url.port or 80), timeout=10)
    head = (f"POST /stations/import HTTP/1.1\r\nHost: {url.host}\r\nX-API-Key: {KEY}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body)
    return sock


def test_a_client_that_leaves_mid_import_stores_nothing(engine: Engine, wudaokou: AreaInfo, db_url: str,
                                                        tmp_path: Path, live_api) -> None:
    """The import of a client that disconnected is cancelled: when the area it waited for is free, it stores
    nothing, and the next import runs at once."""
    client = live_api(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data"))
    left = [f"L{i:03d}" for i in range(50)]
    with area_held(engine, wudaokou) as release:
        sock = _send_and_leave(str(client.base_url), registry_csv(left, 3), "left.csv")
        time.sleep(1.0)  # the server has the request and its import waits for the area
        sock.close()
        time.sleep(1.0)  # the disconnect is noticed (polled)
        release.set()
    time.sleep(0.5)
    started = time.monotonic()
    after = [f"A{i:03d}" for i in range(20)]
    r = client.post("/stations/import", headers=STAFF, files={"file": ("after.csv", registry_csv(after, 4))})
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 4  # not behind a lock
    assert stored_ids(engine) == set(after)


# -- yizhan serve --------------------------------------------------------------------------------------------------
def test_serve_stops_on_sigterm_within_the_grace(cli_env: dict[str, str], engine: Engine,
                                                 wudaokou: AreaInfo) -> None:
    """SIGTERM with an import in flight (waiting for the area's lock): the server cancels it after the grace and
    exits soon after, nothing stored; before, it waited for the request to end however long it took."""
    grace = 1
    env = dict(cli_env, YIZHAN_STAFF_KEY=KEY, YIZHAN_SHUTDOWN_GRACE_S=str(grace))
    proc, base = start_server(env=env)
    try:
        with area_held(engine, wudaokou):
            sock = _send_and_leave(base, registry_csv(["T1", "T2"], 5), "t.csv")
            time.sleep(0.5)  # the import is waiting for the area
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace + 2.5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"yizhan serve still running {time.monotonic() - sent:.1f} s after SIGTERM")
            sock.close()
        _, err = proc.communicate(timeout=10)
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert stored_ids(engine) == set()


def test_shutdown_grace_is_a_setting() -> None:
    assert get_settings().shutdown_grace_s > 0
    assert Settings(shutdown_grace_s=3).shutdown_grace_s == 3
    with pytest.raises(ValueError):
        Settings(shutdown_grace_s=0)
