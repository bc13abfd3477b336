"""The ``yizhan`` command line: database, areas, registry, demand, coverage, map, reports, API, demo.

The command tree and what the commands share are in ``common``; the commands by concept in ``database``,
``registry`` (areas, networks, units), ``stations``, ``demand``, ``analysis``, ``serving`` and ``users`` (console
accounts). ``main`` is the installed ``yizhan`` command.
"""

from __future__ import annotations

import atexit
import gc
import sys
import traceback

from rich.markup import escape

from yizhan.cli import analysis, database, demand, registry, serving, stations, users  # noqa: F401  (they register their commands)
from yizhan.cli.common import app
from yizhan.cli.failures import describe, interrupts_raise


def main() -> None:
    """Entry point: run the CLI; an expected failure (a domain error, the database down, slow or deadlocked, a
    full or read-only disk, Ctrl-C) ends with one line on stderr and exit code 2 or 1 (see ``cli.failures``);
    with ``--debug`` (or ``YIZHAN_DEBUG=1``) its traceback is printed first."""
    from yizhan.cli import common

    # at exit, the objects alive are left to the system: the interpreter's last collection over the modules'
    # objects (pandas, pyarrow, SQLAlchemy) took 0.25-0.45 s of every command, 0.03-0.07 s with them frozen
    atexit.register(gc.freeze)
    common.debug = False
    try:
        with interrupts_raise():
            app()
        return
    except BaseException as exc:  # anything not described is raised again as it is
        failure = describe(exc)
        if failure is None:
            raise
        message, code = failure
        debug = common.debug or common.debug_from_environment()
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        common.err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        hook = sys.unraisablehook
        if not debug:  # from here until the frames are freed
            sys.unraisablehook = _ignored
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook
    sys.exit(code)


def _ignored(_: object) -> None:
    """The echoes of a failed command's clean-up, not shown: a writer's file object that closes onto the same
    full disk when its frames are freed reports the failure again as an "exception ignored"."""
