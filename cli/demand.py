"""``yizhan demand import``: delivery-demand points into an area's grid cells."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from yizhan.cli import common
from yizhan.cli.common import AreaOpt, CoordOpt, demand_app, engine, status
from yizhan.settings import get_settings


@demand_app.command("import")
def demand_import(
    file: Path, area: AreaOpt = None, coord: CoordOpt = "wgs84",
    cell_size: Annotated[float | None, typer.Option(help="Grid cell edge in metres (default from settings)")] = None,
    append: Annotated[bool, typer.Option(help="Add to the area's points instead of replacing them")] = False,
    clip: Annotated[bool, typer.Option(help="Drop points outside the area instead of rejecting the file")] = False,
) -> None:
    """Import delivery-demand points (CSV/GeoJSON/GeoParquet) and aggregate them into grid cells."""
    from yizhan.data.demand import import_demand

    size = cell_size or get_settings().cell_size_m
    with status(f"importing {file.name}"):
        s = import_demand(engine(), file, area=area, coord=coord, cell_size_m=size, append=append, clip=clip)
    dropped = f", {s.dropped_outside} outside the area dropped" if s.dropped_outside else ""
    common.out.print(f"{s.points} points{dropped} -> {s.cells} cells of {s.cell_size_m:g} m, "
                     f"total weight {s.weight_total:g} in area [bold]{s.area}[/]")
