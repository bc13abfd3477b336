"""What every ``yizhan`` command shares: the command tree, the consoles, the settings' engine and the ways of
showing progress and results.

``out`` (results) and ``err`` (progress and errors) are read through this module at call time
(``common.out.print``), so a caller that runs commands in-process can give each run consoles of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from yizhan.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="yizhan 驿站: rest-station coverage for outdoor workers.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="The database (embedded cluster unless DATABASE_URL is set).", no_args_is_help=True)
area_app = typer.Typer(help="Study areas.", no_args_is_help=True)
stations_app = typer.Typer(help="The station registry.", no_args_is_help=True)
demand_app = typer.Typer(help="Delivery demand layers.", no_args_is_help=True)
network_app = typer.Typer(help="Street networks (walk, bike) of an area.", no_args_is_help=True)
keys_app = typer.Typer(help="Staff API keys (stored hashed; shown once).", no_args_is_help=True)
units_app = typer.Typer(help="Administrative units (districts, townships) for summaries.", no_args_is_help=True)
candidates_app = typer.Typer(help="Candidate sites for new stations (OSM premises or the union's own list).",
                             no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(area_app, name="area")
app.add_typer(stations_app, name="stations")
app.add_typer(demand_app, name="demand")
app.add_typer(network_app, name="network")
app.add_typer(units_app, name="units")
app.add_typer(keys_app, name="keys")
app.add_typer(candidates_app, name="candidates")

out = Console()
err = Console(stderr=True)

debug = False
"""Whether a failure shows its traceback (``yizhan --debug`` or ``YIZHAN_DEBUG=1``); set by :func:`root`."""


@app.callback()
def root(show_traceback: Annotated[bool, typer.Option(
        "--debug", help="Show the full traceback of a failure (also YIZHAN_DEBUG=1)")] = False) -> None:
    """yizhan 驿站: rest-station coverage for outdoor workers."""
    global debug
    debug = show_traceback or debug_from_environment()


def debug_from_environment() -> bool:
    """Whether ``YIZHAN_DEBUG`` asks for tracebacks (1, true, yes, on)."""
    return os.environ.get("YIZHAN_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")

AreaOpt = Annotated[str | None, typer.Option("--area", help="Area name (default: the only area)")]
CoordOpt = Annotated[str, typer.Option("--coord", help="Coordinate system of the file: wgs84, gcj02 or bd09")]
PartsByOpt = Annotated[str, typer.Option(help="Parts as balanced tiles or by the area's administrative units "
                                              "(tiles, units)")]
SchedulerOpt = Annotated[str | None, typer.Option(help="A running Dask scheduler (tcp://HOST:8786) for the parts "
                                                      "(default: YIZHAN_DASK_SCHEDULER, else a local cluster of "
                                                      "YIZHAN_PARTITION_WORKERS processes)")]


@contextmanager
def status(message: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; plain lines otherwise. Yields a function that updates the message."""
    if err.is_terminal:
        with err.status(message) as st:
            yield lambda m: st.update(m)
    else:
        err.print(message)
        yield lambda m: err.print(f"  {m}")


def engine() -> Engine:
    """The engine of the settings' database (started and migrated on first use), without the API's statement
    timeout: a command's own job (a large import, a coverage run) runs as long as it needs."""
    from yizhan.db.engine import get_engine

    return get_engine(get_settings(), statement_timeout=False)


def show(data: Any, as_json: bool) -> None:
    """``data`` (a mapping) as JSON or as a two-column table on ``out``."""
    if as_json:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
        return
    table = Table(show_header=False, box=None)
    for k, v in data.items():
        table.add_row(f"[bold]{k}[/]", str(v))
    out.print(table)
