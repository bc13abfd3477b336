"""Many areas at once (``coverage.area_runs``, ``yizhan coverage --areas``): each area's run on Dask is the run
``run_coverage`` stores for it alone; an area that cannot be run is reported and the others are stored; unknown
names are refused before any work. Real PostGIS, the demo sample area of the real extract and two small areas made
here; Dask in this process (a LocalCluster of threads) except where the command starts its own worker process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_cli
from shapely.geometry import box
from sqlalchemy import Engine

from yizhan.areas import AreaInfo, ensure_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.area_runs import area_sizes, run_areas
from yizhan.coverage.runs import load_run
from yizhan.data.demand import import_demand
from yizhan.errors import InvalidInput
from yizhan.settings import Settings
from yizhan.stations.service import import_stations

# a patch of Haidian north of the demo sample area (WGS 84 lon, lat)
NORTH = (116.300, 40.020, 116.330, 40.040)


@pytest.fixture
def run_settings(settings: Settings, db_url: str) -> Settings:
    return settings.model_copy(update={"database_url": db_url})


def _small_area(engine: Engine, name: str, bounds: tuple[float, float, float, float], tmp_path: Path, *,
                stations: int, orders: int, seed: int) -> AreaInfo:
    """An area with random stations and orders inside ``bounds`` (``orders`` 0: no demand at all)."""
    rng = np.random.default_rng(seed)
    w, s, e, n = bounds
    with engine.begin() as conn:
        info = ensure_area(conn, name, boundary=box(w, s, e, n))
    lon, lat = rng.uniform(w, e, stations), rng.uniform(s, n, stations)
    st = tmp_path / f"{name}-stations.csv"
    st.write_text("id,name,kind,lon,lat\n" + "".join(f"{name}{i},站{i},small,{a:.7f},{b:.7f}\n"
                                                 for i, (a, b) in enumerate(zip(lon, lat, strict=True))))
    import_stations(engine, st, area=name)
    if orders:
        dem = tmp_path / f"{name}-orders.csv"
        pd.DataFrame({"lon": rng.uniform(w, e, orders), "lat": rng.uniform(s, n, orders),
                      "weight": rng.integers(1, 4, orders)}).to_csv(dem, index=False, float_format="%.7f")
        import_demand(engine, dem, area=name)
    return info


def test_areas_on_dask_store_the_runs_of_each_area_alone(engine: Engine, run_settings: Settings,
                                                         sample_area: AreaInfo, tmp_path: Path,
                                                         client: Any) -> None:
    north = _small_area(engine, "north", NORTH, tmp_path, stations=12, orders=600, seed=3)
    _small_area(engine, "empty", (116.34, 40.02, 116.35, 40.03), tmp_path, stations=3, orders=0, seed=4)
    sizes = area_sizes(run_settings, None)
    assert [n for n, _ in sizes][-1] == "empty" and sizes[-1][1] == 0  # largest first, the empty one last
    said: list[str] = []
    result = run_areas(run_settings, None, scheduler=client, progress=said.append, radius_m=500.0)
    assert [o.area for o in result.outcomes] == [n for n, _ in sizes]
    assert [o.area for o in result.failed] == ["empty"]
    failed = result.failed[0].error or ""
    assert "没有需求网格" in failed and "import demand first" in failed
    assert sum(" done: " in m for m in said) == 3
    for info in (sample_area, north):
        got = next(o for o in result.outcomes if o.area == info.name).summary
        assert got is not None and 0 < got["covered_share"] < 1
        alone = run_coverage(engine, area=info.name, radius_m=500.0, settings=run_settings)
        assert got["run_id"] != alone["run_id"]
        for key in ("cells", "gaps", "measured", "stations"):
            assert got[key] == alone[key], key  # type: ignore[literal-required]
        assert got["covered_share"] == pytest.approx(alone["covered_share"], abs=1e-12)
        a, b = load_run(engine, got["run_id"]), load_run(engine, alone["run_id"])
        assert a.cells["covered"].tolist() == b.cells["covered"].tolist()
        assert np.allclose(a.cells["distance_m"].to_numpy(float), b.cells["distance_m"].to_numpy(float), atol=1e-9)
        assert a.gaps["demand"].tolist() == pytest.approx(b.gaps["demand"].tolist(), abs=1e-9)


def test_unknown_areas_are_refused_before_any_work(engine: Engine, run_settings: Settings,
                                                   sample_area: AreaInfo) -> None:
    with pytest.raises(InvalidInput, match=rf"没有这些区域.*'nowhere', 'atlantis'; areas: {sample_area.name}$"):
        run_areas(run_settings, ["nowhere", sample_area.name, "atlantis"], radius_m=500.0)
    with pytest.raises(TypeError, match="each area whole"):
        run_areas(run_settings, [sample_area.name], parts=2)


def test_coverage_areas_command(engine: Engine, db_url: str, cli_env: dict[str, str], sample_area: AreaInfo,
                                tmp_path: Path) -> None:
    """``yizhan coverage --areas A,B --json`` runs both on a local cluster of one worker process and prints each
    area's summary; a table and a total without --json; an unknown name and a clash of options: one line, no
    traceback, nothing run."""
    _small_area(engine, "north", NORTH, tmp_path, stations=12, orders=600, seed=3)
    env = {**cli_env, "YIZHAN_PARTITION_WORKERS": "1"}
    out = json.loads(run_cli("coverage", "--areas", f"north,{sample_area.name}", "--radius", "500", "--json",
                             env=env).stdout)
    assert sorted(a["area"] for a in out["areas"]) == sorted([sample_area.name, "north"])
    assert all(a["error"] is None and a["summary"]["cells"] > 0 for a in out["areas"])
    cells = [a["summary"]["cells"] for a in out["areas"]]
    assert cells == sorted(cells, reverse=True) and cells[0] > cells[1]  # the larger area first
    table = run_cli("coverage", "--all-areas", "--radius", "500", env=env).stdout
    assert "合计 total: 2/2 areas" in table and "north" in table
    bad = run_cli("coverage", "--areas", "north,nowhere", env=env, check=False)
    assert bad.returncode != 0 and "no area named 'nowhere'" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
    clash = run_cli("coverage", "--areas", "north", "--partitions", "2", env=env, check=False)
    assert clash.returncode != 0 and "--partitions" in clash.stdout + clash.stderr
    with engine.connect() as conn:
        runs = conn.exec_driver_sql("SELECT count(*) FROM coverage_runs").scalar_one()
    assert runs == 4  # the two good commands' runs only
