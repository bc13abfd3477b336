"""An area's demand points stored as blocks of column bytes in its own partition (``data.demand_points``): what a
re-import swaps in, what a failed one leaves, two areas apart, appended points numbered on, and the points read back
against PostGIS's own transform and time zone arithmetic. Real files, a real PostGIS, migrations run down and up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from alembic import command
from point_rows import NO_TIME, point_frame, rewrite_points
from shapely.geometry import box
from sqlalchemy import Engine, text

from yizhan.areas import AreaInfo, ensure_area, resolve_area
from yizhan.data.demand import import_demand
from yizhan.data.demand_points import (
    PointBlock,
    drop_points,
    load_points,
    partition_name,
    point_totals,
    replace_points,
    stored_points,
)
from yizhan.db.engine import alembic_config, make_engine
from yizhan.errors import ImportRejected, InvalidInput

WEST, SOUTH, EAST, NORTH = 116.3084, 39.9905, 116.3320, 40.0123  # the Wudaokou test area (conftest)
ZONE = "Asia/Shanghai"


def _csv(tmp_path: Path, name: str, n: int, seed: int, *, blank_times: int = 0) -> pd.DataFrame:
    """``n`` orders in the area written to ``name`` (lon, lat, weight, 下单时间 local time, ``blank_times`` of them
    blank); the frame as written."""
    rng = np.random.default_rng(seed)
    times = (pd.Timestamp("2026-11-23 00:00") + pd.to_timedelta(rng.integers(0, 14 * 24 * 60, n), unit="min")
             ).strftime("%Y-%m-%d %H:%M:%S").to_numpy(object)
    times[rng.choice(n, blank_times, replace=False)] = ""
    frame = pd.DataFrame({"lon": rng.uniform(WEST, EAST, n).round(7), "lat": rng.uniform(SOUTH, NORTH, n).round(7),
                          "weight": rng.integers(1, 6, n).astype(float), "下单时间": times})
    frame.to_csv(tmp_path / name, index=False)
    return frame


def _stored(engine: Engine, area_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return point_frame(conn, area_id)[["id", "lon", "lat", "weight"]]


def _tables(engine: Engine, pattern: str) -> list[tuple[str, str, bool]]:
    """Tables whose name is like ``pattern``: name, kind, and whether it is a partition."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT relname, relkind, relispartition FROM pg_class WHERE relname LIKE :p AND relkind IN ('r', 'p') "
            "ORDER BY relname"), {"p": pattern}).all()]


def test_a_reimport_swaps_the_partition_and_a_failed_one_leaves_the_points(engine: Engine, wudaokou: AreaInfo,
                                                                            tmp_path: Path) -> None:
    first = _csv(tmp_path, "first.csv", 3000, seed=1)
    import_demand(engine, tmp_path / "first.csv", area="wudaokou")
    name = partition_name(wudaokou.id)
    assert _tables(engine, "demand_point%") == [("demand_point_blocks", "p", False), (name, "r", True)]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_index WHERE indrelid = CAST(:t AS regclass)"),
                            {"t": name}).scalar_one() == 0
    second = _csv(tmp_path, "second.csv", 2000, seed=2)
    import_demand(engine, tmp_path / "second.csv", area="wudaokou")
    got = _stored(engine, wudaokou.id)
    assert got["id"].tolist() == list(range(1, 2001))
    assert np.array_equal(got[["lon", "lat", "weight"]].to_numpy(), second[["lon", "lat", "weight"]].to_numpy())
    # a file refused by row: nothing changes
    bad = second.copy()
    bad.loc[1500, "weight"] = -1.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ImportRejected, match="1502"):
        import_demand(engine, tmp_path / "bad.csv", area="wudaokou")
    # a load that fails while the COPY runs, and one that fails after the load, before the swap
    def failing() -> Iterator[PointBlock]:
        yield _block(first.iloc[:1000], wudaokou)
        raise RuntimeError("the file broke off")

    with pytest.raises(RuntimeError, match="broke off"), engine.begin() as conn:
        replace_points(conn.connection.driver_connection, wudaokou.id, failing())
    with pytest.raises(RuntimeError, match="after the load"), engine.begin() as conn:
        loaded = load_points(conn.connection.driver_connection, wudaokou.id, [_block(first, wudaokou)])
        assert loaded.count == 3000
        raise RuntimeError("after the load")
    after = _stored(engine, wudaokou.id)
    assert after.equals(got)
    assert _tables(engine, "demand_point%") == [("demand_point_blocks", "p", False), (name, "r", True)]


def _block(frame: pd.DataFrame, area: AreaInfo) -> PointBlock:
    from yizhan.data.demand_fast import metres

    lon, lat = frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
    x, y = metres(lon, lat, area.crs_epsg)
    n = len(frame)
    return PointBlock(lon, lat, x, y, frame["weight"].to_numpy(float), np.zeros(n, np.int64), np.zeros(n, bool))


def test_two_areas_keep_their_own_partitions(engine: Engine, wudaokou: AreaInfo, tmp_path: Path) -> None:
    with engine.begin() as conn:
        ensure_area(conn, "east", boundary=box(WEST, SOUTH, EAST, NORTH), source="test")
        east = resolve_area(conn, "east")
    a = _csv(tmp_path, "a.csv", 500, seed=3)
    b = _csv(tmp_path, "b.csv", 700, seed=4)
    import_demand(engine, tmp_path / "a.csv", area="wudaokou")
    import_demand(engine, tmp_path / "b.csv", area="east")
    import_demand(engine, tmp_path / "b.csv", area="wudaokou", fast=False)
    assert [t[0] for t in _tables(engine, "demand_point_blocks_a%")] == sorted(
        [partition_name(wudaokou.id), partition_name(east.id)])
    assert np.array_equal(_stored(engine, east.id)["lon"].to_numpy(), b["lon"].to_numpy())
    assert np.array_equal(_stored(engine, wudaokou.id)["lon"].to_numpy(), b["lon"].to_numpy())
    assert len(a) == 500
    with engine.begin() as conn:
        drop_points(conn.connection.driver_connection, east.id)
    assert _stored(engine, east.id).empty and len(_stored(engine, wudaokou.id)) == 700
    with engine.connect() as conn:
        assert point_totals(conn, east.id).count == 0
        totals = point_totals(conn, wudaokou.id)
    assert (totals.count, totals.last_id, totals.weight) == (700, 700, pytest.approx(b["weight"].sum()))


def test_points_read_back_as_postgis_reads_them(engine: Engine, wudaokou: AreaInfo, tmp_path: Path) -> None:
    """x, y against ST_Transform, the hour of the week against PostgreSQL's own time zone arithmetic, each point's
    cell against the stored cells, the span of times; the order of storage kept after the points are stored again
    with times taken away; appended points numbered on, by the general path as by the fast one."""
    first = _csv(tmp_path, "orders.csv", 4000, seed=5, blank_times=300)
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou", cell_size_m=150.0)
    _csv(tmp_path, "more.csv", 600, seed=6, blank_times=50)
    import_demand(engine, tmp_path / "more.csv", area="wudaokou", cell_size_m=150.0, append=True)
    _csv(tmp_path, "more2.csv", 100, seed=7)
    import_demand(engine, tmp_path / "more2.csv", area="wudaokou", cell_size_m=150.0, append=True, fast=False)
    with engine.connect() as conn:
        pts = stored_points(conn, wudaokou, cell_size_m=150.0, timezone=ZONE)
        rows = point_frame(conn, wudaokou.id)
        ref = pd.DataFrame(conn.execute(text(f"""
            SELECT k AS id, ST_X(p) AS x, ST_Y(p) AS y,
                   CASE WHEN t IS NULL THEN -1
                        ELSE (extract(isodow FROM t AT TIME ZONE '{ZONE}')::int - 1) * 24
                             + extract(hour FROM t AT TIME ZONE '{ZONE}')::int END AS hour
            FROM (SELECT k, t, ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), :crs) AS p
                  FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[]), CAST(:t AS timestamptz[]))
                       WITH ORDINALITY AS u(lon, lat, t, k)) q ORDER BY k"""),
            {"crs": wudaokou.crs_epsg, "lon": rows["lon"].tolist(), "lat": rows["lat"].tolist(),
             "t": [None if pd.isna(v) else v.to_pydatetime() for v in rows["observed_at"]]}).all())
        span = (rows["observed_at"].min(), rows["observed_at"].max())
        cells = pd.DataFrame(conn.execute(text("SELECT cell_key, weight, points FROM area_cells WHERE area_id = :a"),
                                          {"a": wudaokou.id}).all()).set_index("cell_key")
    assert len(pts) == 4700 and rows["id"].tolist() == ref["id"].tolist() == list(range(1, 4701))
    assert pts.ids is not None and pts.ids.tolist() == list(range(1, 4701))
    assert np.array_equal(pts.lon[:4000], first["lon"].to_numpy())
    assert np.abs(pts.x - ref["x"].to_numpy()).max() < 1e-6 and np.abs(pts.y - ref["y"].to_numpy()).max() < 1e-6
    assert np.array_equal(pts.hour, ref["hour"].to_numpy()) and (pts.hour == -1).sum() == 350
    assert (pts.first_time, pts.last_time) == tuple(span)
    by_cell = pd.Series(pts.weight).groupby(pd.Series(pts.cell_key)).agg(["sum", "count"])
    assert by_cell.index.sort_values().tolist() == cells.index.sort_values().tolist()
    assert np.allclose(by_cell["sum"], cells.loc[by_cell.index, "weight"])
    assert (by_cell["count"] == cells.loc[by_cell.index, "points"]).all()
    with engine.begin() as conn:
        rewrite_points(conn, wudaokou.id, lambda f: f.assign(micros=np.where(f["id"] % 2 == 0, NO_TIME,
                                                                               f["micros"])))
        moved = stored_points(conn, wudaokou, cell_size_m=150.0, timezone=ZONE)
    assert np.array_equal(moved.lon, pts.lon) and (moved.hour[1::2] == -1).all()


def test_migration_moves_stored_points(db_url: str) -> None:
    """Points stored with a geometry before 0013 come out as numbers (numbered in their former order, x, y in their
    area's CRS), then as blocks (0017), and the downgrade gives them a row each and their geometry back."""
    engine = make_engine(db_url)
    try:
        cfg = alembic_config(db_url)
        command.downgrade(cfg, "0012")
        with engine.begin() as conn:
            area = conn.execute(text("INSERT INTO areas (name, crs_epsg, source) VALUES ('old', 32650, 'test') "
                                     "RETURNING id")).scalar_one()
            for lon, w, when in ((116.31, 2.0, "2026-11-23T08:00:00+08:00"), (116.32, 3.0, None)):
                conn.execute(text("INSERT INTO demand_points (area_id, weight, observed_at, geom) VALUES "
                                  "(:a, :w, :t, ST_SetSRID(ST_MakePoint(:lon, 40.0), 4326))"),
                             {"a": area, "w": w, "t": when, "lon": lon})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            frame = point_frame(conn, area)
            rows = list(zip(frame["id"], frame["lon"], frame["lat"], frame["weight"], frame["observed_at"].isna(),
                            frame["x"], frame["y"], strict=True))
            info = resolve_area(conn, "old")
            pts = stored_points(conn, info, cell_size_m=200.0, timezone=ZONE)
        assert [tuple(r)[:5] for r in rows] == [(1, 116.31, 40.0, 2.0, False), (2, 116.32, 40.0, 3.0, True)]
        assert pts.hour.tolist() == [8, -1]  # Monday 08:00 in Beijing
        assert 300_000 < rows[0][5] < 500_000 and 4_400_000 < rows[0][6] < 4_500_000  # UTM 50N metres
        assert _tables(engine, "demand_point_blocks_a%") == [(partition_name(area), "r", True)]
        command.downgrade(cfg, "0016")  # blocks back to a row per point, times and all
        with engine.connect() as conn:
            one = conn.execute(text("SELECT id, lon, weight, observed_at, x FROM demand_points ORDER BY id")).all()
        assert [tuple(r)[:3] for r in one] == [(1, 116.31, 2.0), (2, 116.32, 3.0)]
        assert one[0].observed_at == pd.Timestamp("2026-11-23T00:00:00Z") and one[1].observed_at is None
        assert one[0].x == rows[0][5]
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "0012")
        with engine.connect() as conn:
            back = conn.execute(text("SELECT ST_X(geom), weight FROM demand_points ORDER BY id")).all()
        assert [tuple(r) for r in back] == [(116.31, 2.0), (116.32, 3.0)]
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def test_row_limit_bounds_uploads_not_the_command_line(engine: Engine, cli_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    """The row limit an upload passes (``ImportLimits`` from YIZHAN_MAX_IMPORT_ROWS, as the console does) refuses a
    larger CSV or GeoParquet read by the fast path, in Chinese and English; ``yizhan demand import`` takes the file
    under the same setting, and refuses it in one line with ``--max-rows``."""
    from cli_runner import run_cli

    from yizhan.stations.tables import ImportLimits

    run_cli("area", "create", "wudaokou", "--bbox", f"{WEST},{SOUTH},{EAST},{NORTH}", env=cli_env)
    frame = _csv(tmp_path, "orders.csv", 50, seed=8)
    parquet = tmp_path / "orders.parquet"
    gpd.GeoDataFrame({"weight": frame["weight"]}, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
                     crs="EPSG:4326").to_parquet(parquet)
    for path, said in ((tmp_path / "orders.csv", "超过 10 行 / more than 10 rows"),
                       (parquet, "50 个要素，超过 10 / 50 features, more than the limit of 10")):
        with pytest.raises(InvalidInput, match=said):
            import_demand(engine, path, area="wudaokou", limits=ImportLimits(max_rows=10))
    env = {**cli_env, "YIZHAN_MAX_IMPORT_ROWS": "10"}
    out = run_cli("demand", "import", str(tmp_path / "orders.csv"), env=env).stdout
    assert "50 个需求点" in out and "50 points ->" in out
    refused = run_cli("demand", "import", str(parquet), "--max-rows", "10", env=env, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "more than the limit of 10" in " ".join(refused.stderr.split())
    with engine.connect() as conn:
        assert len(_stored(engine, resolve_area(conn, "wudaokou").id)) == 50


def test_points_stored_in_many_blocks(engine: Engine, wudaokou: AreaInfo, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An area's points stored in many small blocks read back as the points stored in one; an area without points
    reads empty."""
    from yizhan.data import demand_points

    with engine.connect() as conn:
        empty = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE)
    assert len(empty) == 0 and empty.first_time is None and empty.cell_key.tolist() == []
    _csv(tmp_path, "orders.csv", 5000, seed=9, blank_times=100)
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou")
    with engine.connect() as conn:
        whole = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE)
    monkeypatch.setattr(demand_points, "BLOCK_POINTS", 700)
    import_demand(engine, tmp_path / "orders.csv", area="wudaokou")
    with engine.connect() as conn:
        blocks = conn.execute(text("SELECT count(*), min(n), max(n) FROM demand_point_blocks")).one()
        sliced = stored_points(conn, wudaokou, cell_size_m=200.0, timezone=ZONE)
    assert blocks[0] >= 8 and blocks[2] == 700
    for name in ("x", "y", "lon", "lat", "weight", "hour", "ix", "iy"):
        assert np.array_equal(getattr(whole, name), getattr(sliced, name)), name
    assert len(whole) == 5000 and (whole.first_time, whole.last_time) == (sliced.first_time, sliced.last_time)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"])
def test_hour_of_week_by_quarter_hours(zone: str) -> None:
    """The hour of the week read by quarter of an hour equals pandas' conversion of every instant, in zones with
    half-hour offsets and half-hour daylight-saving changes, over a month (one table) and over thirty years."""
    from zoneinfo import ZoneInfo

    from yizhan.data.demand_points import PG_EPOCH_US, hours_of_week

    rng = np.random.default_rng(11)
    for spread in (31 * 86_400 * 10**6, 30 * 365 * 86_400 * 10**6):
        micros = rng.integers(8 * 10**14, 8 * 10**14 + spread, 200_000)
        local = pd.DatetimeIndex((micros + PG_EPOCH_US).astype("datetime64[us]")).tz_localize("UTC").tz_convert(zone)
        assert np.array_equal(hours_of_week(micros, ZoneInfo(zone)), local.day_of_week * 24 + local.hour)


def test_a_schema_at_head_is_left_without_loading_the_migrations(db_url: str) -> None:
    """``migrate`` reads the newest revision from the scripts' text (alembic's own head) and leaves a schema at it;
    a schema below it is upgraded."""
    from alembic.script import ScriptDirectory

    from yizhan.db.engine import at_head, head_revision, migrate

    cfg = alembic_config(db_url)
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert at_head(conn)
        command.downgrade(cfg, "0016")
        with engine.connect() as conn:
            assert not at_head(conn)
            assert conn.execute(text("SELECT to_regclass('demand_point_blocks')")).scalar() is None
        migrate(engine)
        with engine.connect() as conn:
            assert at_head(conn) and conn.execute(text("SELECT to_regclass('demand_point_blocks')")).scalar()
    finally:
        engine.dispose()
