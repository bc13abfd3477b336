"""Run the ``yizhan`` command for tests: in this process (fast), or as a real ``python -m yizhan.cli`` process.

Both return a ``subprocess.CompletedProcess`` (``returncode``, ``stdout``, ``stderr`` as text), so a test reads
the same whichever way the command ran.

In-process, the command runs through the entry point itself (``yizhan.cli.main``: the same exit codes and
``error:`` messages as the installed command) with ``sys.argv``, the standard streams (click's ``CliRunner``
isolation), the command's rich consoles and the *whole* environment replaced for the call, so variables a test
leaves out are really unset and a command that sets one (``demo`` sets a staff key) does not leak it. The
process-wide settings and engines are dropped before and after, as a new process would start without them. An
unexpected exception becomes exit code 1 with its traceback on stderr, as Python's would.

A subprocess costs 2–3 s of imports (geopandas, osmnx, …) per command; keep it for tests about the process
itself (the entry point, ``serve``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping

import httpx
from click.testing import CliRunner
from rich.console import Console

from yizhan import cli
from yizhan.cli import common
from yizhan.db.cluster import free_port
from yizhan.db.engine import dispose_engines
from yizhan.settings import get_settings


def _forget_process_state() -> None:
    """Drop what a finished ``yizhan`` process would not keep: the cached settings and database engines."""
    dispose_engines()
    get_settings.cache_clear()


def _completed(args: tuple[str, ...], code: int, out: bytes, err: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["yizhan", *args], code, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


def _check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(proc.args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli(*args: str, env: Mapping[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``yizhan ARGS`` in this process with exactly the environment ``env``.

    Raises AssertionError (stdout and stderr in the message) when ``check`` and the exit code is not 0.
    """
    saved_env, saved_argv, saved_consoles = dict(os.environ), sys.argv, (common.out, common.err)
    runner = CliRunner()
    _forget_process_state()
    try:
        with runner.isolation() as (out, err, _):
            os.environ.clear()
            os.environ.update(env)
            sys.argv = ["yizhan", *args]
            # new consoles, as a new process has: rich reads the width (COLUMNS) when a console is made
            common.out, common.err = Console(), Console(stderr=True)
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if exc.code is not None and not isinstance(exc.code, int):
                    sys.stderr.write(f"{exc.code}\n")
            except Exception:
                sys.stderr.write(traceback.format_exc())
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            proc = _completed(args, code, out.getvalue(), err.getvalue())
    finally:
        _forget_process_state()
        common.out, common.err = saved_consoles
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return _check(proc) if check else proc


def run_cli_process(*args: str, env: Mapping[str, str], check: bool = True,
                    timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m yizhan.cli ARGS`` as a child process with the environment ``env``."""
    proc = subprocess.run([sys.executable, "-m", "yizhan.cli", *args], env=dict(env), capture_output=True, text=True,
                          timeout=timeout)
    proc.args = ["yizhan", *args]
    return _check(proc) if check else proc


def start_server(*args: str, env: Mapping[str, str], startup_s: float = 60) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m yizhan.cli serve --port PORT ARGS`` (a free port) with the environment ``env`` and wait
    until it answers ``/healthz``; the process (stdout and stderr piped, as text) and its base URL. The caller
    stops it. AssertionError with the server's output when it exits or does not answer within ``startup_s``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "yizhan.cli", "serve", "--port", str(port), *args], env=dict(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_s
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=5)
            return proc, base
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"yizhan serve did not start:\n{out}\n{err}") from None
            time.sleep(0.3)
