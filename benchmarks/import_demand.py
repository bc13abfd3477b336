"""Demand import at scale: points/s of ``import_demand`` (the fast path: pyarrow, numpy, binary COPY) from a CSV and
a GeoParquet of synthetic orders, per phase, beside the general path.

Run with ``.venv/bin/python benchmarks/import_demand.py [--sizes 1000000,10000000] [--old 100000] [--keep]`` on a
quiet machine (``uptime``). A throw-away PostgreSQL + PostGIS cluster (fsync off) in a temporary folder holds one
area, Beijing (UTM 50N). For each size, synthetic orders (``beijing_data.beijing_points``: lon, lat in WGS 84
degrees, a weight 1 to 5, a Beijing time without an offset in the CSV, an aware time in the GeoParquet) are written
as a CSV and a GeoParquet file, and each file is imported in a new process of its own (so that its peak memory is
its own) by ``import_demand`` end to end (points and 200 m cells stored, one transaction), with the wall time of
each phase it reports: read (pyarrow), check (numpy, the rules of ``check_demand``), transform (coordinate system),
area test, metres (the points in the area's CRS), cells (numpy: each batch's points summed into their squares, then
the sums merged), COPY points (into a new table: the time beyond the phases before, each stored block of column
bytes encoded and sent while the server stores the block before), COPY cells (into the new layer's own table), index
cells (that table attached to ``demand_cells``: its indexes built), close layer (its count and weight recorded, the
retired layer dropped), swap (the old partition of points dropped, the new one attached), commit. Then the stored
points are read back (``stored_points``), whole and within the box a part of a run in parts reads (a tile of a 4 x 4
grid over the points' box grown by 1 km: the points kept, and how many of the stored blocks lie across the box), and
the encoding of the blocks is timed alone. Each file of the fast path is then imported again by ``yizhan demand
import`` in a new process, as a clerk runs it (``--no-cli``: not), timed from the start of the process to its exit
against the goal of 1,000,000 points/s, with the load average after it; where the goal is not met, the phases above
say where the time goes. ``--old`` points go through both paths (``fast=False``: the general reader). ``--variants
N`` points held in memory are stored and read back in several ways (``copy_variants``). Printed: wall seconds
(``time.perf_counter``), points/s, the import process's peak resident memory (MB, ``VmHWM``) after the import and
after the read back. The figures are printed, not asserted.

``--h3 RES`` imports each file of the fast path a second time with its cells H3 hexagons of resolution ``RES``
(``import_demand(h3_res=RES)``, ``yizhan demand import --h3 RES``) in the same run, beside the squares, with the
time of finding the points' H3 cells alone (the kernel: ``data.h3_cells.h3_indices``, one h3 call per point; and
``h3ronpy``'s vectorised call when that package is installed, for the comparison; it is not a dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from shapely.geometry import box
from sqlalchemy import text

from yizhan.areas import ensure_area, resolve_area
from yizhan.data.demand import import_demand
from yizhan.data.demand_fast import copy_cells, grid_cells, metres
from yizhan.data.demand_points import (
    BLOCK_POINTS,
    PointBlock,
    append_points,
    encode_block,
    point_columns,
    replace_points,
    stored_points,
)
from yizhan.data.h3_cells import h3_indices
from yizhan.data.layers import new_layer
from yizhan.db.binary_copy import HEADER, TRAILER
from yizhan.db.engine import make_engine, migrate
from yizhan.stations.tables import ImportLimits

from beijing_data import BEIJING, beijing_points
from common import json_from_child, loads, machine_line, say, table, throwaway_cluster

SEED = 20261202
AREA = "beijing"
CELL_M = 200.0
TIMEZONE = "Asia/Shanghai"
GOAL = 1_000_000
"""Points per second end to end the import is to reach (CSV and GeoParquet; a rate at volume, read at 10 M points:
at 1 M the command's start and the cells weigh more than the points)."""


def _high_water_mb() -> float:
    """This process's peak resident memory since its program started (``VmHWM``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_files(n: int, folder: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """``n`` synthetic orders as ``orders_N.csv`` (lon, lat, weight, 下单时间 local text) and ``orders_N.parquet``
    (point geometry EPSG:4326, weight, an aware time)."""
    lon, lat = beijing_points(n, rng)
    weight = rng.integers(1, 6, n).astype(np.float64)
    minutes = rng.integers(0, 28 * 24 * 60, n)
    local = np.datetime64("2026-11-02T00:00:00", "s") + minutes.astype("timedelta64[m]")
    csv = folder / f"orders_{n}.csv"
    pacsv.write_csv(pa.table({"lon": lon, "lat": lat, "weight": weight,
                              "下单时间": pa.array(np.datetime_as_string(local, unit="s"))}), csv)
    parquet = folder / f"orders_{n}.parquet"
    aware = (local - np.timedelta64(8, "h")).astype("datetime64[us]")
    gpd.GeoDataFrame({"weight": weight, "time": aware}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326"
                     ).assign(time=lambda d: d["time"].dt.tz_localize("UTC")).to_parquet(parquet)
    return csv, parquet


def child(url: str, path: Path, general: bool, h3_res: int | None = None) -> dict[str, Any]:
    """One file's import in this process, end to end with the time of each phase (the summary's ``seconds``), then
    the stored points read back (``stored_points``); with ``general`` by the general path instead (end to end
    only); with ``h3_res`` into H3 hexagons of that resolution."""
    engine = make_engine(url, statement_timeout_ms=0)
    out: dict[str, Any] = {}
    start = time.perf_counter()
    limits = ImportLimits(max_rows=100_000_000)  # the setting's default stops at 1,048,576 rows (a sheet's)
    summary = import_demand(engine, path, area=AREA, cell_size_m=CELL_M, timezone=TIMEZONE, limits=limits,
                            fast=not general, h3_res=h3_res)
    out["end_to_end"] = time.perf_counter() - start
    out["points"], out["cells"] = summary.points, summary.cells
    out["phases"] = summary.seconds
    out["import_mb"] = _high_water_mb()
    if not general:
        with engine.connect() as conn:
            info = resolve_area(conn, AREA)
            t = time.perf_counter()
            pts = stored_points(conn, info, cell_size_m=CELL_M, timezone=TIMEZONE)
            out["read back"] = time.perf_counter() - t
            assert len(pts) == summary.points
            # what a part of a run in parts reads: a tile of a 4 x 4 grid over the points' box, grown by 1 km
            xs, ys = np.linspace(pts.x.min(), pts.x.max(), 5), np.linspace(pts.y.min(), pts.y.max(), 5)
            part = (xs[1] - 1000.0, ys[1] - 1000.0, xs[2] + 1000.0, ys[2] + 1000.0)
            t = time.perf_counter()
            inside = stored_points(conn, info, cell_size_m=CELL_M, timezone=TIMEZONE, box=part)
            out["part read"] = time.perf_counter() - t
            out["part points"] = len(inside)
            out["part blocks"], out["blocks"] = conn.execute(text(
                "SELECT count(*) FILTER (WHERE east >= :w AND west <= :e AND north >= :s AND south <= :n), count(*) "
                "FROM demand_point_blocks WHERE area_id = :a"),
                {"w": part[0], "s": part[1], "e": part[2], "n": part[3], "a": info.id}).one()
        n = min(summary.points, 1 << 20)
        block = PointBlock(pts.lon[:n], pts.lat[:n], pts.x[:n], pts.y[:n], pts.weight[:n],
                           np.zeros(n, np.int64), pts.hour[:n] >= 0)
        t = time.perf_counter()
        for start in range(0, n, BLOCK_POINTS):
            encode_block(info.id, start + 1, block.part(start, start + BLOCK_POINTS))
        out["encode"] = (time.perf_counter() - t) * summary.points / n
    engine.dispose()
    out["peak_mb"] = _high_water_mb()
    return out


def h3_kernel(n: int, res: int) -> dict[str, float]:
    """Wall seconds of finding the H3 cells of ``n`` synthetic points alone: one h3 call per point
    (``h3_indices``), and ``h3ronpy``'s one call over the arrays when it is installed (checked equal)."""
    lon, lat = beijing_points(n, np.random.default_rng(SEED))
    t = time.perf_counter()
    cells = h3_indices(lon, lat, res)
    out = {"h3 (one call per point)": time.perf_counter() - t}
    try:
        from h3ronpy.vector import coordinates_to_cells  # type: ignore[import-not-found]
    except ImportError:
        return out
    t = time.perf_counter()
    other = np.asarray(coordinates_to_cells(lat, lon, res).to_numpy()).astype(np.uint64)
    out["h3ronpy (one call over the arrays)"] = time.perf_counter() - t
    assert np.array_equal(cells, other)
    return out


def cli_import(url: str, path: Path, h3_res: int | None = None) -> tuple[float, str]:
    """``yizhan demand import PATH`` in a new process, as a clerk runs it (``DATABASE_URL`` set, 200 m cells, or
    ``--h3 RES``): its wall seconds, from the start of the process to its exit, and the load average (1, 5, 15
    minutes) after it."""
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("YIZHAN_DATABASE_URL", None)
    cells = ["--cell-size", f"{CELL_M:g}"] if h3_res is None else ["--h3", str(h3_res)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "yizhan.cli", "demand", "import", str(path), "--area", AREA,
                           *cells], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"yizhan demand import failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, loads(os.getloadavg())


_OLD_ROW = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("lw", ">i4"), ("w", ">f8"), ("lt", ">i4"),
                     ("t", ">i8"), ("lg", ">i4"), ("bo", "u1"), ("gt", "<u4"), ("srid", "<u4"), ("x", "<f8"),
                     ("y", "<f8")])
"""A row of the points table before migration 0013 (area, weight, time, an EWKB point), for the comparison."""


_ROWS_0013 = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("li", ">i4"), ("id", ">i4"), ("llon", ">i4"),
                       ("lon", ">f8"), ("llat", ">i4"), ("lat", ">f8"), ("lx", ">i4"), ("x", ">f8"), ("ly", ">i4"),
                       ("y", ">f8"), ("lw", ">i4"), ("w", ">f8"), ("lt", ">i4"), ("t", ">i8")])
"""A row of the points table of migrations 0013–0016 (a row per point, as numbers), for the comparison."""
_COLUMNS_0013 = ("area_id integer NOT NULL, id integer NOT NULL, lon double precision NOT NULL, "
                 "lat double precision NOT NULL, x double precision NOT NULL, y double precision NOT NULL, "
                 "weight double precision NOT NULL, observed_at timestamp with time zone")


def _rows_0013(area_id: int, block: PointBlock) -> bytes:
    """The points as rows of the table of migrations 0013–0016 in binary COPY format (every point with a time)."""
    rows = np.empty(len(block), _ROWS_0013)
    rows["n"], rows["la"], rows["a"], rows["li"] = 8, 4, area_id, 4
    rows["id"] = np.arange(1, len(block) + 1)
    for length in ("llon", "llat", "lx", "ly", "lw", "lt"):
        rows[length] = 8
    rows["lon"], rows["lat"], rows["x"], rows["y"], rows["w"] = block.lon, block.lat, block.x, block.y, block.weight
    rows["t"] = block.micros
    return rows.tobytes()


def copy_variants(url: str, n: int) -> dict[str, float]:
    """Wall seconds of ways to store ``n`` points held in memory, each in a transaction rolled back, and of ways to
    read them back: the table before 0013 (EWKB point, GiST index); a row per point as numbers (the table of
    0013–0016), in one COPY of one buffer, and read back as one array per column built by the server (the reader of
    0013–0016); blocks of column bytes (0017, what the import stores: ``replace_points``), appended
    (``append_points``), and read back (``stored_points``, ``point_columns``)."""
    engine = make_engine(url, statement_timeout_ms=0)
    rng = np.random.default_rng(SEED)
    lon, lat = beijing_points(n, rng)
    out: dict[str, float] = {}
    with engine.connect() as conn:
        info = resolve_area(conn, AREA)
        conn.rollback()
        raw = conn.connection.driver_connection
        assert raw is not None
        x, y = metres(lon, lat, info.crs_epsg)
        micros = rng.integers(8 * 10**14, 9 * 10**14, n)
        block = PointBlock(lon, lat, x, y, rng.integers(1, 6, n).astype(float), micros, np.ones(n, bool))
        t = time.perf_counter()
        for start in range(0, n, BLOCK_POINTS):
            encode_block(info.id, start + 1, block.part(start, start + BLOCK_POINTS))
        out["encode: blocks"] = time.perf_counter() - t
        t = time.perf_counter()
        body = _rows_0013(info.id, block)
        out["encode: a row per point"] = time.perf_counter() - t
        with conn.begin() as trans:
            conn.execute(text("CREATE TABLE old_points (id serial PRIMARY KEY, area_id integer NOT NULL REFERENCES "
                              "areas (id), weight double precision, observed_at timestamptz, "
                              "geom geometry(POINT, 4326) NOT NULL)"))
            conn.execute(text("CREATE INDEX ON old_points USING gist (geom)"))
            conn.execute(text("CREATE INDEX ON old_points (area_id)"))
            rows = np.empty(n, _OLD_ROW)
            rows["n"], rows["la"], rows["a"], rows["lw"], rows["w"], rows["lt"], rows["t"] = 4, 4, info.id, 8, \
                block.weight, 8, micros
            rows["lg"], rows["bo"], rows["gt"], rows["srid"], rows["x"], rows["y"] = 25, 1, 0x20000001, 4326, lon, lat
            t = time.perf_counter()
            with raw.cursor() as cur, cur.copy("COPY old_points (area_id, weight, observed_at, geom) FROM STDIN "
                                               "(FORMAT BINARY)") as cp:
                cp.write(HEADER)
                cp.write(rows.data)
                cp.write(TRAILER)
            out["store: the table before 0013 (GiST, foreign key)"] = time.perf_counter() - t
            trans.rollback()
        with conn.begin() as trans:
            t = time.perf_counter()
            with raw.cursor(binary=True) as cur:
                cur.execute(f"CREATE TABLE row_points ({_COLUMNS_0013})")
                with cur.copy("COPY row_points FROM STDIN (FORMAT BINARY, FREEZE)") as cp:
                    cp.write(HEADER)
                    cp.write(body)
                    cp.write(TRAILER)
                out["store: a row per point (0013-0016), one buffer"] = time.perf_counter() - t
                t = time.perf_counter()
                cur.execute("SELECT array_agg(id), array_agg(lon), array_agg(lat), array_agg(x), array_agg(y), "
                            "array_agg(weight), array_agg(observed_at)::text FROM row_points")
                cur.fetchall()
                out["read back: a row per point, arrays built by the server (lists in Python)"] = \
                    time.perf_counter() - t
            trans.rollback()
        with conn.begin() as trans:
            t = time.perf_counter()
            replace_points(raw, info.id, [block])
            out["store: blocks (what the import does)"] = time.perf_counter() - t
            t = time.perf_counter()
            append_points(raw, info.id, [block])
            out["store: blocks appended"] = time.perf_counter() - t
            trans.rollback()
        with conn.begin() as trans:
            replace_points(raw, info.id, [block])
            t = time.perf_counter()
            stored_points(conn, info, cell_size_m=CELL_M, timezone=TIMEZONE)
            out["read back: stored_points (columns decoded, hours, cells)"] = time.perf_counter() - t
            t = time.perf_counter()
            back = point_columns(conn, info.id, ("x", "y", "weight"))
            out["read back: point_columns x, y, weight"] = time.perf_counter() - t
            assert np.array_equal(back["x"], x)
            trans.rollback()
        grid = grid_cells(x, y, block.weight, cell_size_m=CELL_M)
        out["cells"] = float(len(grid))
        for label, bare in (("cells: COPY into demand_cells", False),
                            ("cells: the same without its foreign keys and GiST indexes", True)):
            with conn.begin() as trans:
                if bare:
                    conn.execute(text("""
                        DO $$ DECLARE r record; BEGIN
                          FOR r IN SELECT conname FROM pg_constraint
                                   WHERE conrelid = 'demand_cells'::regclass AND contype = 'f' LOOP
                            EXECUTE format('ALTER TABLE demand_cells DROP CONSTRAINT %I', r.conname);
                          END LOOP;
                          FOR r IN SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                                   JOIN pg_am a ON a.oid = i.relam
                                   WHERE x.indrelid = 'demand_cells'::regclass AND a.amname = 'gist' LOOP
                            EXECUTE format('DROP INDEX %I', r.relname);
                          END LOOP;
                        END $$"""))
                layer = new_layer(conn, info, source="benchmark", cell_size_m=CELL_M)
                t = time.perf_counter()
                copy_cells(raw, info, grid, layer)
                out[label] = time.perf_counter() - t
                trans.rollback()
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="numbers of points, comma-separated")
    parser.add_argument("--old", type=int, default=100_000, help="points imported by both paths (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the files)")
    parser.add_argument("--variants", type=int, default=1_000_000,
                        help="points stored and read back in several ways (0: none)")
    parser.add_argument("--no-cli", dest="cli", action="store_false",
                        help="skip the imports through the command line (yizhan demand import)")
    parser.add_argument("--h3", type=int, default=None, metavar="RES",
                        help="also import each file of the fast path into H3 hexagons of this resolution (7 to 10)")
    parser.add_argument("--child", nargs=3, metavar=("URL", "PATH", "PATH_KIND"), help=argparse.SUPPRESS)
    parser.add_argument("--kernel-child", nargs=2, metavar=("N", "RES"), help=argparse.SUPPRESS)
    parser.add_argument("--variants-child", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variants_child:
        print(json.dumps(copy_variants(args.variants_child[0], int(args.variants_child[1]))))
        return
    if args.kernel_child:
        print(json.dumps(h3_kernel(int(args.kernel_child[0]), int(args.kernel_child[1]))))
        return
    if args.child:
        url, path, kind = args.child
        res = int(kind.removeprefix("h3:")) if kind.startswith("h3:") else None
        print(json.dumps(child(url, Path(path), kind == "general", res)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = np.random.default_rng(SEED)
    with throwaway_cluster("yizhan-import-demand-", keep=args.keep) as scratch:
        say("starting a throw-away PostgreSQL + PostGIS cluster")
        url = scratch.cluster.up()
        engine = make_engine(url)
        try:
            migrate(engine)
            with engine.begin() as conn:
                ensure_area(conn, AREA, boundary=box(*BEIJING), source="benchmark")
        finally:
            engine.dispose()
        rows: list[list[Any]] = []
        phase_rows: list[list[Any]] = []
        names = ["read", "check", "transform", "area test", "metres", "H3 cells", "cells", "COPY points", "COPY cells",
                 "index cells", "close layer", "swap", "commit"]
        cli_rows: list[list[Any]] = []
        fast = ["fast"] + ([f"h3:{args.h3}"] if args.h3 is not None else [])
        cases = ([(args.old, "general"), (args.old, "fast")] if args.old else []) + [(n, k) for n in sizes
                                                                                        for k in fast]
        files: dict[int, tuple[Path, Path]] = {}
        for n, kind in cases:
            if n not in files:
                say(f"writing {n:,} synthetic orders as CSV and GeoParquet")
                files[n] = write_files(n, scratch.work, rng)
            for path in files[n]:
                say(f"{kind} path: {path.name} ({path.stat().st_size / 1e6:,.0f} MB)")
                r = json_from_child(__file__, ["--child", url, str(path), kind], show_stderr=True)
                rate = r["points"] / r["end_to_end"]
                say(f"  {r['points']:,} points, {r['cells']:,} cells in {r['end_to_end']:.2f} s: {rate:,.0f} points/s, "
                    f"peak {r['peak_mb']:,.0f} MB")
                label = "fast, squares" if kind == "fast" and args.h3 is not None else kind.replace(
                    "h3:", "fast, H3 res ")
                rows.append([f"{n:,}", path.suffix.lstrip("."), label, f"{r['end_to_end']:.2f} s",
                             f"{rate:,.0f}", f"{r['cells']:,}", f"{r['import_mb']:,.0f} MB",
                             f"{r['read back']:.2f} s" if "read back" in r else "–",
                             f"{r['part read']:.2f} s: {r['part points']:,} of {r['part blocks']}/{r['blocks']} blocks"
                             if "part read" in r else "–", f"{r['peak_mb']:,.0f} MB"])
                res = int(kind.removeprefix("h3:")) if kind.startswith("h3:") else None
                if kind != "general" and args.cli:
                    seconds, load = cli_import(url, path, res)
                    say(f"  yizhan demand import: {seconds:.2f} s, {n / seconds:,.0f} points/s (load {load})")
                    cli_rows.append([f"{n:,}", path.suffix.lstrip("."), label, f"{seconds:.2f} s",
                                     f"{n / seconds:,.0f}", "yes" if n / seconds >= GOAL else "no", load])
                if r["phases"]:
                    p = r["phases"]
                    phase_rows.append([f"{n:,}", path.suffix.lstrip("."), label,
                                       *[f"{p.get(k, 0.0):.2f}" for k in names],
                                       f"{sum(p.get(k, 0.0) for k in names):.2f}",
                                       f"{r['end_to_end']:.2f}",
                                       f"{r['encode']:.2f}"])
        kernel_rows: list[list[Any]] = []
        if args.h3 is not None:
            for n in sizes:
                say(f"the H3 cells of {n:,} points alone")
                k = json_from_child(__file__, ["--kernel-child", str(n), str(args.h3)], show_stderr=True)
                kernel_rows += [[f"{n:,}", way, f"{sec:.2f} s", f"{n / sec / 1e6:.2f}", loads(os.getloadavg())]
                                for way, sec in k.items()]
        variant_rows: list[list[Any]] = []
        if args.variants:
            say(f"storing and reading back {args.variants:,} points in several ways")
            v = json_from_child(__file__, ["--variants-child", url, str(args.variants)], show_stderr=True)
            cells = int(v.pop("cells", 0))
            variant_rows = [[name, f"{sec:.2f} s", f"{args.variants / sec / 1e6:.2f}",
                             f"{cells / sec:,.0f}" if name.startswith("cells") else ""] for name, sec in v.items()]
        print()
        print(machine_line())
        print(table("import_demand end to end (points and 200 m cells stored, one transaction); the points read back",
                    ["points", "file", "path", "wall time", "points/s", "cells", "peak RSS", "read back",
                     "a part's box read (points kept, blocks read)", "peak RSS with them"], rows, "rllrrrrrrr"))
        if cli_rows:
            print(table(f"yizhan demand import end to end (a new process: start, import, commit; goal {GOAL:,} "
                        f"points/s)",
                        ["points", "file", "cells", "wall time", "points/s", "goal met", "load 1/5/15 min after"],
                        cli_rows, "rllrrll"))
        if phase_rows:
            print(table("fast path by phase, wall seconds of the same imports (the batches' read, check, area test, "
                        "metres and cells or H3 cells are made while the server stores the block before; COPY "
                        "points is the time beyond them: the encoding of each block and the wait for the server; "
                        "encode: that encoding alone, measured apart)",
                        ["points", "file", "cells", *names, "sum", "end to end", "encode"], phase_rows,
                        "rll" + "r" * (len(names) + 3)))
        if kernel_rows:
            print(table(f"the points' H3 cells of resolution {args.h3} alone (the kernel of H3 cells; in the import "
                        f"it runs while the server stores the batch before)",
                        ["points", "way", "wall time", "M points/s", "load 1/5/15 min after"], kernel_rows, "rlrrl"))
        if variant_rows:
            print(table(f"{args.variants:,} points held in memory, stored and read back (each store rolled back), "
                        f"and their {cells:,} cells of {CELL_M:g} m",
                        ["way", "wall time", "M points/s", "cells/s"], variant_rows, "lrrr"))
    sys.exit(0)


if __name__ == "__main__":
    main()
