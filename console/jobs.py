"""Long work started from the console (a coverage run, a recommendation) done in the background, with its progress
kept in the database so that any server process can show it.

``JobRunner.submit`` stores a ``jobs`` row (queued) and hands the work to this process's worker threads; the page
that started it polls ``job_of`` (a plain read) until the state is ``done`` (``result_id``: the run or the
recommendation) or ``failed`` (``error``: one line, Chinese and English). While it works, the job's progress messages
and a heartbeat are written at most every ``BEAT_S`` seconds; a job still ``running`` whose heartbeat is older than
``STALE_S`` (its process ended) reads as ``interrupted``.

Nothing here blocks a request: ``submit`` returns once the row is stored.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from yizhan.areas import get_area
from yizhan.coverage.analysis import run_coverage
from yizhan.coverage.by_hour import check_options
from yizhan.coverage.cell_coverage import MODES, check_radius
from yizhan.coverage.streets import PROFILES
from yizhan.errors import InvalidInput, NotFound, YizhanError
from yizhan.settings import Settings
from yizhan.siting.extensions import until_hour
from yizhan.siting.recommend import recommend, recommend_hours

log = logging.getLogger(__name__)

Kind = Literal["coverage", "recommendation"]
State = Literal["queued", "running", "done", "failed", "interrupted"]
BEAT_S = 0.5
"""At most one progress write per job this often, seconds."""
STALE_S = 120.0
"""A running job without a heartbeat for this long, seconds, was interrupted (its process stopped)."""
KIND_ZH = {"coverage": "覆盖分析", "recommendation": "选址建议"}
MAX_SITES = 500
"""The most sites one recommendation job may ask for."""


@dataclass(frozen=True)
class Job:
    """One job as stored: what it is, who started it, where it stands (``state``, the last ``message``), and when
    finished its ``result_id`` or ``error``. Times are aware (UTC from the database)."""

    id: int
    kind: Kind
    area: str
    params: dict[str, Any]
    state: State
    message: str
    result_id: int | None
    error: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether nothing more will happen to it."""
        return self.state in ("done", "failed", "interrupted")


_SELECT = ("SELECT j.id, j.kind, a.name AS area, j.params, j.state, j.message, j.result_id, j.error, j.created_by, "
           "j.created_at, j.finished_at, (j.state = 'running' AND j.heartbeat < now() - make_interval(secs => :stale)) "
           "AS stale FROM jobs j JOIN areas a ON a.id = j.area_id")


def _job(r: Any) -> Job:
    state: State = "interrupted" if r.stale else r.state
    return Job(r.id, r.kind, r.area, dict(r.params), state, r.message, r.result_id, r.error, r.created_by,
               r.created_at, r.finished_at)


def job_of(conn: Connection, job_id: int) -> Job:
    """The stored job ``job_id``; NotFound (404) without it."""
    r = conn.execute(text(f"{_SELECT} WHERE j.id = :id"), {"id": job_id, "stale": STALE_S}).one_or_none()
    if r is None:
        raise NotFound(f"没有这个任务 / no job {job_id}")
    return _job(r)


def list_jobs(conn: Connection, *, kind: Kind | None = None, limit: int = 20) -> list[Job]:
    """The newest ``limit`` jobs (of ``kind`` when given), newest first."""
    rows = conn.execute(text(f"{_SELECT} WHERE CAST(:kind AS text) IS NULL OR j.kind = :kind "
                             "ORDER BY j.id DESC LIMIT :n"), {"kind": kind, "n": limit, "stale": STALE_S}).all()
    return [_job(r) for r in rows]


Work = Callable[[Callable[[str], None]], int]
"""The work of a job: given a progress callback, returns the id of what it made (a run, a recommendation)."""


def checked_params(kind: Kind, params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A job's parameters checked and completed: ``radius_m`` (metres, default the settings'), ``mode`` (straight or
    network), ``profile`` (walk or bike); a coverage run ``by_hour`` and ``capacity`` (bool), ``decay`` (none,
    stepwise, gaussian) and ``unknown_hours`` (open, closed); a recommendation exactly one of ``k`` (sites, 1 to
    ``MAX_SITES``), ``target`` (covered share, above 0 and at most 1) or ``hours`` (true: longer hours versus new
    sites, with the caps ``max_extend``, ``max_24h``, ``max_sites``, each 0 to ``MAX_SITES`` and one above 0, and
    ``extend_to``, a local time such as 22:00, needed with ``max_extend``). InvalidInput (422) naming the field,
    the value and what is accepted."""
    if kind not in KIND_ZH:
        raise InvalidInput(f"kind: {kind!r}; expected one of {', '.join(KIND_ZH)}")
    out: dict[str, Any] = {"radius_m": check_radius(float(params.get("radius_m") or settings.radius_m)),
                           "mode": params.get("mode") or "straight", "profile": params.get("profile") or "walk"}
    if out["mode"] not in MODES:
        raise InvalidInput(f"方式 mode: {out['mode']!r}; 可用 expected {', '.join(MODES)}")
    if out["profile"] not in PROFILES:
        raise InvalidInput(f"出行 profile: {out['profile']!r}; 可用 expected {', '.join(PROFILES)}")
    if kind == "coverage":
        out["by_hour"] = bool(params.get("by_hour"))
        out["capacity"] = bool(params.get("capacity"))
        out["decay"] = params.get("decay") or "none"
        out["unknown_hours"] = params.get("unknown_hours") or "open"
        check_options(unknown_hours=out["unknown_hours"], decay=out["decay"])
    if kind == "recommendation" and params.get("hours"):
        out.update(_hours_params(params))
    elif kind == "recommendation":
        k, target = params.get("k"), params.get("target")
        if (k is None) == (target is None):
            raise InvalidInput("选址建议需要站点数 k 或目标覆盖率 target 之一 / a recommendation needs exactly one of "
                               "k (sites) or target (covered share)")
        if k is not None:
            if not isinstance(k, int) or not 1 <= k <= MAX_SITES:
                raise InvalidInput(f"站点数 k: {k!r}; 应为 1 到 {MAX_SITES} 的整数 / expected a whole number from 1 to "
                                   f"{MAX_SITES}")
            out["k"] = k
        else:
            if not isinstance(target, float | int) or not 0 < target <= 1:
                raise InvalidInput(f"目标覆盖率 target: {target!r}; 应在 0 到 1 之间（如 0.9）/ expected a share above "
                                   "0 and at most 1 (e.g. 0.9)")
            out["target"] = float(target)
    return out


HOUR_CAPS = {"max_extend": "延长营业的驿站数", "max_24h": "24小时营业的驿站数", "max_sites": "新站点数"}
"""The caps of an hours recommendation, with their Chinese names."""


def _hours_params(params: dict[str, Any]) -> dict[str, Any]:
    """The checked parameters of an hours recommendation (see ``checked_params``)."""
    if params.get("k") is not None or params.get("target") is not None:
        raise InvalidInput("按小时的建议自有上限，不与站点数 k 或目标覆盖率 target 同用 / an hours recommendation "
                           "takes its own caps, not k or target")
    out: dict[str, Any] = {"hours": True}
    for field, zh in HOUR_CAPS.items():
        cap = params.get(field) or 0
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap <= MAX_SITES:
            raise InvalidInput(f"{zh} {field}: {cap!r}; 应为 0 到 {MAX_SITES} 的整数 / expected a whole number from 0 "
                               f"to {MAX_SITES}")
        out[field] = cap
    if not any(out[f] for f in HOUR_CAPS):
        raise InvalidInput("至少允许一类措施 / allow at least one kind of action: max_extend, max_24h or max_sites "
                           "above 0")
    extend_to = params.get("extend_to")
    if out["max_extend"]:
        if not isinstance(extend_to, str) or not extend_to.strip():
            raise InvalidInput("延长至 extend_to: 延长营业需要时刻，如 22:00 / max_extend needs extend_to, a local "
                               "time such as 22:00")
        until_hour(extend_to)
    out["extend_to"] = extend_to.strip() if isinstance(extend_to, str) and extend_to.strip() else None
    return out


class JobRunner:
    """This process's background workers for console jobs (``workers`` threads; more jobs wait in order)."""

    def __init__(self, engine: Engine, settings: Settings, *, workers: int = 1) -> None:
        self.engine = engine
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yizhan-job")

    def shutdown(self) -> None:
        """Stop taking jobs; the running ones finish (their rows say so)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, kind: Kind, area: str, params: dict[str, Any], *, user: str) -> int:
        """Store a queued job of ``kind`` for ``area`` with ``params`` (checked here, before any work: a bad value
        raises InvalidInput, 422) and start it in the background; its id."""
        work = self._work(kind, area, params)
        with self.engine.begin() as conn:
            area_id = get_area(conn, area).id
            job_id = int(conn.execute(text(
                "INSERT INTO jobs (kind, area_id, params, state, message, created_by) "
                "VALUES (:k, :a, CAST(:p AS jsonb), 'queued', '排队中 / queued', :u) RETURNING id"),
                {"k": kind, "a": area_id, "p": json.dumps(params), "u": user}).scalar_one())
        self._pool.submit(self._run, job_id, work)
        return job_id

    def _work(self, kind: Kind, area: str, params: dict[str, Any]) -> Work:
        params.update(checked_params(kind, params, self.settings))
        s = self.settings
        if kind == "coverage":
            def coverage(say: Callable[[str], None]) -> int:
                return int(run_coverage(self.engine, area=area, radius_m=float(params["radius_m"]),
                                        mode=params["mode"], profile=params["profile"], progress=say,
                                        settings=s, by_hour=params["by_hour"], capacity=params["capacity"],
                                        decay=params["decay"], unknown_hours=params["unknown_hours"])["run_id"])
            return coverage
        if kind == "recommendation" and params.get("hours"):
            def hours(say: Callable[[str], None]) -> int:
                return int(recommend_hours(self.engine, area=area, extend_to=params["extend_to"],
                                           max_extend=params["max_extend"], max_24h=params["max_24h"],
                                           max_sites=params["max_sites"], mode=params["mode"],
                                           profile=params["profile"], radius_m=float(params["radius_m"]),
                                           settings=s, progress=say)["run_id"])
            return hours
        if kind == "recommendation":
            def recommendation(say: Callable[[str], None]) -> int:
                return int(recommend(self.engine, area=area, k=params.get("k"), target=params.get("target"),
                                     mode=params["mode"], profile=params["profile"],
                                     radius_m=float(params["radius_m"]), settings=s, progress=say)["run_id"])
            return recommendation
        raise ValueError(f"unknown job kind {kind!r}")

    def _run(self, job_id: int, work: Work) -> None:
        last = 0.0
        lock = threading.Lock()

        def write(sql: str, **values: Any) -> None:
            with self.engine.begin() as conn:
                conn.execute(text(sql), {"id": job_id, **values})

        def say(message: str) -> None:
            nonlocal last
            now = time.monotonic()
            with lock:
                if now - last < BEAT_S:
                    return
                last = now
            write("UPDATE jobs SET message = :m, heartbeat = now() WHERE id = :id", m=message[:500])

        write("UPDATE jobs SET state = 'running', started_at = now(), heartbeat = now(), "
              "message = '开始 / started' WHERE id = :id")
        try:
            result = work(say)
        except YizhanError as exc:
            write("UPDATE jobs SET state = 'failed', error = :e, finished_at = now() WHERE id = :id", e=str(exc))
        except Exception:
            log.exception("job %s failed", job_id)
            write("UPDATE jobs SET state = 'failed', finished_at = now(), error = :e WHERE id = :id",
                  e="内部错误，已记录在服务器日志中 / internal error, written to the server's log")
        else:
            write("UPDATE jobs SET state = 'done', result_id = :r, finished_at = now(), "
                  "message = '完成 / done' WHERE id = :id", r=result)
