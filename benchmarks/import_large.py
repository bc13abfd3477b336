"""A large registry import through the command line: time and peak memory of ``yizhan stations import``.

Run with ``.venv/bin/python benchmarks/import_large.py [--rows 1000000] [--keep]``. A throw-away PostgreSQL +
PostGIS cluster (fsync off) in a temporary folder holds one area around Beijing; a synthetic registry CSV of
``--rows`` rows (Chinese headers and values, ``beijing_data.registry_frame``) is imported twice, each time by a
new ``python -m yizhan.cli stations import`` process with ``DATABASE_URL`` set, as a clerk would run it: first
all rows new, then all rows updates. For each import the script prints the wall time (seconds), the rate
(rows/s) and the import process's peak resident memory (MB, ``VmHWM`` of that child: the chunks being read and
checked, the arrays of one entry per row the import keeps, the COPY buffers; PostgreSQL's own memory is not
included; the import reads the file twice, a chunk at a time, so this should not grow with ``--rows`` beyond a few
arrays of one entry per row). The figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from shapely.geometry import box
from sqlalchemy import text

from yizhan.areas import ensure_area
from yizhan.db.engine import make_engine, migrate

from beijing_data import BEIJING, beijing_points, registry_frame
from common import machine_line, say, table, throwaway_cluster

SEED = 20261202
AREA = "北京市"
POLL_S = 0.05
"""How often the import process's peak resident memory is read, seconds."""


def _high_water_mb(pid: int) -> float | None:
    """``VmHWM`` of process ``pid`` (its peak resident memory since its program started), MB; None once gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def import_in_child(path: Path, url: str) -> tuple[float, float, str]:
    """Run ``yizhan stations import PATH`` in a new process: wall seconds, its peak RSS (MB), its output.

    The peak is the child's ``VmHWM``, read every ``POLL_S`` seconds until it exits: its ``ru_maxrss`` would not
    do, as Linux carries the resident size of the process it was forked from (this one, which generated the file
    and holds about as much as the file) across the exec into it."""
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("YIZHAN_DATABASE_URL", None)
    log = path.with_suffix(".log")
    start = time.perf_counter()
    peak = 0.0
    with log.open("w+") as output:
        proc = subprocess.Popen([sys.executable, "-m", "yizhan.cli", "stations", "import", str(path),
                                 "--area", AREA], env=env, stdout=output, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, _high_water_mb(proc.pid) or 0.0)
            time.sleep(POLL_S)
        seconds = time.perf_counter() - start
        output.seek(0)
        text_out = output.read().strip()
    if proc.returncode != 0:
        raise SystemExit(f"the import failed ({proc.returncode}):\n{text_out}")
    return seconds, peak, text_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic registry CSV")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (the CSV)")
    args = parser.parse_args()
    n = args.rows
    rng = np.random.default_rng(SEED)
    with throwaway_cluster("yizhan-import-large-", keep=args.keep) as scratch:
        say("starting a throw-away PostgreSQL + PostGIS cluster")
        url = scratch.cluster.up()
        engine = make_engine(url)
        try:
            migrate(engine)
            with engine.begin() as conn:
                ensure_area(conn, AREA, boundary=box(*BEIJING), source="benchmark")
        finally:
            engine.dispose()
        say(f"generating a {n:,}-row registry CSV over Beijing ({BEIJING})")
        lon, lat = beijing_points(n, rng)
        path = scratch.work / "registry.csv"
        registry_frame(lon, lat, rng, "BJ").to_csv(path, index=False)
        del lon, lat
        size_mb = path.stat().st_size / 1e6
        say(f"registry CSV: {size_mb:.1f} MB")

        rows = []
        for label in ("all new", "all updates"):
            say(f"import {n:,} rows ({label}) through the command line")
            seconds, peak_mb, out = import_in_child(path, url)
            say(out)
            rows.append([f"import, {label}", f"{seconds:.1f} s", f"{n / seconds:,.0f} rows/s", f"{peak_mb:,.0f} MB"])
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT count(*) FROM stations")).scalar_one()
        finally:
            engine.dispose()
        if stored != n:
            raise SystemExit(f"expected {n:,} stored stations, found {stored:,}")
        print()
        print(machine_line())
        print(table(f"yizhan stations import, {n:,} rows ({size_mb:.0f} MB CSV)",
                    ["step", "wall time", "rate", "peak RSS of the import process"], rows, "lrrr"))


if __name__ == "__main__":
    main()
