"""Console jobs (console.jobs) on real PostGIS: a coverage run and a recommendation done in the background with
their progress stored, failures kept as one line, bad parameters refused before anything is stored, a job whose
process stopped read as interrupted."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from yizhan.console.jobs import STALE_S, JobRunner, checked_params, job_of, list_jobs
from yizhan.coverage.runs import summary_of
from yizhan.errors import InvalidInput
from yizhan.settings import Settings
from yizhan.siting.candidates import candidates_from_extract, store_candidates


def _wait(engine, job_id, timeout=120.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with engine.connect() as conn:
            job = job_of(conn, job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_a_coverage_run_in_the_background(engine, sample_area, settings):
    runner = JobRunner(engine, settings)
    try:
        job_id = runner.submit("coverage", sample_area.name, {"radius_m": 800, "mode": "network", "profile": "walk"},
                               user="planner1")
        job = _wait(engine, job_id)
    finally:
        runner.shutdown()
    assert job.state == "done" and job.error is None and job.message == "完成 / done", job
    assert (job.kind, job.area, job.created_by) == ("coverage", sample_area.name, "planner1")
    assert job.params == {"radius_m": 800.0, "mode": "network", "profile": "walk", "by_hour": False,
                          "capacity": False, "decay": "none", "unknown_hours": "open"}
    with engine.connect() as conn:
        run = summary_of(conn, job.result_id)
        assert [j.id for j in list_jobs(conn, kind="coverage")] == [job_id]
    assert (run["mode"], run["radius_m"], run["profile"]) == ("network", 800.0, "walk")


def test_a_recommendation_in_the_background(engine, sample_area, settings, osm_path):
    with engine.begin() as conn:
        store_candidates(conn, sample_area, candidates_from_extract(osm_path), source="extract")
    runner = JobRunner(engine, settings)
    try:
        job = _wait(engine, runner.submit("recommendation", sample_area.name, {"k": 2}, user="planner1"))
    finally:
        runner.shutdown()
    assert job.state == "done", job.error
    with engine.connect() as conn:
        k = conn.execute(text("SELECT k FROM recommendation_runs WHERE id = :r"), {"r": job.result_id}).scalar_one()
    assert k == 2


def test_a_failure_is_one_line(engine, wudaokou, tmp_path):
    runner = JobRunner(engine, Settings(data_dir=tmp_path / "data"))
    try:  # the area has no demand yet
        job = _wait(engine, runner.submit("coverage", wudaokou.name, {}, user="p"))
    finally:
        runner.shutdown()
    assert job.state == "failed" and job.result_id is None
    assert "has no demand cells" in (job.error or "") and "\n" not in (job.error or "")


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("coverage", {"radius_m": -1}, "radius"),
    ("coverage", {"mode": "bus"}, "mode"),
    ("coverage", {"profile": "car"}, "profile"),
    ("recommendation", {}, "exactly one of"),
    ("recommendation", {"k": 3, "target": 0.9}, "exactly one of"),
    ("recommendation", {"k": 0}, "1 to 500"),
    ("recommendation", {"target": 1.5}, "at most 1"),
])
def test_bad_parameters_are_refused_before_anything_is_stored(engine, wudaokou, settings, kind, params, message):
    runner = JobRunner(engine, settings)
    try:
        with pytest.raises(InvalidInput, match=message):
            runner.submit(kind, wudaokou.name, params, user="p")
    finally:
        runner.shutdown()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0


def test_defaults_come_from_the_settings(settings):
    assert checked_params("coverage", {}, settings) == {"radius_m": settings.radius_m, "mode": "straight",
                                                        "profile": "walk", "by_hour": False, "capacity": False,
                                                        "decay": "none", "unknown_hours": "open"}


def test_a_job_whose_process_stopped_reads_as_interrupted(engine, wudaokou):
    with engine.begin() as conn:
        job_id = conn.execute(text(
            "INSERT INTO jobs (kind, area_id, state, created_by, heartbeat) SELECT 'coverage', id, 'running', 'p', "
            "now() - make_interval(secs => :old) FROM areas WHERE name = :a RETURNING id"),
            {"old": STALE_S + 5, "a": wudaokou.name}).scalar_one()
        assert job_of(conn, job_id).state == "interrupted"
        conn.execute(text("UPDATE jobs SET heartbeat = now() WHERE id = :i"), {"i": job_id})
        assert job_of(conn, job_id).state == "running"
