"""What the ``yizhan`` command says when it fails as expected: one line saying what happened and what to do, and
its exit code (2: the input or the request must change; 1: the environment — the database, the disk, another job,
an interruption — retry or fix it). An unexpected error (a bug) keeps its traceback; ``--debug`` (or
``YIZHAN_DEBUG=1``) shows the traceback of every failure.
"""

from __future__ import annotations

import errno
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg
from sqlalchemy.exc import DataError, DBAPIError

from yizhan.errors import (
    DATABASE_DOWN_ERRORS,
    DatabaseUnavailable,
    ImportRejected,
    YizhanError,
    as_unavailable,
    http_status,
)

USAGE = 2
"""Exit code of a failure the user fixes by changing the command or its input."""
ENVIRONMENT = 1
"""Exit code of a failure of the environment (database, disk, another job, an interruption)."""

DATABASE_HINT = "check it with `yizhan db status` (or DATABASE_URL), then run the command again"
OUT_HINT = "choose another folder with --out"


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) during a command; a ``BaseException`` so no ``except Exception`` swallows it and the
    command line's framework does not turn it into a silent exit."""


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """While the block runs, SIGINT raises :class:`Interrupted` (the previous handler is restored after). Only
    in the main thread, and only when SIGINT still has Python's default handler."""
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return
        previous = signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and the exit code of an expected failure; None for anything else (a bug)."""
    if isinstance(exc, Interrupted | KeyboardInterrupt):
        return ("interrupted: the command stopped before its end; a file being written was not kept and an "
                "import is all or nothing, so run the command again", ENVIRONMENT)
    if isinstance(exc, ImportRejected):  # the head line, then the refused rows one per line
        return str(exc), USAGE
    if isinstance(exc, DatabaseUnavailable):
        return f"{one_line(str(exc))}; {DATABASE_HINT}", ENVIRONMENT
    if isinstance(exc, YizhanError):
        code = http_status(exc)
        return one_line(str(exc)), ENVIRONMENT if code >= 500 or code == 409 else USAGE
    database = _database_error(exc)
    if database is not None:
        return _database(database)
    if isinstance(exc, OSError):
        return _os_error(exc)
    return None


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined by spaces (a driver's message spans several)."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _database_error(exc: BaseException) -> DBAPIError | psycopg.Error | None:
    """``exc`` or the error it was raised from (``raise ... from``) that is the database's: a library that reads
    through SQL may wrap it (pandas' ``DatabaseError``, an ``OSError``)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, DBAPIError | psycopg.Error):
            return seen
        seen = seen.__cause__
    return None


def _database(exc: DBAPIError | psycopg.Error) -> tuple[str, int] | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return ("another job changed the same rows at the same time (deadlock); nothing of this command was "
                "stored: run it again", ENVIRONMENT)
    if isinstance(orig, psycopg.errors.LockNotAvailable):
        return ("another job holds the rows this command needs (lock timeout); nothing of this command was "
                "stored: run it again when that job has finished", ENVIRONMENT)
    if isinstance(orig, psycopg.errors.QueryCanceled):
        why = "it took too long (statement timeout)" if "timeout" in str(orig) else "it was cancelled"
        return f"the database stopped the command: {why}; nothing of it was stored: run it again", ENVIRONMENT
    if isinstance(exc, DataError) or isinstance(orig, psycopg.DataError):
        said = one_line(str(orig)) or type(orig).__name__
        return f"a value the database cannot store: {said}; correct it and run the command again", USAGE
    if isinstance(exc, DATABASE_DOWN_ERRORS) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return f"{as_unavailable(exc)}: {DATABASE_HINT}", ENVIRONMENT
    return None


def _os_error(exc: OSError) -> tuple[str, int]:
    """A file or folder that cannot be used: what the system said, in words, and what to do."""
    name = exc.filename if exc.filename is not None else "a file"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"cannot write to {name}: the disk is full (or the file too large for it); free space or "
                f"{OUT_HINT}", ENVIRONMENT)
    if code == errno.EROFS:
        return f"cannot write to {name}: the disk is read-only; {OUT_HINT}", ENVIRONMENT
    if code in (errno.EACCES, errno.EPERM):
        return (f"{name}: permission denied (read-only or another user's); choose a file you may read, or for "
                f"outputs {OUT_HINT}", ENVIRONMENT)
    if code == errno.ENOTDIR:
        return (f"cannot write to {name}: part of that path is a file, not a folder; {OUT_HINT}", USAGE)
    if code == errno.ENOENT:
        return f"{name}: no such file or folder; check the path", USAGE
    if code == errno.EISDIR:
        return f"{name} is a folder; give a file name", USAGE
    return f"{name}: {one_line(exc.strerror or str(exc))}", ENVIRONMENT
