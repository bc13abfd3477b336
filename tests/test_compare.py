"""Two stored runs side by side (coverage.compare) on the real demo sample area and PostGIS: the per-township figures
are each run's stored ones, the changed cells are exactly the cells whose covered flag differs, and what differs
besides the stations is said."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.compare import UNIT_COLUMNS, compare_runs
from yizhan.coverage.runs import units_table
from yizhan.errors import InvalidInput, NotFound


def _covered(engine, run_id):  # type: ignore[no-untyped-def]
    """Each cell's covered orders: those of its points (runs measured on points) or all of it when covered."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT cell_key, covered, weight, covered_weight FROM run_cells_in_layer "
                                 "WHERE run_id = :r"),
                            {"r": run_id}).all()
    return {r.cell_key: r.covered_weight if r.covered_weight is not None else r.weight * r.covered for r in rows}


def test_straight_against_streets(engine, sample_area, settings):
    straight = run_coverage(engine, radius_m=1000)["run_id"]
    streets = run_coverage(engine, radius_m=1000, mode="network", profile="walk", settings=settings)["run_id"]
    cmp = compare_runs(engine, straight, streets)
    assert list(cmp.units.columns) == UNIT_COLUMNS
    with engine.connect() as conn:
        a, b = units_table(conn, straight), units_table(conn, streets)
    assert list(cmp.units["name"]) == sorted(set(a["name"]) | set(b["name"]))
    for row in cmp.units.itertuples():
        ra, rb = a[a["name"] == row.name].iloc[0], b[b["name"] == row.name].iloc[0]
        assert (row.share_before, row.share_after) == (ra["covered_share"], rb["covered_share"])
        assert row.change_pp == pytest.approx((rb["covered_share"] - ra["covered_share"]) * 100, abs=1e-4)
    before, after = _covered(engine, straight), _covered(engine, streets)
    gained = {k for k in before if after[k] > before[k] + 1e-9}
    lost = {k for k in before if after[k] < before[k] - 1e-9}
    assert set(cmp.newly_covered["cell_key"]) == gained
    assert set(cmp.no_longer_covered["cell_key"]) == lost
    assert lost, "along the streets reaches less than the straight line somewhere"
    assert cmp.no_longer_covered["weight"].sum() == pytest.approx(sum(before[k] - after[k] for k in lost))
    assert cmp.newly_covered["weight"].sum() - cmp.no_longer_covered["weight"].sum() == pytest.approx(
        cmp.after["demand_covered"] - cmp.before["demand_covered"], abs=1e-6)
    assert cmp.no_longer_covered.crs.to_epsg() == 4326
    assert cmp.change_pp == pytest.approx((cmp.after["covered_share"] - cmp.before["covered_share"]) * 100, abs=1e-3)
    assert cmp.notes == [("方法不同：直线 → 沿街道步行", "methods differ: straight line → along the streets, walking")]


def test_a_new_station_is_newly_covered_demand(engine, sample_area):
    first = run_coverage(engine, radius_m=500)["run_id"]
    with engine.begin() as conn:  # a new station in the middle of the largest gap
        lon, lat, area_id = conn.execute(text(
            "SELECT ST_X(g.centroid), ST_Y(g.centroid), r.area_id FROM gaps g JOIN coverage_runs r ON r.id = g.run_id "
            "WHERE g.run_id = :r ORDER BY g.rank LIMIT 1"), {"r": first}).one()
        conn.execute(text("INSERT INTO stations (external_id, name, kind, area_id, geom, status) VALUES "
                          "('CMP-NEW', '新驿站', 'small', :a, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'active')"),
                     {"a": area_id, "x": lon, "y": lat})
    second = run_coverage(engine, radius_m=500)["run_id"]
    cmp = compare_runs(engine, first, second)
    assert len(cmp.newly_covered) > 0 and len(cmp.no_longer_covered) == 0
    assert cmp.notes == []
    gained = float(cmp.newly_covered["weight"].sum())
    assert gained == pytest.approx(cmp.after["demand_covered"] - cmp.before["demand_covered"], rel=1e-9)
    assert np.all(cmp.units["change_pp"] >= 0)


def test_refusals(engine, sample_area):
    run = run_coverage(engine, radius_m=800)["run_id"]
    with pytest.raises(InvalidInput, match="two different runs"):
        compare_runs(engine, run, run)
    with pytest.raises(NotFound):
        compare_runs(engine, run, run + 999)
    other = run_coverage(engine, radius_m=1200)["run_id"]
    assert compare_runs(engine, run, other).notes == [("服务半径不同：800 米 → 1200 米",
                                                       "radius differs: 800 m → 1200 m")]
