"""A coverage run measured on the demand points, by hour of the week and with capacity, on the demo area of the
real Wudaokou extract: each stored figure against a plain computation from the stored points, stations and hours."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from point_rows import NO_TIME, point_frame, rewrite_points
from sqlalchemy import text

from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.euclidean import geodesic_band
from yizhan.coverage.network import network_nearest, snap_points
from yizhan.coverage.runs import load_run
from yizhan.coverage.streets import load_area_graph
from yizhan.data.demand import stored_points
from yizhan.data.demand_profile import store_profile
from yizhan.errors import InvalidInput
from yizhan.geo.coords import GEOD
from yizhan.stations.registry import stations_frame
from yizhan.weekly.availability import station_open
from yizhan.weekly.masks import unpack
from yizhan.weekly.profile import DEFAULT_PROFILE

RADIUS = 800.0


def _inputs(engine, area):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        size = conn.execute(text("SELECT max(cell_size_m) FROM area_cells WHERE area_id = :a"),
                            {"a": area.id}).scalar_one()
        pts = stored_points(conn, area, cell_size_m=size, timezone="Asia/Shanghai")
        st = stations_frame(conn, area.id)
    return pts, st[st["status"] == "active"].reset_index(drop=True)


def _geodesic(pts, st):  # type: ignore[no-untyped-def]
    """(n_points, n_stations) geodesic metres, one station at a time."""
    out = np.empty((len(pts), len(st)))
    for j, (lon, lat) in enumerate(zip(st.geometry.x, st.geometry.y, strict=True)):
        out[:, j] = GEOD.inv(pts.lon, pts.lat, np.full(len(pts), lon), np.full(len(pts), lat))[2]
    return out


def test_points_are_measured_on_the_ellipsoid(engine, sample_area):
    summary = run_coverage(engine, radius_m=RADIUS)
    assert summary["measured"] == "points"
    pts, st = _inputs(engine, sample_area)
    covered = (_geodesic(pts, st) <= RADIUS).any(axis=1)
    assert summary["demand_covered"] == pytest.approx(float(pts.weight[covered].sum()), abs=1e-3)
    run = load_run(engine, summary["run_id"])
    cells = run.cells.set_index("cell_key")
    per_cell = {}
    for key, w, c in zip(pts.cell_key, pts.weight, covered, strict=True):
        per_cell[key] = per_cell.get(key, 0.0) + w * c
    assert np.allclose([per_cell[k] for k in cells.index], cells["covered_weight"])
    # a cell is covered when at least half of its orders are; the gaps hold only the orders left out
    assert (cells["covered"] == (cells["covered_weight"] >= 0.5 * cells["weight"])).all()
    assert run.gaps["demand"].sum() == pytest.approx(
        float((cells["weight"] - cells["covered_weight"])[~cells["covered"]].sum()))
    # on cell centres the figure differs: the summary says which was used
    centres = run_coverage(engine, radius_m=RADIUS, measure="cells")
    assert centres["measured"] == "cells" and centres["demand_covered"] != summary["demand_covered"]


def test_by_hour_straight_equals_a_plain_loop(engine, sample_area):
    summary = run_coverage(engine, radius_m=RADIUS, by_hour=True)
    pts, st = _inputs(engine, sample_area)
    avail = station_open(list(st["opening_hours"]), tz="Asia/Shanghai")
    within = _geodesic(pts, st) <= RADIUS
    demand = np.zeros(168)
    covered = np.zeros(168)
    for i in range(len(pts)):
        hours = [int(pts.hour[i])] if pts.hour[i] >= 0 else list(range(168))
        share = [1.0] if pts.hour[i] >= 0 else list(DEFAULT_PROFILE / DEFAULT_PROFILE.sum())
        for h, s in zip(hours, share, strict=True):
            demand[h] += pts.weight[i] * s
            if (within[i] & avail.open[:, h]).any():
                covered[h] += pts.weight[i] * s
    run = load_run(engine, summary["run_id"])
    assert run.hours is not None
    assert np.allclose(run.hours.demand, demand) and np.allclose(run.hours.covered, covered)
    assert np.array_equal(run.hours.open_stations, avail.open.sum(axis=0))
    by = summary["by_hour"]
    assert by["measured"] == "points" and by["profile"] == "订单自带时间 orders' own times"
    # per township: the worst hour and the uncovered demand-hours add up to the area's
    assert sum(u["uncovered_demand_hours"] for u in by["units"]) == pytest.approx(by["uncovered_demand_hours"])
    assert by["uncovered_demand_hours"] == pytest.approx(float((demand - covered).sum()))
    worst = by["worst_hours"][0]
    assert worst["hour"] == int(np.argmax(demand - covered))
    shares = by["covered_share_by_hour"]
    assert all((s is None) == (d == 0) for s, d in zip(shares, demand, strict=True))
    # townships add up to the area, hour by hour
    units = run.hours.units.groupby("hour")[["demand", "covered"]].sum()
    assert np.allclose(units["demand"], demand) and np.allclose(units["covered"], covered)
    # the cells' hours: covered at h when half of their orders are
    masks = np.stack([np.frombuffer(b, np.uint8) for b in run.cells["covered_hours"]])
    cells = run.cells.reset_index(drop=True)
    key = {k: i for i, k in enumerate(cells["cell_key"])}
    cover_h = np.zeros((len(cells), 168))
    for i in range(len(pts)):
        cover_h[key[pts.cell_key[i]]] += pts.weight[i] * (within[i][:, None] & avail.open).any(axis=0)
    assert np.array_equal(unpack(masks), cover_h >= 0.5 * cells["weight"].to_numpy()[:, None])
    assert np.array_equal(cells["hours_covered"], unpack(masks).sum(axis=1))
    # the demo's orders fall between 10:30 and 21:30: no demand at night, no night gap
    assert by["night_gap_cells"] == int(cells["night_gap"].sum()) == 0


def test_by_hour_along_the_streets_equals_one_search_per_hour(engine, sample_area, settings):
    summary = run_coverage(engine, radius_m=RADIUS, mode="network", profile="walk", settings=settings, by_hour=True)
    pts, st = _inputs(engine, sample_area)
    graph = load_area_graph(sample_area, "walk", settings)
    from pyproj import Transformer

    to_m = Transformer.from_crs(4326, graph.crs_epsg, always_xy=True)
    st_snap = snap_points(graph, np.column_stack(to_m.transform(st.geometry.x, st.geometry.y)),
                          max_snap_m=settings.max_snap_m)
    pt_snap = snap_points(graph, np.column_stack([pts.x, pts.y]), max_snap_m=settings.max_snap_m)
    avail = station_open(list(st["opening_hours"]), tz="Asia/Shanghai")
    covered = np.zeros(168)
    seen: dict[bytes, np.ndarray] = {}
    for h in range(168):  # the plain way: one nearest search per hour among the stations open then
        open_now = avail.open[:, h]
        if open_now.tobytes() not in seen:
            res = network_nearest(graph, st_snap.take(np.flatnonzero(open_now)), pt_snap, radius_m=RADIUS,
                                  include_access=True)
            seen[open_now.tobytes()] = res.covered
        hit = seen[open_now.tobytes()] & (pts.hour == h)
        covered[h] = pts.weight[hit].sum()
    run = load_run(engine, summary["run_id"])
    assert run.hours is not None
    assert np.allclose(run.hours.covered, covered)
    assert summary["by_hour"]["covered_share"] < summary["covered_share"]


def test_capacity_loads(engine, sample_area, settings):
    with engine.begin() as conn:  # seats not recorded at some stations: left out of the supply, counted
        unknown = conn.execute(text("UPDATE stations SET seats = NULL WHERE id % 3 = 0")).rowcount
    assert unknown > 0
    crowded = settings.model_copy(update={"crowded_per_seat": 0.5})
    summary = run_coverage(engine, radius_m=RADIUS, capacity=True, decay="stepwise", settings=crowded)
    cap = summary["capacity"]
    assert cap["method"] == "E2SFCA" and cap["crowded_per_seat"] == 0.5
    assert cap["stations_without_seats"] >= 1
    # each hour per a typical week: divided by how often its weekday occurs between the first and last order's day
    pts, _ = _inputs(engine, sample_area)
    with engine.connect() as conn:
        local = point_frame(conn)["observed_at"].dt.tz_convert("Asia/Shanghai").dt.date
        first, last = local.min(), local.max()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = np.bincount([d.weekday() for d in days], minlength=7)
    typical = np.bincount(pts.hour, weights=pts.weight, minlength=168) / np.repeat(np.maximum(per_day, 1), 24)
    assert cap["peak_hour"] == int(np.argmax(typical)) and cap["peak_demand"] == pytest.approx(typical.max())
    assert "occurrences" in cap["period"]
    run = load_run(engine, summary["run_id"])
    loads = run.loads
    assert loads is not None and len(loads) == summary["stations"]
    per_seat = loads["per_seat"].to_numpy(float)
    assert (loads["crowded"] == (np.nan_to_num(per_seat, nan=-1) > 0.5)).all()
    assert sorted(cap["crowded_stations"]) == sorted(loads.loc[loads["crowded"], "station_id"])
    assert (run.cells["accessibility"].dropna() >= 0).all() and run.cells["accessibility"].notna().any()
    assert run.hours is None  # capacity alone keeps no hours


def test_profile_and_refusals(engine, sample_area):
    with engine.begin() as conn:
        rewrite_points(conn, sample_area.id, lambda f: f.assign(micros=np.where(f["id"] % 2 == 0, NO_TIME,
                                                                                  f["micros"])))
        store_profile(conn, sample_area.id, np.r_[np.zeros(167), 1.0], source="周日深夜.csv")
    summary = run_coverage(engine, radius_m=RADIUS, by_hour=True)
    assert "file: 周日深夜.csv" in summary["by_hour"]["profile"]
    run = load_run(engine, summary["run_id"])
    assert run.hours is not None
    pts, _ = _inputs(engine, sample_area)
    untimed, at_167 = pts.weight[pts.hour < 0].sum(), pts.weight[pts.hour == 167].sum()
    assert run.hours.demand[167] == pytest.approx(float(untimed + at_167))
    # untimed orders now fall on Sunday 23:00: cells covered by day and not then are night gaps
    masks = unpack(np.stack([np.frombuffer(b, np.uint8) for b in run.cells["covered_hours"]]))
    night = np.r_[np.arange(22, 24), np.arange(0, 6)]
    night_hours = np.concatenate([night + 24 * d for d in range(7)])
    day = np.setdiff1d(np.arange(168), night_hours)
    has_untimed = run.cells["cell_key"].isin(set(pts.cell_key[pts.hour < 0]))
    expected = masks[:, day].any(axis=1) & ~masks[:, 167] & has_untimed.to_numpy()
    assert expected.any() and np.array_equal(run.cells["night_gap"].to_numpy(bool), expected)
    assert summary["by_hour"]["night_gap_cells"] == int(expected.sum())
    with pytest.raises(InvalidInput, match="decay"):
        run_coverage(engine, radius_m=RADIUS, capacity=True, decay="linear")
    with pytest.raises(InvalidInput, match="unknown_hours"):
        run_coverage(engine, radius_m=RADIUS, by_hour=True, unknown_hours="maybe")
    assert geodesic_band(1000.0) == pytest.approx(2.0)


def test_profile_command(engine, sample_area, cli_env, tmp_path):
    from cli_runner import run_cli

    good = tmp_path / "曲线.csv"
    rows = ["星期,小时,权重"] + [f"周{'一二三四五六日'[d]},{h},{10 if h in (12, 18) else 1}"
                                 for d in range(7) for h in range(24)]
    good.write_text("\n".join(rows), encoding="utf-8")
    done = run_cli("demand", "profile", str(good), env=cli_env)
    assert "曲线.csv" in done.stdout
    shown = run_cli("demand", "profile", env=cli_env).stdout
    assert "曲线.csv" in shown and "周一" in shown
    two = tmp_path / "two.csv"
    two.write_text("\n".join(["星期,小时,订单量,占比"] + [r + ",1" for r in rows[1:]]), encoding="utf-8")
    failed = run_cli("demand", "profile", str(two), env=cli_env, check=False)
    assert failed.returncode != 0 and "订单量" in failed.stderr and "占比" in failed.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*rows[:5], "周八,3,1", *rows[6:]]), encoding="utf-8")
    failed = run_cli("demand", "profile", str(bad), env=cli_env, check=False)
    assert failed.returncode != 0 and "周八" in failed.stderr and "Traceback" not in failed.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT source FROM demand_profiles")).scalar_one() == "曲线.csv"
    assert "built-in" in run_cli("demand", "profile", "--clear", env=cli_env).stdout


def test_coverage_command_by_hour(engine, sample_area, cli_env):
    from cli_runner import run_cli

    out = run_cli("coverage", "--radius", "800", "--by-hour", "--capacity", "--decay", "gaussian",
                  "--week-of", "2026年10月1日", env=cli_env).stdout
    assert "按营业时间覆盖" in out and "周日" in out and "capacity (E2SFCA)" in out
    with engine.connect() as conn:
        params = conn.execute(text("SELECT params FROM coverage_runs ORDER BY id DESC LIMIT 1")).scalar_one()
    assert params["by_hour"]["week_start"] == "2026-09-28" and params["by_hour"]["holidays"]
    assert params["capacity"]["decay"]["kind"] == "gaussian"
    bad = run_cli("coverage", "--by-hour", "--week-of", "下周", env=cli_env, check=False)
    assert bad.returncode != 0 and "--week-of" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("coverage", "--capacity", "--decay", "linear", env=cli_env, check=False)
    assert bad.returncode != 0 and "linear" in bad.stderr and "Traceback" not in bad.stderr
    for args in (("--decay", "stepwise"), ("--week-of", "2026-10-01"), ("--measure", "both")):
        bad = run_cli("coverage", *args, env=cli_env, check=False)
        assert bad.returncode != 0 and args[0].lstrip("-") in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_hours_and_loads_over_http(engine, db_url, sample_area, settings, live_api):
    plain = run_coverage(engine, radius_m=RADIUS)["run_id"]
    run_id = run_coverage(engine, radius_m=RADIUS, by_hour=True, capacity=True, settings=settings)["run_id"]
    client = live_api(settings.model_copy(update={"database_url": db_url}))
    key = {"X-API-Key": "k"}
    assert client.get(f"/runs/{run_id}/hours").status_code == 401
    summary = client.get(f"/runs/{run_id}", headers=key).json()
    assert summary["measured"] == "points" and len(summary["by_hour"]["covered_share_by_hour"]) == 168
    doc = client.get(f"/runs/{run_id}/hours", headers=key).json()
    run = load_run(engine, run_id)
    assert run.hours is not None and len(doc["hours"]) == 168
    assert [h["demand"] for h in doc["hours"]] == pytest.approx(list(run.hours.demand))
    assert doc["hours"][12]["label_zh"] == "周一 12时"
    assert doc["figures"]["worst_hours"] == summary["by_hour"]["worst_hours"]
    assert sum(sum(u["demand"]) for u in doc["units"]) == pytest.approx(summary["demand_total"])
    loads = client.get(f"/runs/{run_id}/loads", headers=key).json()
    assert len(loads["stations"]) == summary["stations"] and loads["capacity"]["method"] == "2SFCA"
    for path in (f"/runs/{plain}/hours", f"/runs/{plain}/loads", "/runs/99999/hours"):
        r = client.get(path, headers=key)
        assert r.status_code == 404 and "Traceback" not in r.text, r.text
