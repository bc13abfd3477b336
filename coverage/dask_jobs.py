"""Independent jobs on Dask distributed: a local cluster by default, or a scheduler given by address or client.

Used by the runs in parts (``coverage.partitioned``) and by whatever else splits its work into independent pieces
(site recommendation per part, the areas of a nation). Each job is submitted once with ``RETRIES`` retries; a job
that still fails is reported and the others go on, so the caller can save what finished and compute only the rest
when asked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from yizhan.errors import YizhanError
from yizhan.settings import Settings

RETRIES = 2

Job = TypeVar("Job")
Result = TypeVar("Result")


def run_on_dask(settings: Settings, scheduler: Any, say: Callable[[str], None], fn: Callable[[Job], Result],
                jobs: Sequence[Job], *, name: str, label: Callable[[Job], str],
                on_result: Callable[[Job, Result], str]) -> list[str]:
    """Run ``fn`` on every one of ``jobs`` on Dask; the failures, described (empty when all finished).

    ``scheduler``: a ``distributed.Client`` (used, not closed), a scheduler's address ``tcp://HOST:8786``, or None
    for ``settings.dask_scheduler`` and else a local cluster of ``settings.partition_workers`` processes of one
    thread each (closed afterwards). ``name`` prefixes the Dask keys; ``label(job)`` names a job in messages
    ("part 3/8"); ``on_result(job, result)`` is called in this process as each result arrives (save it there) and
    returns what to say after "done: ".
    """
    import distributed

    dask: Any = distributed  # the package has no type hints
    Client, LocalCluster, as_completed = dask.Client, dask.LocalCluster, dask.as_completed

    cluster = None
    if isinstance(scheduler, Client):
        client, own = scheduler, False
    elif scheduler or settings.dask_scheduler:
        address = str(scheduler or settings.dask_scheduler)
        say(f"connecting to the Dask scheduler at {address}")
        try:
            client, own = Client(address, timeout="30s"), True
        except OSError as exc:
            raise YizhanError(f"无法连接 Dask 调度器 {address} / cannot reach the Dask scheduler at {address}: "
                              f"{exc}") from exc
    else:
        cluster = LocalCluster(n_workers=settings.partition_workers, threads_per_worker=1, processes=True,
                               memory_limit="auto", dashboard_address=":0")
        try:
            client, own = Client(cluster), True
        except BaseException:  # the worker processes go with it
            cluster.close()
            raise
        limits = [w.memory_manager.memory_limit for w in cluster.workers.values()]
        say(f"local Dask cluster: {settings.partition_workers} worker process(es) x 1 thread, memory limit "
            f"{(limits[0] or 0) / 2**30:.1f} GiB each")
    failures: list[str] = []
    try:
        stamp = time.time_ns()
        futures = {client.submit(fn, job, retries=RETRIES, pure=False, key=f"{name}-{i}-{stamp}"): job
                   for i, job in enumerate(jobs)}
        done = 0
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a job's own failure, after its retries: the others go on
                failures.append(f"{label(job)}: {type(exc).__name__}: {exc}")
                say(f"{label(job)} failed: {exc}")
                continue
            said = on_result(job, result)
            done += 1
            say(f"{label(job)} done: {said} ({done}/{len(jobs)} of this run)")
    finally:
        if own:
            client.close()
        if cluster is not None:
            cluster.close()
    return failures
