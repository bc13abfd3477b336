"""A real full disk for the tests: a tiny tmpfs mounted on a folder (root only) and filled to its last byte."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

from skips import skip_not_provided


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "256k") -> Iterator[Path]:
    """A real file system of ``size`` mounted on ``folder`` (a tmpfs; root only), unmounted after; skips the
    test with the reason when mounting is not permitted here."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_not_provided(f"cannot mount a small file system here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to its last byte (a file ``filler``)."""
    block = 65536
    with (folder / "filler").open("wb", buffering=0) as f:
        while block:
            try:
                f.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                block //= 2
