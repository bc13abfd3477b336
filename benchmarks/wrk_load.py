"""Section 3b of ``national.py``: GET /stations/nearest from ``wrk``, a C load generator.

Not a script. ``wrk`` takes far less of the shared two cores than a Python client, so the server gets more of
them: 2 threads, a Lua script cycling through 5,000 query points (lon/lat WGS 84 degrees), ``--latency`` for the
percentiles, against the in-process index with 1 and 2 uvicorn workers at 8 and 64 connections. Without ``wrk``
installed (Debian: ``apt-get install wrk``) the section is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from common import say
from http_load import uvicorn_workers

K = 5  # stations per answer

WRK_LUA = """
local points = {%s}
local i = 0
request = function()
  i = i %% #points + 1
  return wrk.format("GET", "/stations/nearest?k=%d&" .. points[i])
end
"""


def _wrk_ms(text_: str, label: str) -> str:
    """A latency percentile line of ``wrk --latency`` ("99%%   12.34ms") in milliseconds."""
    for line in text_.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == label:
            value, unit = float(parts[1].rstrip("usm")), parts[1].lstrip("0123456789.")
            return f"{value * {'us': 1e-3, 'ms': 1.0, 's': 1e3}[unit]:.1f}"
    return "?"


def bench_wrk(url: str, points: np.ndarray, work: Path, seconds: int) -> list[list[Any]]:
    """GET /stations/nearest from ``wrk`` (a C load generator: far less client CPU than a Python client on the
    same two cores) at 8 and 64 connections, 2 threads, against the index with 1 and 2 uvicorn workers."""
    wrk = shutil.which("wrk")
    if wrk is None:
        say("wrk not installed (Debian: apt-get install wrk): wrk levels skipped")
        return [["wrk not installed", "", "", "", "", ""]]
    script = work / "nearest.lua"
    script.write_text(WRK_LUA % (", ".join(f'"lon={x:.6f}&lat={y:.6f}"' for x, y in points[:5000]), K))
    rows: list[list[Any]] = []
    for workers in (1, 2):
        server = uvicorn_workers(url, workers, work / "data", work / f"uvicorn-wrk-{workers}.log")
        try:
            server.wait_ready()
            server.wait_index(k=K)
            for conns in (8, 64):
                done = subprocess.run([wrk, "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script),
                                       server.base], capture_output=True, text=True, timeout=seconds + 60)
                out = done.stdout
                rate = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec:")), "?")
                errors = sum(int(x) for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln
                             for x in ln.replace(",", " ").split() if x.isdigit())
                say(f"  wrk workers={workers} c={conns}: {rate} req/s, p50 {_wrk_ms(out, '50%')} ms, "
                    f"p99 {_wrk_ms(out, '99%')} ms, errors {errors}")
                rows.append([f"workers={workers} c={conns} wrk", rate, _wrk_ms(out, "50%"), _wrk_ms(out, "90%"),
                             _wrk_ms(out, "99%"), errors])
        finally:
            server.stop()
    return rows

