"""A stored run computed in parts on Dask (``run_coverage(parts=...)``) equals the run computed in one process: the
same cells covered, distances, nearest stations, covered orders, shares and gaps; straight and along the streets,
on the demo sample area of the real extract (real PostGIS, real walk graph). Dask runs in this process (a
LocalCluster of threads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from yizhan.areas import AreaInfo
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.runs import RunData, load_run
from yizhan.coverage.streets import build_street_parts, street_parts_manifest
from yizhan.errors import InvalidInput
from yizhan.settings import Settings


@pytest.fixture
def run_settings(settings: Settings, db_url: str) -> Settings:
    return settings.model_copy(update={"database_url": db_url})


def _same(a: RunData, b: RunData) -> None:
    """Two stored runs agree cell by cell and gap by gap."""
    assert a.summary["cells"] == b.summary["cells"] and a.summary["measured"] == b.summary["measured"]
    for key in ("demand_total", "demand_covered", "gaps"):
        assert a.summary[key] == pytest.approx(b.summary[key], abs=1e-9)  # type: ignore[literal-required]
    assert a.summary["covered_share"] == pytest.approx(b.summary["covered_share"], abs=1e-12)
    ca, cb = a.cells.set_index("cell_key"), b.cells.set_index("cell_key").loc[a.cells["cell_key"]]
    assert (ca["covered"].to_numpy() == cb["covered"].to_numpy()).all()
    for col in ("distance_m", "straight_distance_m", "covered_weight"):
        x, y = ca[col].to_numpy(float), cb[col].to_numpy(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), col
        assert np.allclose(x[~np.isnan(x)], y[~np.isnan(y)], rtol=0, atol=1e-9), col
    assert a.gaps["demand"].tolist() == pytest.approx(b.gaps["demand"].tolist(), abs=1e-9)
    assert a.gaps["cells"].tolist() == b.gaps["cells"].tolist()
    assert a.gaps["nearest_distance_m"].fillna(-1).tolist() == pytest.approx(
        b.gaps["nearest_distance_m"].fillna(-1).tolist(), abs=1e-9)
    assert a.summary["covered_area_km2"] == pytest.approx(b.summary["covered_area_km2"], rel=1e-6)


@pytest.mark.parametrize("mode", ["straight", "network"])
def test_a_run_in_parts_equals_the_whole_run(engine: Engine, run_settings: Settings, sample_area: AreaInfo,
                                             client: Any, mode: str) -> None:
    whole = load_run(engine, run_coverage(engine, area=sample_area.name, mode=mode, radius_m=500,
                                          settings=run_settings)["run_id"])
    assert whole.summary["measured"] == "points" and 0 < whole.summary["covered_share"] < 1
    for parts in (2, 4):
        said: list[str] = []
        summary = run_coverage(engine, area=sample_area.name, mode=mode, radius_m=500, settings=run_settings,
                               parts=parts, scheduler=client, progress=said.append)
        _same(whole, load_run(engine, summary["run_id"]))
        assert summary["params"]["partitions"]["parts"] == parts  # type: ignore[typeddict-item]
        assert sum(f"/{parts} done" in msg for msg in said) == parts


def test_hours_and_capacity_in_parts_along_real_streets(engine: Engine, run_settings: Settings,
                                                        sample_area: AreaInfo, client: Any) -> None:
    """By hour and with capacity along the real walk graph, in 3 parts: the cells' covered hours, the hourly
    figures and the stations' loads are the whole run's."""
    options: dict[str, Any] = {"area": sample_area.name, "mode": "network", "radius_m": 500, "by_hour": True,
                               "capacity": True, "settings": run_settings}
    whole = load_run(engine, run_coverage(engine, **options)["run_id"])
    parts = load_run(engine, run_coverage(engine, parts=3, scheduler=client, **options)["run_id"])
    _same(whole, parts)
    jobs = run_settings.data_dir / "partitioned"
    assert not jobs.exists() or not any(jobs.iterdir())  # stored: the parts' files are gone
    assert whole.hours is not None and parts.hours is not None and whole.loads is not None
    assert whole.hours.covered.max() > 0 and np.ptp(whole.hours.covered) > 0  # hours that differ
    assert np.allclose(parts.hours.demand, whole.hours.demand, rtol=1e-12)
    assert np.allclose(parts.hours.covered, whole.hours.covered, rtol=1e-12, atol=1e-12)
    assert parts.cells["covered_hours"].tolist() == whole.cells["covered_hours"].tolist()
    assert parts.params["by_hour"]["pairs"] == whole.params["by_hour"]["pairs"] > 0
    assert parts.loads is not None and len(whole.loads) > 0
    a, b = parts.loads.sort_values("station_id"), whole.loads.sort_values("station_id")
    assert a["station_id"].tolist() == b["station_id"].tolist()
    assert np.allclose(a["peak_demand"].to_numpy(float), b["peak_demand"].to_numpy(float), rtol=1e-9,
                       equal_nan=True)
    with pytest.raises(InvalidInput, match="unknown_hours"):  # refused before any part is computed
        run_coverage(engine, area=sample_area.name, settings=run_settings, parts=2, by_hour=True,
                     unknown_hours="maybe", scheduler=client)


def test_a_run_along_the_streets_uses_the_street_parts(engine: Engine, run_settings: Settings,
                                                       sample_area: AreaInfo, client: Any,
                                                       extracts: tuple[Path, Path]) -> None:
    """With the area's street graphs per partition built from the extract (2 x 2 tiles), a run in parts along the
    streets takes their tiles as its parts, loads each tile's own graph, and equals the whole run."""
    whole = load_run(engine, run_coverage(engine, area=sample_area.name, mode="network", radius_m=500,
                                          settings=run_settings)["run_id"])
    manifest = build_street_parts(sample_area, extracts[1], profile="walk", tiles=(2, 2), halo_m=2500,
                                  settings=run_settings)
    assert street_parts_manifest(sample_area, "walk", run_settings) == manifest
    assert street_parts_manifest(sample_area, "bike", run_settings) is None
    summary = run_coverage(engine, area=sample_area.name, mode="network", radius_m=500, settings=run_settings,
                           parts=3, scheduler=client)
    assert summary["params"]["partitions"]["parts"] == 4  # type: ignore[typeddict-item]  # the tiles, not 3
    _same(whole, load_run(engine, summary["run_id"]))
    with pytest.raises(InvalidInput, match="halo"):  # a radius the parts' halo is too narrow for
        run_coverage(engine, area=sample_area.name, mode="network", radius_m=1500, settings=run_settings, parts=4,
                     scheduler=client)


def test_an_area_with_only_street_parts_runs_in_them_untold(engine: Engine, run_settings: Settings,
                                                            sample_area: AreaInfo, client: Any,
                                                            extracts: tuple[Path, Path]) -> None:
    """An area whose walk graphs per partition were built and whose whole graph is not there (a province's does not
    fit one process): a run along the streets that does not say how many parts, as the console's runs and the
    command line's without --partitions, runs in the tiles' parts on the settings' scheduler and equals the whole
    run; so does the console's job; a straight-line run stays whole; a run asked whole says what is missing."""
    from test_jobs import _wait

    from yizhan.console.jobs import JobRunner
    from yizhan.coverage.streets import default_parts, graph_file

    whole = load_run(engine, run_coverage(engine, area=sample_area.name, mode="network", radius_m=500,
                                          settings=run_settings)["run_id"])
    assert default_parts(sample_area, "network", "walk", run_settings) == 1
    build_street_parts(sample_area, extracts[1], profile="walk", tiles=(2, 2), halo_m=2500, settings=run_settings)
    graph_file(sample_area, "walk", run_settings).unlink()
    on = run_settings.model_copy(update={"dask_scheduler": client.scheduler.address})
    assert default_parts(sample_area, "network", "walk", on) == 4
    assert default_parts(sample_area, "network", "bike", on) == default_parts(sample_area, "straight", "walk", on) == 1
    said: list[str] = []
    summary = run_coverage(engine, area=sample_area.name, mode="network", radius_m=500, settings=on,
                           progress=said.append)
    assert summary["params"]["partitions"]["parts"] == 4  # type: ignore[typeddict-item]
    assert sum("/4 done" in msg for msg in said) == 4
    _same(whole, load_run(engine, summary["run_id"]))
    straight = run_coverage(engine, area=sample_area.name, radius_m=500, settings=on)
    assert "partitions" not in straight["params"]
    runner = JobRunner(engine, on)
    try:
        job = _wait(engine, runner.submit("coverage", sample_area.name, {"radius_m": 500, "mode": "network",
                                                                          "profile": "walk"}, user="planner1"))
    finally:
        runner.shutdown()
    assert job.state == "done", job.error
    assert job.result_id is not None
    by_job = load_run(engine, job.result_id)
    assert by_job.params["partitions"]["parts"] == 4
    _same(whole, by_job)
    with pytest.raises(InvalidInput, match="no whole walk street network, only its graphs per partition"):
        run_coverage(engine, area=sample_area.name, mode="network", radius_m=500, settings=on, parts=1)
