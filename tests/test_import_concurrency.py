"""Large and concurrent imports.

Large: the command line's own jobs have no statement timeout (the API's 15 s is not theirs), and the API refuses
a file over its row limit up front, naming the limit and the command that takes larger files. How long a 1 M-row
import takes and how much memory it needs is measured by benchmarks/import_large.py, not here.

Concurrent: imports of one area at the same time are serialised per area, never a deadlock. Two threads import
overlapping station files (the same ids, in opposite orders, so that unserialised upserts lock the same rows in
opposite orders) into one area at once on the real database. Each import either succeeds or, when the other
holds the area for longer than the lock wait, is refused with ``Conflict`` naming the other import; the registry
afterwards holds exactly one of the two files, whole.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from api_data import KEY, STAFF
from cli_runner import run_cli
from conftest import WUDAOKOU_BOUNDS, area_held
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo
from yizhan.db.engine import dispose_engines, get_engine
from yizhan.errors import Conflict, ImportRejected, http_status
from yizhan.settings import Settings
from yizhan.stations import service
from yizhan.stations.service import import_stations

N_ROWS = 4000
HEADER = "id,name,kind,lon,lat,status"


def _csv(ids: list[str], name: str, seed: int) -> bytes:
    """A registry CSV of ``ids`` (in this order) at random points inside the Wudaokou bounds."""
    west, south, east, north = WUDAOKOU_BOUNDS
    rng = np.random.default_rng(seed)
    lons = rng.uniform(west + 1e-4, east - 1e-4, len(ids)).round(6)
    lats = rng.uniform(south + 1e-4, north - 1e-4, len(ids)).round(6)
    rows = zip(ids, lons, lats, strict=True)
    lines = [HEADER] + [f"{sid},{name} {sid},small,{lon},{lat},active" for sid, lon, lat in rows]
    return ("\n".join(lines) + "\n").encode()


def _import_all_at_once(engine: Engine, area: str, files: list[bytes]) -> list[object]:
    """Run one import per file in its own thread, all released at the same moment; each one's result or error."""
    results: list[object] = [None] * len(files)
    start = threading.Barrier(len(files))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = import_stations(engine, "stations.csv", area=area, data=files[i], filename="stations.csv")
        except Exception as exc:  # the test inspects every outcome
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"import-{i}") for i in range(len(files))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not any(th.is_alive() for th in threads), "an import hung"
    return results


@pytest.mark.parametrize("round_", range(3))
def test_overlapping_imports_at_once_never_deadlock(engine: Engine, wudaokou: AreaInfo, round_: int) -> None:
    ids = [f"S{i:05d}" for i in range(N_ROWS)]
    forward = _csv(ids, "forward", seed=round_)
    backward = _csv(ids[::-1], "backward", seed=100 + round_)
    results = _import_all_at_once(engine, wudaokou.name, [forward, backward])

    for r in results:
        if isinstance(r, Exception):
            assert isinstance(r, Conflict), f"{type(r).__name__}: {r}"
            assert "another import of this area is running" in str(r) and "该区域另一导入正在进行" in str(r)
            assert wudaokou.name in str(r)
            assert http_status(r) == 409
    done = [r for r in results if not isinstance(r, Exception)]
    assert done, "neither import succeeded"
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM stations WHERE area_id = :a"), {"a": wudaokou.id}).scalars().all()
    assert len(names) == N_ROWS
    prefixes = {n.split(" ")[0] for n in names}
    assert len(prefixes) == 1, f"the registry mixes two files: {prefixes}"  # the last import wrote every row


def test_an_import_waits_for_the_other_and_then_runs(engine: Engine, wudaokou: AreaInfo) -> None:
    """An import that finds the area locked for less than the lock wait waits and then succeeds."""
    ids = [f"W{i:03d}" for i in range(50)]
    with area_held(engine, wudaokou) as release:
        threading.Timer(1.0, release.set).start()
        summary = import_stations(engine, "w.csv", area=wudaokou.name, data=_csv(ids, "w", seed=1), filename="w.csv")
    assert summary.inserted == len(ids)


def test_an_import_gives_up_on_a_held_area_with_one_line(engine: Engine, wudaokou: AreaInfo) -> None:
    """An area held longer than the lock wait: the import is refused with Conflict, nothing stored."""
    with area_held(engine, wudaokou), pytest.raises(Conflict) as info:
        import_stations(engine, "w.csv", area=wudaokou.name, data=_csv(["X1"], "w", seed=2), filename="w.csv",
                        lock_wait_s=0.5)
    message = str(info.value)
    assert "\n" not in message and "another import of this area is running" in message
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == 0


# -- large imports -------------------------------------------------------------------------------------------------
def test_get_engine_without_statement_timeout(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, data_dir=tmp_path / "data", statement_timeout_ms=1234)
    try:
        with get_engine(settings).connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1234ms"
        with get_engine(settings, statement_timeout=False).connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        dispose_engines()


def test_cli_import_is_not_bound_by_the_api_statement_timeout(cli_env: dict[str, str], engine: Engine,
                                                               wudaokou: AreaInfo, tmp_path: Path) -> None:
    """The API's statement timeout (here its smallest, 100 ms) does not cut the command line's own import."""
    ids = [f"L{i:06d}" for i in range(60_000)]
    path = tmp_path / "large.csv"
    path.write_bytes(_csv(ids, "large", seed=3))
    proc = run_cli("stations", "import", str(path), "--area", wudaokou.name,
                   env={**cli_env, "YIZHAN_STATEMENT_TIMEOUT_MS": "100"}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(ids)} rows: {len(ids)} new" in proc.stdout
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == len(ids)


def test_api_refuses_a_file_over_its_row_limit(db_url: str, wudaokou: AreaInfo, tmp_path: Path,
                                               live_api: Callable[..., httpx.Client], engine: Engine) -> None:
    settings = Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data", max_api_import_rows=20)
    api = live_api(settings)

    def post(n: int) -> httpx.Response:
        data = _csv([f"R{i:03d}" for i in range(n)], "r", seed=n)
        return api.post("/stations/import", files={"file": ("r.csv", data, "text/csv")},
                        data={"area": wudaokou.name}, headers=STAFF)

    r = post(21)
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "\n" not in detail and "21 rows" in detail and "20" in detail and "yizhan stations import" in detail
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == 0
    r = post(20)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 20


def test_rows_checked_in_chunks_name_every_problem_and_store_nothing(engine: Engine, wudaokou: AreaInfo,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A file checked 10 rows at a time: a repeat of an id from an earlier chunk and a bad row in a later chunk
    are both named (row numbers count the header as row 1), and nothing is stored."""
    monkeypatch.setattr(service, "CHECK_CHUNK_ROWS", 10)
    ids = [f"C{i:02d}" for i in range(30)]
    ids[14] = ids[2]  # data row 15 is file row 16; the first use is file row 4
    lines = _csv(ids, "c", seed=4).decode().splitlines()
    lines[26] = lines[26].replace(",small,", ",huge,")  # file row 27
    lines[27] = lines[27].replace(",small,", ",huge,")  # file row 28: two bad rows in one chunk after a bad chunk
    with pytest.raises(ImportRejected) as info:
        import_stations(engine, "c.csv", area=wudaokou.name, data="\n".join(lines).encode(), filename="c.csv")
    found = [(p.row, p.field) for p in info.value.problems]
    assert found == [(16, "id"), (27, "kind"), (28, "kind")]
    assert "also used in row 4" in info.value.problems[0].expected
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == 0

    good = _csv([f"C{i:02d}" for i in range(35)], "c", seed=5)
    summary = import_stations(engine, "c.csv", area=wudaokou.name, data=good, filename="c.csv")
    assert (summary.rows, summary.inserted, summary.updated) == (35, 35, 0)
    again = import_stations(engine, "c.csv", area=wudaokou.name, data=good, filename="c.csv")
    assert (again.rows, again.inserted, again.updated) == (35, 0, 35)
