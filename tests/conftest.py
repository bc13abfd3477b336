"""Test fixtures: one real PostGIS cluster per session (per worker under pytest-xdist), a fresh database per test.

Expensive things are built once per session and copied per test: the migrated empty database and the demo
sample area (stations, demand) are template databases (``CREATE DATABASE ... TEMPLATE`` clones one per test, so
tests that change data stay isolated), and the sample area's compiled street graphs are files copied into each
test's data folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from api_data import KEY, STATIONS, stations_csv
from live_server import live_server, serve_api
from shapely.geometry import box
from skips import refused, skip_not_provided
from sqlalchemy import Engine

from yizhan.api import create_app
from yizhan.areas import AreaInfo, ensure_area
from yizhan.coverage.streets import PROFILES, build_area_graph
from yizhan.data.demand import import_demand
from yizhan.data.sample import SampleArea, sample_from_extract
from yizhan.db.cluster import Cluster
from yizhan.db.engine import make_engine, migrate
from yizhan.settings import Settings
from yizhan.stations.service import area_import_lock, import_stations

OSM_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "osm"
WUDAOKOU_OSM = OSM_DIR / "beijing_haidian_wudaokou.osm"
WUDAOKOU_PBF = OSM_DIR / "beijing_haidian_wudaokou.osm.pbf"
WUDAOKOU_BOUNDS = (116.3084, 39.9905, 116.3320, 40.0123)  # west, south, east, north (WGS 84)
TEMPLATE = "yizhan_template"  # migrated, empty
SAMPLE_TEMPLATE = "yizhan_sample_template"  # TEMPLATE plus the demo sample area, its stations and demand
_counter = itertools.count()


def pytest_report_header(config: pytest.Config) -> list[str]:
    import geopandas
    import pyproj
    import shapely

    from yizhan.db.cluster import find_binaries

    try:
        pg = f"PostgreSQL {find_binaries().version} (embedded test cluster)"
    except Exception as exc:  # the header must not break collection
        pg = f"PostgreSQL: {exc}"
    return [f"GEOS {shapely.geos_version_string}, PROJ {pyproj.proj_version_str}, geopandas {geopandas.__version__}",
            pg]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under ``./run test`` (``YIZHAN_STRICT_SKIPS``, which it sets: it installs Chromium, poppler and a CJK font)
    a skip fails the test, unless it is one ``./run test`` cannot prevent (``skips.skip_not_provided``: the shared
    extract absent from a bare clone, a mount for a user who is not root)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if refused(report):
        report.outcome = "failed"
        report.longrepr = f"skipped, but ./run test provides what this test needs: {report.longrepr}"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL+PostGIS cluster (started as ``postgres`` when run as root)."""
    base = Path(tempfile.mkdtemp(prefix="yizhan-test-"))
    os.chmod(base, 0o755)
    cluster = Cluster(base, durable=False)
    cluster.up()
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    engine = make_engine(cluster.url(TEMPLATE))
    migrate(engine)
    engine.dispose()
    yield cluster
    cluster.down()
    shutil.rmtree(base, ignore_errors=True)


def _admin(cluster: Cluster) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres", autocommit=True)


class _Clones:
    """Clones of one template database, made a test ahead and dropped behind in a background thread.

    Cloning (``CREATE DATABASE ... TEMPLATE``) and dropping take a few tenths of a second each; done while the
    previous test runs, a test waits only when its clone is not ready yet. Each clone is still used by one test
    and dropped after it, so tests stay isolated.
    """

    def __init__(self, cluster: Cluster, template: str) -> None:
        self._cluster, self._template = cluster, template
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"clones-{template}")
        self._ahead: Future[str] | None = None

    def _create(self) -> str:
        name = f"yizhan_test_{os.getpid()}_{next(_counter)}"
        with _admin(self._cluster) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self._template}")
        return name

    def _drop(self, name: str) -> None:
        with _admin(self._cluster) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @contextlib.contextmanager
    def clone(self) -> Iterator[str]:
        """A fresh clone's URL for the block; the next clone is started at once, this one dropped afterwards."""
        ready = self._ahead if self._ahead is not None else self._worker.submit(self._create)
        self._ahead = self._worker.submit(self._create)
        name = ready.result()
        try:
            yield self._cluster.url(name)
        finally:
            self._worker.submit(self._drop, name)

    def close(self) -> None:
        """Drop the clone made ahead and wait for every pending drop."""
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                self._worker.submit(self._drop, self._ahead.result())
        self._worker.shutdown(wait=True)


@pytest.fixture(scope="session")
def template_clones(pg_cluster: Cluster) -> Iterator[_Clones]:
    """Clones of the migrated, empty template."""
    clones = _Clones(pg_cluster, TEMPLATE)
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def sample_clones(pg_cluster: Cluster, sample_template: SampleTemplate) -> Iterator[_Clones]:
    """Clones of the sample template (the demo sample area's stations and demand)."""
    clones = _Clones(pg_cluster, SAMPLE_TEMPLATE)
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def fresh_database(template_clones: _Clones) -> Callable[[], contextlib.AbstractContextManager[str]]:
    """For fixtures of a wider scope than a test: ``with fresh_database() as url:`` a new migrated, empty database,
    dropped when the block ends."""
    return template_clones.clone


@pytest.fixture
def db_url(request: pytest.FixtureRequest, template_clones: _Clones) -> Iterator[str]:
    """URL of a fresh, migrated database, dropped after the test: empty, or holding the demo sample area when the
    test uses ``sample_area`` (a clone of the session's sample template)."""
    clones = request.getfixturevalue("sample_clones") if "sample_area" in request.fixturenames else template_clones
    with clones.clone() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def restartable_cluster() -> Iterator[Cluster]:
    """A throw-away cluster this test may stop and start (the session cluster is never stopped)."""
    base = Path(tempfile.mkdtemp(prefix="yizhan-restart-"))
    os.chmod(base, 0o755)  # as root, the postgres user must traverse it
    cluster = Cluster(base, durable=False)
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with the test's own data folder (street graphs) and a staff key."""
    return Settings(data_dir=tmp_path / "data", staff_key="k")


@pytest.fixture(scope="session")
def sample_extract(osm_path: Path) -> SampleArea:
    """The demo sample area of the real extract (seed 7): boundary, synthetic stations and demand (WGS 84)."""
    return sample_from_extract(osm_path, seed=7)


@dataclass(frozen=True)
class SampleTemplate:
    """The demo sample area as built once for the session.

    Attributes
    ----------
    area : AreaInfo
        The area as stored in ``SAMPLE_TEMPLATE`` (the same id in every clone of it).
    files : dict[str, Path]
        The sample's files (``stations``, ``demand``, ``boundary``) as ``SampleArea.write`` wrote them.
    graphs : Path
        Folder of the area's compiled walk and bike street graphs, laid out as ``<data_dir>/graphs``.
    """

    area: AreaInfo
    files: dict[str, Path]
    graphs: Path


@pytest.fixture(scope="session")
def sample_template(pg_cluster: Cluster, sample_extract: SampleArea, osm_path: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> SampleTemplate:
    """Build the demo sample area once: the ``SAMPLE_TEMPLATE`` database (stations, demand) and its graph files."""
    root = tmp_path_factory.mktemp("sample-template")
    files = sample_extract.write(root / "sample")
    with _admin(pg_cluster) as conn:
        conn.execute(f"CREATE DATABASE {SAMPLE_TEMPLATE} TEMPLATE {TEMPLATE}")
    engine = make_engine(pg_cluster.url(SAMPLE_TEMPLATE))
    try:
        with engine.begin() as conn:
            area = ensure_area(conn, sample_extract.name, boundary=sample_extract.boundary,
                               crs_epsg=sample_extract.crs_epsg)
        import_stations(engine, files["stations"])
        import_demand(engine, files["demand"])
    finally:
        engine.dispose()  # a template database must have no open connections when it is cloned
    built = Settings(data_dir=root / "data")
    for profile in PROFILES:
        build_area_graph(area, osm_path, profile=profile, settings=built)
    return SampleTemplate(area=area, files=files, graphs=built.data_dir / "graphs")


@pytest.fixture
def sample_area(sample_template: SampleTemplate, engine: Engine, settings: Settings) -> AreaInfo:
    """The demo sample area of the real extract with its stations, demand and walk + bike graphs: the test's
    database is a clone of the sample template (see ``db_url``), the graphs are copied into its data folder."""
    shutil.copytree(sample_template.graphs, settings.data_dir / "graphs", dirs_exist_ok=True)
    return sample_template.area


@pytest.fixture
def live_api() -> Iterator[Callable[..., httpx.Client]]:
    """Serve the API over real HTTP for this test: ``client = live_api(settings)`` starts it (tests/live_server.py)
    and gives an httpx client bound to it (``timeout=`` seconds, default 30). Every server started so stops when
    the test ends, and its app's database connections are closed."""
    with contextlib.ExitStack() as stack:
        yield lambda settings, timeout=30.0: stack.enter_context(serve_api(settings, timeout=timeout))


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``yizhan`` command against the test database (no YIZHAN_* from outside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIZHAN_")}
    env.update(DATABASE_URL=db_url, YIZHAN_OUT_DIR=str(tmp_path / "out"), YIZHAN_DATA_DIR=str(tmp_path / "data"),
               COLUMNS="200")
    return env


@pytest.fixture
def wudaokou(engine: Engine) -> AreaInfo:
    """The Wudaokou study area (the shared OSM extract's bounds), UTM 50N."""
    with engine.begin() as conn:
        return ensure_area(conn, "wudaokou", boundary=box(*WUDAOKOU_BOUNDS), source="test")


@pytest.fixture(scope="session")
def extracts() -> tuple[Path, Path]:
    """The shared Wudaokou extract as OSM XML and as PBF (skipped when absent, as from a bare clone)."""
    if not (WUDAOKOU_OSM.is_file() and WUDAOKOU_PBF.is_file()):
        skip_not_provided(f"shared OSM extract not found in {OSM_DIR}")
    return WUDAOKOU_OSM, WUDAOKOU_PBF


@pytest.fixture(scope="session")
def osm_path(extracts: tuple[Path, Path]) -> Path:
    """The shared Wudaokou extract (OSM XML)."""
    return extracts[0]


# --- the HTTP API tests (tests/test_api*.py) ---------------------------------------------------------------
@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of the app served over HTTP against the test's fresh database."""
    app = create_app(Settings(database_url=db_url, staff_key=KEY, data_dir=tmp_path / "data"))
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        app.state.db.dispose()


@pytest.fixture
def seeded(engine: Engine, wudaokou: AreaInfo) -> AreaInfo:
    """The Wudaokou area holding ``STATIONS``."""
    summary = import_stations(engine, "stations.csv", area=wudaokou.name, data=stations_csv(STATIONS),
                              filename="stations.csv")
    assert summary.inserted == len(STATIONS)
    return wudaokou


# --- imports of one area ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def area_held(engine: Engine, area: AreaInfo) -> Iterator[threading.Event]:
    """Another session holds ``area``'s import lock until the yielded event is set (or the block ends)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            area_import_lock(conn, area.id, area.name)
            held.set()
            release.wait(120)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield release
    finally:
        release.set()
        holder.join(30)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A Dask client on an in-process LocalCluster of two one-thread workers (the machine's 2 cores are shared),
    for the tests of one module that run coverage in parts."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (the system's, no download) for the tests of one module: Playwright's ``Browser``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
