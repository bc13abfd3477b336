"""Coverage runs of many areas at once (a province's prefectures, the nation's zones), each area a job on Dask.

An area is run end to end by ``coverage.analysis.run_coverage`` in a worker process (its own connection: reads,
coverage, gaps, store), so the areas of a nation go side by side on the cluster's workers instead of one after the
other; the largest areas (by their current demand cells) are submitted first, so the last to finish is a small one
and the workers stay busy. Every area's stored run is the run ``yizhan coverage --area NAME`` stores. An area that
cannot be run (no demand, no street network) is reported and the others go on; a worker that dies is retried
(``coverage.dask_jobs``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from yizhan.areas import list_areas
from yizhan.coverage.dask_jobs import run_on_dask
from yizhan.coverage.runs import RunSummary
from yizhan.db.engine import database_url, make_engine
from yizhan.errors import InvalidInput, NotFound
from yizhan.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AreaJob:
    """One area's run: the settings (database, data folder), the area's name, its current demand cells (for the
    order and the messages), its position among the jobs and the ``run_coverage`` options."""

    settings: Settings
    area: str
    cells: int
    index: int
    n_jobs: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class AreaOutcome:
    """What became of one area: its stored run's summary (None when it could not be run), the reason it could not
    (one line, Chinese first) and the seconds its worker spent."""

    area: str
    summary: RunSummary | None
    error: str | None
    seconds: float


@dataclass
class AreasResult:
    """Every area's outcome, largest first as submitted, and the wall time of the whole (seconds)."""

    outcomes: list[AreaOutcome]
    seconds: float

    @property
    def failed(self) -> list[AreaOutcome]:
        """The areas that could not be run."""
        return [o for o in self.outcomes if o.summary is None]


def area_run(job: AreaJob) -> AreaOutcome:
    """Run one area end to end in this (worker) process; an expected failure (InvalidInput or NotFound: no demand,
    no street network, ...) is returned as the area's outcome, not raised, so Dask does not retry it; anything else
    (the database gone, a worker's memory) is raised and retried."""
    from yizhan.coverage.analysis import run_coverage

    started = time.perf_counter()
    engine = make_engine(database_url(job.settings), statement_timeout_ms=0, pool_size=1, max_overflow=0)
    try:
        summary = run_coverage(engine, area=job.area, settings=job.settings, parts=1, **job.options)
    except (InvalidInput, NotFound) as exc:
        return AreaOutcome(job.area, None, str(exc), time.perf_counter() - started)
    finally:
        engine.dispose()
    summary.pop("params", None)
    return AreaOutcome(job.area, summary, None, time.perf_counter() - started)


def area_sizes(settings: Settings, names: Sequence[str] | None) -> list[tuple[str, int]]:
    """The areas to run, each with its current demand cells, largest first (then by name): ``names`` as given
    (InvalidInput naming those that do not exist, before any work), or every area when None."""
    engine = make_engine(database_url(settings), pool_size=1)
    try:
        with engine.connect() as conn:
            known = {a.name: a for a in list_areas(conn)}
            if names is None:
                wanted = list(known)
            else:
                wanted = list(dict.fromkeys(n.strip() for n in names if n.strip()))
                missing = [n for n in wanted if n not in known]
                if missing:
                    raise InvalidInput(f"没有这些区域 / no area named {', '.join(repr(n) for n in missing)}; "
                                       f"areas: {', '.join(sorted(known)) or 'none yet'}")
            if not wanted:
                raise InvalidInput("没有可计算的区域 / no area to run: create one with `yizhan area create` or name "
                                   "some with --areas A,B")
            cells: dict[int, int] = {int(a): int(c) for a, c in conn.execute(text(
                "SELECT area_id, cells FROM demand_layers WHERE retired_at IS NULL")).tuples()}
            sizes = [(n, int(cells.get(known[n].id, 0))) for n in wanted]
    finally:
        engine.dispose()
    return sorted(sizes, key=lambda s: (-s[1], s[0]))


def run_areas(settings: Settings, names: Sequence[str] | None, *, scheduler: Any = None,
              progress: Progress | None = None, job: Callable[[AreaJob], AreaOutcome] = area_run,
              **options: Any) -> AreasResult:
    """Store a coverage run of each of ``names`` (None: every area), each area a job on Dask; ``options`` are
    ``run_coverage``'s (``radius_m``, ``mode``, ``profile``, ``measure``, ``by_hour``, ...; not ``parts``: an area is
    one job). ``scheduler``: a ``distributed.Client``, a scheduler's address (``tcp://HOST:8786``), or None for
    ``settings.dask_scheduler`` or else a local cluster of ``settings.partition_workers`` processes. Reports
    ``area utm50 done: ...`` through ``progress``. Unknown names are refused before any work."""
    if "parts" in options or "area" in options:
        raise TypeError("run_areas runs each area whole: give names, not area or parts")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    sizes = area_sizes(settings, names)
    say(f"{len(sizes)} areas, {sum(c for _, c in sizes):,} demand cells, largest first")
    jobs = [AreaJob(settings=settings, area=name, cells=cells, index=i, n_jobs=len(sizes), options=options)
            for i, (name, cells) in enumerate(sizes)]
    outcomes: dict[str, AreaOutcome] = {}

    def keep(j: AreaJob, outcome: AreaOutcome) -> str:
        outcomes[j.area] = outcome
        if outcome.summary is None:
            return f"not run: {outcome.error}"
        s = outcome.summary
        return (f"{s['cells']:,} cells, covered {s['covered_share']:.1%}, {s['gaps']} gaps, run {s['run_id']}, "
                f"{outcome.seconds:.1f} s")

    failures = run_on_dask(settings, scheduler, say, job, jobs, name="yizhan-area",
                           label=lambda j: f"area {j.area} ({j.index + 1}/{j.n_jobs})", on_result=keep)
    for j in jobs:
        if j.area not in outcomes:  # the job itself failed after its retries (a worker lost, ...)
            reason = next((f for f in failures if f.startswith(f"area {j.area} (")), "failed")
            outcomes[j.area] = AreaOutcome(j.area, None, f"计算失败 / failed: {reason}", 0.0)
    return AreasResult([outcomes[j.area] for j in jobs], time.perf_counter() - started)
