"""Helpers the benchmark scripts share: progress lines, tables, machine description, CPU and memory accounting,
the throw-away PostgreSQL cluster's life cycle, and child processes that answer in JSON.

Not a script: ``run.py``, ``national.py``, ``network.py``, ``province.py`` and ``recommend.py`` import it (run as
``python benchmarks/NAME.py``, the script's folder is first on ``sys.path``, also in the child processes they
start). Times are wall seconds (``time.perf_counter``), CPU times are seconds of user + system time, memory is
MB (MiB: ``ru_maxrss`` KiB / 1024).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from yizhan.db.cluster import Cluster

T0 = time.perf_counter()  # the start of the run (this module is imported first thing)
LOAD_AT_START = os.getloadavg()


# -- progress lines ---------------------------------------------------------------------------------------------
def say(msg: str, *, file: TextIO | None = None) -> None:
    """A progress line stamped with the seconds since the start (``[  12.3s] msg``), flushed at once."""
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", file=file or sys.stdout, flush=True)


@contextmanager
def timed(label: str) -> Iterator[dict[str, float]]:
    """Say ``label ...``, run the block, say how long it took; the seconds are in the yielded dict's ``"s"``."""
    say(f"{label} ...")
    out: dict[str, float] = {}
    start = time.perf_counter()
    yield out
    out["s"] = time.perf_counter() - start
    say(f"{label}: {out['s']:.2f} s")


# -- figures and tables -----------------------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (NaN when there are none)."""
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


def ms(values: Sequence[float], q: float) -> str:
    """The ``q``-th percentile of latencies in seconds, as milliseconds with one decimal."""
    return f"{pct(values, q) * 1e3:.1f}"


def table(title: str, headers: list[str], rows: list[list[Any]], align: str = "") -> str:
    """A titled plain-text table between rules; ``align`` has one letter per column (``l``/``r``), by default the
    first column left and the rest right."""
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align, strict=True))

    rule = "-" * len(line(cells[0]))
    return "\n".join([f"\n{title}", rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), rule])


def fixed(digits: int) -> Callable[[Any], str]:
    """A cell formatter for ``dict_table``: floats with ``digits`` decimals."""
    def fmt(value: Any) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else _plain(value)

    return fmt


def adaptive(value: Any) -> str:
    """A cell formatter for ``dict_table``: floats by size (``1,234.5``, ``12.34``, ``0.123``)."""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return _plain(value)


def _plain(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else str(value)


def dict_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]],
               fmt: Callable[[Any], str] = adaptive) -> str:
    """A ``|``-separated table of ``rows`` (dicts): ``columns`` are (title, key) pairs, missing values show as
    ``–``; titles left-aligned, cells right-aligned."""
    head = [title for title, _ in columns]
    body = [[fmt(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def aligned(rows: list[list[str]]) -> str:
    """Rows of strings (the first one the header) in left-aligned columns two spaces apart, no rules."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


# -- the machine ------------------------------------------------------------------------------------------------
def loads(values: Sequence[float]) -> str:
    """A load average triple as ``1.00/0.50/0.25`` (1, 5, 15 minutes)."""
    return "/".join(f"{x:.2f}" for x in values)


def machine_line(extra: str = "") -> str:
    """One line for the small benchmarks: CPUs, processor, 1-minute load, Python (and ``extra`` versions)."""
    return (f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, load "
            f"{os.getloadavg()[0]:.2f}; Python {platform.python_version()}" + (f", {extra}" if extra else ""))


def machine_info() -> list[list[Any]]:
    """Rows (item, value) describing the machine: usable CPUs, CPU model, memory, load at the start, Python."""
    model = "?"
    with suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    mem = "?"
    with suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return [["nproc (usable CPUs)", len(os.sched_getaffinity(0))], ["CPU model", model], ["memory", mem],
            ["load average at start (1/5/15 min)", loads(LOAD_AT_START)],
            ["python", platform.python_version()], ["platform", platform.platform()]]


def _spin(n: int) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - start


def parallel_scaling(n: int = 10_000_000) -> float:
    """Throughput of two CPU-bound processes at once relative to one (2.0 = two full cores)."""
    one = _spin(n)
    with ProcessPoolExecutor(2) as pool:
        two = list(pool.map(_spin, [n, n]))
    return 2 * one / max(two)


def rss_mb() -> float:
    """This process's peak resident memory so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- CPU accounting (Linux /proc): who is busy during a load ------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def self_cpu() -> float:
    """CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU seconds of one process (all its threads); 0 when it is gone."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / _TICK if f else 0.0


def tree_cpu(root: int, *, waited: bool = False) -> float:
    """CPU seconds of ``root`` and its live children (plus its exited, waited-for children when ``waited``: for
    the postmaster, whose backends come and go)."""
    f = _stat(root)
    if not f:
        return 0.0
    total = sum(int(x) for x in f[11:15 if waited else 13]) / _TICK
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            c = _stat(int(d.name))
            if c and int(c[1]) == root:
                total += (int(c[11]) + int(c[12])) / _TICK
    return total


def cpu_probe(server: int, postmaster: int, *, server_children: bool) -> Callable[[], dict[str, float]]:
    """A probe of CPU seconds so far: ``client`` (this process), ``server`` (the process ``server``, plus its
    worker processes with ``server_children``) and ``postgres`` (the postmaster and its backends, also exited)."""
    def probe() -> dict[str, float]:
        return {"client": self_cpu(), "server": tree_cpu(server) if server_children else proc_cpu(server),
                "postgres": tree_cpu(postmaster, waited=True)}

    return probe


# -- the throw-away cluster -------------------------------------------------------------------------------------
@dataclass
class Scratch:
    """A temporary folder with a PostgreSQL + PostGIS cluster in it (not started) and a ``work`` sub-folder."""

    base: Path
    work: Path
    cluster: Cluster
    cleanups: list[tuple[str, Callable[[], object]]] = field(default_factory=list)

    def on_exit(self, step: str, action: Callable[[], object]) -> None:
        """Run ``action`` at the end, before the cluster stops (a failure is reported, not raised)."""
        self.cleanups.append((step, action))

    def postmaster(self) -> int:
        """The process id of the running cluster's postmaster."""
        return int((self.cluster.data / "postmaster.pid").read_text().split("\n")[0])



@contextmanager
def local_dask(workers: int) -> Iterator[tuple[Any, float]]:
    """A Dask client on a LocalCluster of ``workers`` worker processes of one thread each (the machine's memory shared
    among them) and the seconds its start took; ``(None, 0.0)`` for 0 workers (the case runs in this process).
    Closed afterwards."""
    if not workers:
        yield None, 0.0
        return
    from distributed import Client, LocalCluster

    t = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="auto",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client, time.perf_counter() - t

@contextmanager
def throwaway_cluster(prefix: str, *, keep: bool) -> Iterator[Scratch]:
    """A fresh temporary folder with a non-durable cluster (``fsync=off``); the caller starts it.

    At the end, also after an error, Ctrl-C or SIGTERM: SIGINT/SIGTERM are ignored so the clean-up can finish,
    the ``on_exit`` actions run, the cluster stops, and the folder is removed (or kept and named with ``keep``).
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill too
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)  # as root, the postgres user must traverse it
    work = base / "work"
    work.mkdir()
    scratch = Scratch(base, work, Cluster(base, durable=False))
    try:
        yield scratch
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # let the clean-up finish
            signal.signal(sig, signal.SIG_IGN)
        for step, action in [*scratch.cleanups, ("stop the cluster", scratch.cluster.down)]:
            try:
                action()
            except Exception as exc:
                print(f"clean-up: {step} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


# -- child processes ------------------------------------------------------------------------------------------
def json_from_child(script: str | Path, args: list[str], *, show_stderr: bool = False) -> dict[str, Any]:
    """Run ``python script *args`` and parse the last line of its output as JSON (a case in a process of its own,
    so that its peak memory is its own); its stderr is shown with ``show_stderr``, else swallowed."""
    out = subprocess.run([sys.executable, str(script), *args], check=True, stdout=subprocess.PIPE,
                         stderr=None if show_stderr else subprocess.PIPE, text=True)
    parsed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed
