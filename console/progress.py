"""Console jobs seen from a browser: the app's one ``JobRunner`` (made on first use, shut down with the app), the
progress page of a job (``/console/jobs/{id}``) and the small JSON answer its script polls
(``/console/jobs/{id}/state``) until the job is done, failed or interrupted.

The job itself runs in the runner's worker thread; every route here is a plain read of the ``jobs`` table, so a
page that polls never holds a worker of the server.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from yizhan.console.auth import SignedInUser, console_engine, console_settings
from yizhan.console.jobs import KIND_ZH, Job, JobRunner, job_of
from yizhan.console.layout import CSP, render
from yizhan.errors import YizhanError, http_status
from yizhan.maps.formatting import local_time_text

router = APIRouter(tags=["console"], include_in_schema=False)

SCRIPT_CSP = CSP.replace("script-src 'none'", "script-src 'self'")
"""The policy of the console pages that run a script of their own (served from ``/console-assets``): the
console's, with scripts from this site allowed (no inline script, nothing from another host)."""
POLL_MS = 1000
"""How often the progress page asks for the job's state, milliseconds."""
STATE_TEXT = {"queued": ("排队中", "queued"), "running": ("进行中", "running"), "done": ("完成", "done"),
              "failed": ("失败", "failed"), "interrupted": ("已中断", "interrupted")}
"""A job's state in Chinese and English."""
RESULT_PATHS = {"coverage": "/console/runs/{}", "recommendation": "/console/recommendations/{}"}
"""Where a finished job's result is shown, by kind."""
START_PATHS = {"coverage": "/console/runs", "recommendation": "/console/recommendations"}
"""Where a job of each kind is started (to start another after a failure)."""
_made = threading.Lock()


def job_runner(request: Request) -> JobRunner:
    """The app's ``JobRunner``, made on first use (with the app's engine and settings) and kept on ``app.state``."""
    state = request.app.state
    runner: JobRunner | None = getattr(state, "job_runner", None)
    if runner is None:
        with _made:
            runner = getattr(state, "job_runner", None)
            if runner is None:
                runner = state.job_runner = JobRunner(console_engine(request), console_settings(request))
    return runner


Runner = Annotated[JobRunner, Depends(job_runner)]
"""A console route's parameter: the app's ``JobRunner``."""


def close_job_runner(app: FastAPI) -> None:
    """Stop the app's ``JobRunner``, if one was made (at the app's shutdown)."""
    runner: JobRunner | None = getattr(app.state, "job_runner", None)
    if runner is not None:
        runner.shutdown()
        app.state.job_runner = None


def to_job_page(request: Request, job_id: int) -> RedirectResponse:
    """The answer to a form that started job ``job_id``: a 303 to its progress page (post, redirect, get)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return RedirectResponse(f"{root}/console/jobs/{job_id}", status_code=303)


def job_state(job: Job, root: str = "") -> dict[str, Any]:
    """What the progress page's script reads: ``state`` and its words, the last ``message``, the ``error`` (one
    line) and, once done, ``result_url`` (the run's or the recommendation's page)."""
    zh, en = STATE_TEXT[job.state]
    url = root + RESULT_PATHS[job.kind].format(job.result_id) if job.state == "done" and job.result_id else None
    return {"id": job.id, "kind": job.kind, "state": job.state, "state_text": f"{zh} {en}", "message": job.message,
            "error": job.error, "finished": job.finished, "result_url": url}


def refusal(request: Request, exc: YizhanError, *, title_zh: str, title_en: str) -> HTMLResponse:
    """A console page saying why it cannot show what was asked (a run, a job that does not exist...), with the
    error's status; the message's Chinese before `` / `` and its English after."""
    zh, _, en = str(exc).partition(" / ")
    return render(request, "refused.html", status_code=http_status(exc), title_zh=title_zh, title_en=title_en,
                  zh=zh, en=en)


def _job(request: Request, job_id: int) -> Job:
    with console_engine(request).connect() as conn:
        return job_of(conn, job_id)


@router.get("/console/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, user: SignedInUser, job_id: int) -> HTMLResponse:
    """A job's progress: its state and last message, refreshed by the page's script until it ends; then a link to
    what it made, or its error."""
    try:
        job = _job(request, job_id)
    except YizhanError as exc:
        return refusal(request, exc, title_zh="没有这个任务", title_en="No such job")
    root = request.scope.get("root_path", "").rstrip("/")
    settings = console_settings(request)
    return render(request, "job.html", user=user, job=job, state=job_state(job, root), kind_zh=KIND_ZH[job.kind],
                  started=local_time_text(job.created_at, settings.timezone), poll_ms=POLL_MS,
                  start_path=START_PATHS[job.kind], headers={"Content-Security-Policy": SCRIPT_CSP})


@router.get("/console/jobs/{job_id}/state")
def job_state_json(request: Request, user: SignedInUser, job_id: int) -> JSONResponse:
    """A job's state as JSON (see :func:`job_state`), for the progress page's script."""
    root = request.scope.get("root_path", "").rstrip("/")
    return JSONResponse(job_state(_job(request, job_id), root), headers={"Cache-Control": "no-store"})
