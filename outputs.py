"""Files and folders written for a person (map pages and their assets, reports, exports): each appears whole or
not at all.

A file is written under a temporary name in its own folder and renamed over the target once complete, so a full
disk, a read-only folder or a stopped job leaves the previous file (or none), never half of one; the temporary
file or folder is removed on any failure. An ``OSError`` of the writing names the target, not the temporary name,
so the message a person reads is about the file they asked for.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

PARTIAL = ".partial"
"""Marks a temporary name (``.NAME.<random>.partial``, or ``.STEM.<random>.partial.EXT``); such a file is never
left behind."""


def temporary_name(path: Path, *, keep_suffix: bool = False) -> Path:
    """A hidden name beside ``path`` for its temporary copy, unique per writer; with ``keep_suffix`` it ends in
    ``path``'s suffix (for a writer that picks the format by the suffix)."""
    token = secrets.token_hex(4)
    if keep_suffix:
        return path.with_name(f".{path.stem}.{token}{PARTIAL}{path.suffix}")
    return path.with_name(f".{path.name}.{token}{PARTIAL}")


@contextmanager
def replacing(path: Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Write ``path`` whole or not at all: yields a temporary path beside it (its folder created; see
    :func:`temporary_name`) for the caller to write; renamed to ``path`` when the block ends, removed when it
    raises.

    Raises
    ------
    OSError
        Of the folder's creation, the writing or the rename, naming ``path`` (or the folder that could not be
        made) rather than the temporary name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, keep_suffix=keep_suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        renamed = _naming_target(exc, tmp, path)
        if renamed is None:
            raise
        raise renamed from exc


@contextmanager
def replacing_folder(path: Path) -> Iterator[Path]:
    """Write the folder ``path`` whole or not at all: yields a temporary folder path beside it (not yet created)
    for the caller to fill; it then takes the place of ``path`` (an older ``path`` is removed), or is removed when
    the block raises. If another writer put its own complete ``path`` in place meanwhile, that one is kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{PARTIAL}")
    old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not path.is_dir():
                raise
    except BaseException as exc:
        if old.exists() and not path.exists():
            with suppress(OSError):
                os.replace(old, path)
        renamed = _naming_target(exc, tmp, path)
        if renamed is None:
            raise
        raise renamed from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _naming_target(exc: BaseException, tmp: Path, path: Path) -> OSError | None:
    """For an ``OSError`` that names the temporary path (or a path inside it, or none) the same error naming
    ``path``; None for any other error (raised as it is). A copy that fails names its source first and the
    temporary copy second (``shutil.copyfile`` on a full disk): the second counts."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    named = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    if named and not any(f.startswith(str(tmp)) for f in named):
        return None
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
