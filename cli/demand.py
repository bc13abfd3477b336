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
    lon_col: Annotated[str | None, typer.Option(
        help="Column of the longitude (default: 收货经度, 送达经度, 经度, lon, lng ... by the header)")] = None,
    lat_col: Annotated[str | None, typer.Option(
        help="Column of the latitude (default: 收货纬度, 送达纬度, 纬度, lat ... by the header)")] = None,
    weight_col: Annotated[str | None, typer.Option(
        help="Column of the number of orders (default: 订单量, 单量, 件数, weight ...; without one each row is 1)")
    ] = None,
    time_col: Annotated[str | None, typer.Option(
        help="Column of the order time (default: 下单时间, 送达时间, 时间, timestamp ...); a time without an "
             "offset is local time of YIZHAN_TIMEZONE")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Text encoding of a shapefile without a .cpg (or with a wrong one): gbk or utf-8 (default: the "
             ".cpg, else found from the .dbf)")] = None,
    h3: Annotated[int | None, typer.Option(
        "--h3", help="Cells as H3 hexagons of this resolution (7 to 10; 9: about 0.1 km², edge about 200 m) instead "
                     "of squares of --cell-size")] = None,
    max_rows: Annotated[int | None, typer.Option(
        min=1, help="Refuse a file of more rows (default: no limit here; YIZHAN_MAX_IMPORT_ROWS bounds uploads "
                    "through the console and the API)")] = None,
) -> None:
    """Import delivery orders or demand points (CSV, XLSX, GeoJSON, GeoPackage, GeoParquet, a shapefile or a .zip
    holding one) and aggregate them into grid cells. The columns are found by their Chinese or English headers
    (收货经度/收货纬度, 下单时间, 订单量 ...) or named with --lon-col, --lat-col, --weight-col, --time-col. A
    province's file of tens of millions of orders is taken: the row limit of uploads does not apply here."""
    from yizhan.data.demand import import_demand
    from yizhan.data.demand_columns import DemandColumns
    from yizhan.data.demand_points import MAX_POINTS
    from yizhan.data.h3_cells import check_resolution
    from yizhan.stations.tables import ImportLimits

    settings = get_settings()
    if h3 is not None:
        if cell_size is not None:
            raise typer.BadParameter("--h3 与 --cell-size 只能二选一 / give --h3 or --cell-size, not both")
        check_resolution(h3)
    size = cell_size or settings.cell_size_m
    columns = DemandColumns(lon=lon_col, lat=lat_col, weight=weight_col, time=time_col)
    with status(f"importing {file.name}"):
        s = import_demand(engine(), file, area=area, coord=coord, cell_size_m=size, append=append, clip=clip,
                          timezone=settings.timezone, columns=columns, encoding=encoding,
                          limits=ImportLimits(max_rows or MAX_POINTS, settings.max_uncompressed_mb), h3_res=h3)
    dropped_zh = f"，区域外 {s.dropped_outside} 个已丢弃" if s.dropped_outside else ""
    dropped = f", {s.dropped_outside} outside the area dropped" if s.dropped_outside else ""
    kind_zh = f"H3 {h3} 级六边形" if h3 is not None else f"{s.cell_size_m:g} 米网格"
    kind = f"H3 res {h3} hexagons" if h3 is not None else f"cells of {s.cell_size_m:g} m"
    common.out.print(f"{s.points} 个需求点{dropped_zh} → {s.cells} 个 {kind_zh}，总权重 {s.weight_total:g}，区域 "
                     f"{s.area} / {s.points} points{dropped} -> {s.cells} {kind}, total weight {s.weight_total:g} "
                     f"in area {s.area}", markup=False)
    if s.columns:
        common.out.print(f"所用的列 / columns used: {s.columns}", markup=False)
    for note in s.notes:
        common.out.print(note, markup=False)


@demand_app.command("profile")
def demand_profile(
    file: Annotated[Path | None, typer.Argument(
        help="CSV or XLSX: 168 rows of 星期, 小时, 权重 (weekday, hour, weight) or a 24 x 7 table (hours down, "
             "周一 … 周日 across)")] = None,
    area: AreaOpt = None,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the area's profile: the built-in one applies")] = False,
) -> None:
    """The area's demand profile over the week: how orders without a time are spread over its 168 hours in runs by
    hour (``yizhan coverage --by-hour``). Without FILE or --clear, prints the profile in use."""
    from yizhan.areas import resolve_area
    from yizhan.data.demand_profile import drop_profile, store_profile, stored_profile
    from yizhan.stations.tables import ImportLimits
    from yizhan.weekly.profile import DEFAULT_PROFILE, read_profile
    from yizhan.weekly.week import DAYS_ZH

    if file is not None and clear:
        raise typer.BadParameter("曲线文件与 --clear 只能二选一 / give a profile FILE or --clear, not both")
    with engine().begin() as conn:
        info = resolve_area(conn, area)
        if file is not None:
            week = read_profile(file, limits=ImportLimits.from_settings(get_settings()))
            store_profile(conn, info.id, week, source=file.name)
            common.out.print(f"区域 {info.name} 的周需求曲线已更新（{file.name}）/ week profile of {info.name} stored "
                             f"from {file.name}", markup=False)
            return
        if clear:
            had = drop_profile(conn, info.id)
            note = "" if had else " (none was stored)"
            common.out.print(f"已恢复内置曲线 / the built-in profile applies again{note}", markup=False)
            return
        stored = stored_profile(conn, info.id)
    week, source = stored if stored is not None else (DEFAULT_PROFILE, "内置 built-in")
    common.out.print(f"{info.name}: {source}", markup=False)
    for d, day in enumerate(DAYS_ZH):
        row = week[d * 24:(d + 1) * 24] * 100
        common.out.print(f"{day} " + " ".join(f"{x:4.1f}" for x in row) + " %", markup=False)
