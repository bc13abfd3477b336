"""The ``yizhan`` command line: database, areas, registry, demand, coverage, map, reports, API, demo.

The command tree and what the commands share are in ``common``; the commands by concept in ``database``,
``registry``, ``analysis`` and ``serving``. ``main`` is the installed ``yizhan`` command.
"""

from __future__ import annotations

import sys

from yizhan.cli import analysis, database, registry, serving  # noqa: F401  (they register their commands)
from yizhan.cli.common import app
from yizhan.errors import DatabaseUnavailable, SetupError, YizhanError


def main() -> None:
    """Entry point: run the CLI, turning domain errors into a message and an exit code."""
    from yizhan.cli import common

    try:
        app()
    except (DatabaseUnavailable, SetupError) as exc:
        common.err.print(f"[red]error:[/] {exc}")
        sys.exit(1)
    except YizhanError as exc:
        common.err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
