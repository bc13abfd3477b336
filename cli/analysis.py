"""``yizhan coverage|recommend|map|report``: coverage runs, site recommendations, their maps and reports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from yizhan.cli import common
from yizhan.cli.common import (
    AreaOpt,
    CoordOpt,
    PartsByOpt,
    SchedulerOpt,
    app,
    candidates_app,
    engine,
    show,
    status,
)
from yizhan.outputs import replacing
from yizhan.settings import get_settings


# -- coverage, map, report -----------------------------------------------------------------------------------
@app.command("coverage")
def coverage(
    area: AreaOpt = None,
    radius: Annotated[float | None, typer.Option(help="Service radius in metres (default: YIZHAN_RADIUS_M)")] = None,
    mode: Annotated[str, typer.Option(help="straight (line) or network (along the streets)")] = "straight",
    profile: Annotated[str, typer.Option(help="Street network for --mode network: walk or bike")] = "walk",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    measure: Annotated[str, typer.Option(help="auto (the order points when stored, else the cells), points or cells "
                                              "(the cell centres)")] = "auto",
    by_hour: Annotated[bool, typer.Option("--by-hour", help="Coverage at each hour of the week from the stations' "
                                                            "opening hours")] = False,
    capacity: Annotated[bool, typer.Option("--capacity", help="Seats against the orders within reach, hour by hour "
                                                              "(two-step floating catchment)")] = False,
    decay: Annotated[str, typer.Option(help="Capacity's distance decay: none (2SFCA), stepwise or gaussian "
                                            "(E2SFCA)")] = "none",
    week_of: Annotated[str | None, typer.Option(help="A date (2027-02-08) whose calendar week the hours are read in, "
                                                     "public holidays included (default: a week without them)")
                       ] = None,
    unknown_hours: Annotated[str, typer.Option(help="Stations without readable hours count as open or closed")
                             ] = "open",
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Compute in this many parts on Dask (a province, the nation): each part exact inside it, then "
                    "merged (default: in parts along the streets when the area's street graphs per partition were "
                    "built, else whole)")] = None,
    parts_by: PartsByOpt = "tiles",
    scheduler: SchedulerOpt = None,
    areas: Annotated[str | None, typer.Option("--areas", help="Several areas at once, comma-separated (a "
                                                                 "province's cities, the nation's zones): each area "
                                                                 "a job on Dask, the largest first")] = None,
    all_areas: Annotated[bool, typer.Option("--all-areas", help="Every area, as --areas does")] = False,
) -> None:
    """Analyse 1 km coverage of demand by active stations; store the run and print its summary. --by-hour and
    --capacity add the hours of the week and the stations' loads; --partitions computes in parts on Dask;
    --areas / --all-areas run many areas side by side on Dask."""
    from yizhan.coverage.analysis import run_coverage

    if decay != "none" and not capacity:
        raise typer.BadParameter("--decay 只用于 --capacity / --decay applies to --capacity only")
    if (week_of or unknown_hours != "open") and not (by_hour or capacity):
        raise typer.BadParameter("--week-of、--unknown-hours 只用于 --by-hour 或 --capacity / --week-of and "
                                 "--unknown-hours apply to --by-hour or --capacity only")
    week = parse_date(week_of, "--week-of") if week_of else None
    if areas is not None or all_areas:
        if area or (partitions or 1) > 1 or (areas is not None and all_areas):
            raise typer.BadParameter("--areas/--all-areas 各区域整体计算，不与 --area、--partitions 同用 / "
                                     "--areas or --all-areas runs each area whole: not with --area, --partitions "
                                     "or each other")
        _coverage_of_areas(None if all_areas else (areas or "").split(","), as_json, scheduler=scheduler,
                           radius_m=radius or get_settings().radius_m, mode=mode, profile=profile, measure=measure,
                           by_hour=by_hour, capacity=capacity, week_of=week, unknown_hours=unknown_hours,
                           decay=decay)
        return
    with status("coverage") as say:
        summary = run_coverage(engine(), area=area, radius_m=radius or get_settings().radius_m, mode=mode,
                               profile=profile, progress=say, settings=get_settings(), measure=measure,
                               by_hour=by_hour, capacity=capacity, week_of=week, unknown_hours=unknown_hours,
                               decay=decay, parts=partitions, parts_by=parts_by, scheduler=scheduler)
    summary.pop("params", None)
    if as_json:
        show(summary, as_json)
        return
    hours, loads = summary.pop("by_hour", None), summary.pop("capacity", None)
    show(summary, False)
    if hours is not None:
        show_hours(hours)
    if loads is not None:
        common.out.print(f"容量 capacity ({loads['method']}): 拥挤驿站 crowded stations {loads['crowded']} "
                         f"(> {loads['crowded_per_seat']:g} orders per seat at their peak hour): "
                         f"{', '.join(loads['crowded_stations'][:20]) or '-'}", markup=False)


def _coverage_of_areas(names: list[str] | None, as_json: bool, *, scheduler: str | None, **options: Any) -> None:
    """``yizhan coverage --areas``: each area's run on Dask, a line per area and the total; exit code 1 when an area
    could not be run (the others are stored)."""
    from yizhan.coverage.area_runs import run_areas

    with status("coverage of several areas") as say:
        result = run_areas(get_settings(), names, scheduler=scheduler, progress=say, **options)
    if as_json:
        show({"seconds": round(result.seconds, 3), "areas": [
            {"area": o.area, "seconds": round(o.seconds, 3), "error": o.error, "summary": o.summary}
            for o in result.outcomes]}, True)
    else:
        table = Table("区域 area", "运行 run", "网格 cells", "覆盖 covered", "缺口 gaps", "秒 s", "说明 note")
        for o in result.outcomes:
            s = o.summary
            if s is None:
                table.add_row(escape(o.area), "-", "-", "-", "-", f"{o.seconds:.1f}", escape(o.error or ""))
            else:
                table.add_row(escape(o.area), str(s["run_id"]), f"{s['cells']:,}", f"{s['covered_share']:.1%}",
                              str(s["gaps"]), f"{o.seconds:.1f}", "")
        common.out.print(table)
        done = [o.summary for o in result.outcomes if o.summary is not None]
        total = sum(s["demand_total"] for s in done)
        covered = sum(s["demand_covered"] for s in done)
        common.out.print(f"合计 total: {len(done)}/{len(result.outcomes)} areas, {sum(s['cells'] for s in done):,} "
                         f"cells, covered {covered / total if total else 0:.1%} of the demand, "
                         f"{result.seconds:.1f} s", markup=False)
    if result.failed:
        common.err.print(f"[red]error:[/] {len(result.failed)} 个区域未能计算 / {len(result.failed)} area(s) could "
                         f"not be run: {escape(', '.join(o.area for o in result.failed))}")
        raise typer.Exit(1)


def parse_date(value: str, option: str) -> date:
    """A date typed as 2027-02-08 (or 2027/02/08, 2027年2月8日); BadParameter naming the option otherwise."""
    import re

    m = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*", value)
    try:
        if m is None:
            raise ValueError(value)
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise typer.BadParameter(f"{option} {value!r}: 应为日期 / expected a date such as 2027-02-08") from None


def show_hours(hours: dict[str, Any]) -> None:
    """A run's figures by hour of the week as a few lines and the 24 x 7 table of covered share (%)."""
    from yizhan.weekly.week import DAYS_ZH

    shares = hours.get("covered_share_by_hour") or [None] * 168
    common.out.print(f"按营业时间覆盖 with opening hours: {hours['covered_share']:.1%} · 未覆盖需求·小时 uncovered "
                     f"demand-hours {hours['uncovered_demand_hours']:,.0f} · 夜间缺口 night gaps "
                     f"{hours['night_gap_cells']} cells · measured on {hours['measured']}", markup=False)
    for w in hours.get("worst_hours") or []:
        common.out.print(f"  {w['label_zh']} / {w['label_en']}: {w['uncovered']:,.0f} uncovered", markup=False)
    table = Table(title="覆盖率 % covered, hour × weekday", show_edge=False)
    table.add_column("时 h", justify="right")
    for day in DAYS_ZH:
        table.add_column(day, justify="right")
    for hour in range(24):
        table.add_row(f"{hour:02d}", *("-" if (v := shares[d * 24 + hour]) is None else f"{v * 100:.0f}"
                                       for d in range(7)))
    common.out.print(table)


@candidates_app.command("import")
def candidates_import(
    file: Annotated[Path | None, typer.Argument(help="CSV, XLSX or GeoJSON: id, name, lon, lat[, host_type, "
                                                     "address]")] = None,
    osm: Annotated[Path | None, typer.Option(help="Take the host premises of this .osm/.osm.pbf extract")] = None,
    area: AreaOpt = None,
    coord: CoordOpt = "wgs84",
) -> None:
    """Store candidate sites of an area (insert or update by id; one transaction). From an extract only the
    premises inside the area are taken; a file's rows must all lie inside it."""
    from yizhan.areas import resolve_area
    from yizhan.siting.candidates import (
        candidate_counts,
        candidates_from_extract,
        candidates_from_file,
        filter_candidates,
        store_candidates,
    )

    if (file is None) == (osm is None):
        raise typer.BadParameter("give a candidates FILE or --osm EXTRACT (one of them)")
    with engine().begin() as conn:
        info = resolve_area(conn, area)
        if osm is not None:
            cands, _ = filter_candidates(candidates_from_extract(osm), info)
            done = store_candidates(conn, info, cands, source=f"{osm.name} (© OpenStreetMap contributors)")
        elif file is not None:
            done = store_candidates(conn, info, candidates_from_file(file, coord=coord), source=Path(file).name)
        counts = candidate_counts(conn, info.id)
    common.out.print(f"{done['rows']} candidate sites stored in {info.name} ({done['inserted']} new, {done['updated']} "
                     f"updated); the area now has {sum(counts.values())}: "
                     + ", ".join(f"{k} {v}" for k, v in counts.items()))


@candidates_app.command("list")
def candidates_list(area: AreaOpt = None,
                    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False) -> None:
    """Stored candidate sites of an area by host type."""
    from yizhan.areas import resolve_area
    from yizhan.siting.candidates import candidate_counts

    with engine().connect() as conn:
        info = resolve_area(conn, area)
        show({"area": info.name, **candidate_counts(conn, info.id)}, as_json)


@app.command("recommend")
def recommend_cmd(
    k: Annotated[int | None, typer.Option("--k", help="How many new sites to choose (maximal covering)")] = None,
    target: Annotated[float | None, typer.Option(help="Covered share to reach with the fewest sites, e.g. 0.95")]
    = None,
    evaluate: Annotated[Path | None, typer.Option(help="Evaluate these proposed sites (CSV/XLSX/GeoJSON: id, "
                                                       "name, lon, lat) instead of choosing")] = None,
    area: AreaOpt = None,
    mode: Annotated[str, typer.Option(help="straight (line) or network (along the streets)")] = "straight",
    profile: Annotated[str, typer.Option(help="Street network for --mode network: walk or bike")] = "walk",
    radius: Annotated[float | None, typer.Option(help="Service radius in metres (default: YIZHAN_RADIUS_M)")] = None,
    candidates: Annotated[Path | None, typer.Option(help="Use the candidate sites of this file instead of the "
                                                         "area's stored ones")] = None,
    exclude_host: Annotated[list[str] | None, typer.Option("--exclude-host", help="Leave out a host type "
                                                           "(repeatable), e.g. bank")] = None,
    no_go: Annotated[Path | None, typer.Option(help="Polygons (GeoJSON/GPKG) where no station may go")] = None,
    coord: CoordOpt = "wgs84",
    time_limit: Annotated[float, typer.Option(help="Seconds for the exact solver (the local search always "
                                                   "answers)")] = 60.0,
    geojson: Annotated[Path | None, typer.Option(help="Also write the sites and the remaining gaps as GeoJSON")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    hours: Annotated[bool, typer.Option("--hours", help="Longer hours versus new sites: rank station extensions, "
                                        "round-the-clock stations and new sites by uncovered demand-hours removed "
                                        "(caps: --max-extend, --max-24h, --max-sites)")] = False,
    extend_to: Annotated[str, typer.Option(help="--hours: extend a station, on each day it opens, from its "
                                                "opening to this local time")] = "22:00",
    max_extend: Annotated[int | None, typer.Option(help="--hours: at most this many stations extended to "
                                                        "--extend-to")] = None,
    max_24h: Annotated[int | None, typer.Option("--max-24h", help="--hours: at most this many stations opened "
                                                                  "round the clock")] = None,
    max_sites: Annotated[int | None, typer.Option(help="--hours: at most this many new stations at candidate "
                                                       "sites")] = None,
    site_hours: Annotated[str, typer.Option(help="--hours: the hours a new station keeps (OSM or Chinese rule; "
                                                 "default round the clock)")] = "24/7",
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Find the reach in this many parts on Dask (a province): each part exact inside it, one model "
                    "solved on all (default: in parts along the streets when the area's street graphs per partition "
                    "were built, else whole)")] = None,
    parts_by: PartsByOpt = "tiles",
    scheduler: SchedulerOpt = None,
) -> None:
    """Where to open the next stations: the best K sites, the fewest sites for a target share, or how good a
    proposed list is; with --hours, longer hours of existing stations ranked beside new sites. Existing active
    stations stay; the run is stored."""
    from yizhan.errors import InvalidInput
    from yizhan.siting.candidates import candidates_from_file, no_go_from_file
    from yizhan.siting.recommend import recommend, recommend_hours

    caps = {"--max-extend": max_extend, "--max-24h": max_24h, "--max-sites": max_sites}
    if hours and (k is not None or target is not None or evaluate is not None):
        raise InvalidInput("--hours 自有上限，不与 --k/--target/--evaluate 同用 / --hours takes its own caps "
                           "(--max-extend, --max-24h, --max-sites): leave out --k, --target and --evaluate")
    if hours and ((partitions or 1) > 1 or scheduler is not None):
        raise InvalidInput("--hours 在一个进程中计算，不与 --partitions 同用 / --hours is computed in one process: "
                           "leave out --partitions and --scheduler")
    if not hours and any(v is not None for v in caps.values()):
        raise InvalidInput(f"{', '.join(n for n, v in caps.items() if v is not None)} 需要 --hours / needs --hours "
                           "(longer hours versus new sites)")
    with status("recommend") as say:
        if hours:
            result = recommend_hours(
                engine(), area=area, extend_to=extend_to, max_extend=max_extend or 0, max_24h=max_24h or 0,
                max_sites=max_sites or 0, site_hours=site_hours, mode=mode, profile=profile,
                radius_m=radius or get_settings().radius_m,
                candidates=candidates_from_file(candidates, coord=coord) if candidates is not None else None,
                exclude_host_types=exclude_host, no_go=no_go_from_file(no_go) if no_go is not None else None,
                time_limit_s=time_limit, progress=say, settings=get_settings())
        else:
            result = recommend(
                engine(), area=area, k=k, target=target, mode=mode, profile=profile,
                sites=candidates_from_file(evaluate, coord=coord) if evaluate is not None else None,
                radius_m=radius or get_settings().radius_m,
                candidates=candidates_from_file(candidates, coord=coord) if candidates is not None else None,
                exclude_host_types=exclude_host, no_go=no_go_from_file(no_go) if no_go is not None else None,
                time_limit_s=time_limit, progress=say, settings=get_settings(), parts=partitions,
                parts_by=parts_by, scheduler=scheduler)
    result.pop("params", None)
    if geojson is not None:
        from yizhan.siting.runs import recommendation_geojson

        with engine().connect() as conn:
            doc = recommendation_geojson(conn, result["run_id"])
        with replacing(geojson) as tmp:
            tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        common.err.print(f"sites and remaining gaps written to {geojson}")
    if as_json:
        show(result, True)
        return
    sites = result["sites"]
    actions = result.pop("actions", None)
    show({k: v for k, v in result.items() if k != "sites"}, False)
    if actions is not None:
        table = Table("rank", "措施 action", "id", "name", "hours added (local)", "demand-hours removed",
                      "share of uncovered removed")
        for x in actions:
            table.add_row(str(x["rank"]), f"{x['kind_zh']} {x['kind_en']}", x["id"], x["name"], x["hours_rule"],
                          f"{x['gain']:.1f}", f"{x['removed_share_after']:.1%}")
        common.out.print(table)
        return
    table = Table("rank", "id", "name", "host type", "lon", "lat", "newly covered", "covered share after")
    for s in sites:
        table.add_row(str(s["rank"]), s["id"], s["name"], s["host_type"], f"{s['lon']:.6f}", f"{s['lat']:.6f}",
                      f"{s['gain']:.1f}", f"{s['covered_share_after']:.1%}")
    common.out.print(table)


@app.command("map")
def map_cmd(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file (default OUT_DIR/map_run<ID>.html)")] = None,
    recommendation: Annotated[int | None, typer.Option(help="Map this recommendation run instead")] = None,
) -> None:
    """Write the planner's map of a run or a recommendation (opens offline; map tiles need the network)."""
    if recommendation is not None:
        from yizhan.maps.folium_map import write_map
        from yizhan.maps.recommend_map import map_for_recommendation
        from yizhan.siting.runs import load_recommendation

        rec = load_recommendation(engine(), recommendation)
        path = write_map(map_for_recommendation(rec, settings=get_settings()),
                         out_file or get_settings().out_dir / f"map_recommendation{recommendation}.html")
    else:
        path = _write_map(run, area, out_file)
    common.out.print(f"map written to {path}")


def _write_map(run: int | None, area: str | None, out_file: Path | None) -> Path:
    from yizhan.coverage.runs import load_run
    from yizhan.maps.folium_map import write_map
    from yizhan.maps.run_map import map_for_run

    data = load_run(engine(), run, area=area)
    path = out_file or get_settings().out_dir / f"map_run{data.summary['run_id']}.html"
    return write_map(map_for_run(data, settings=get_settings()), path)


@app.command("report")
def report(
    run: Annotated[int | None, typer.Option(help="Run id (default: the latest)")] = None,
    area: AreaOpt = None,
    fmt: Annotated[list[str] | None, typer.Option(
        "--format", "-f", help="csv, xlsx, geojson, gpkg, html, pdf or all; repeat the option or separate with "
                               "commas. Default: csv and geojson (as before)")] = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", "--out-dir", help="Folder for the files (named gaps_run<ID>.* and report_run<ID>.*), or the file "
                                   "itself when one format is asked and it ends in that extension (default: OUT_DIR)"
    )] = None,
    osm: Annotated[Path | None, typer.Option(
        help="OpenStreetMap extract (.osm/.osm.pbf) of the area: name the street next to each gap (default: the "
             "extract its street network was built from)")] = None,
    month: Annotated[str | None, typer.Option(
        help="Make the monthly return (月报) of this month, YYYY-MM (e.g. 2026-11): XLSX and PDF")] = None,
    union: Annotated[str | None, typer.Option(
        help="Return: the union filing it (remembered from the area's last return)")] = None,
    preparer: Annotated[str | None, typer.Option(help="Return: who prepared it (remembered)")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Return: who reviewed it (remembered)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Return: make the month's return again, replacing "
                                                            "the stored one")] = False,
    lang: Annotated[str, typer.Option(help="The PDF and HTML (and a return's PDF): zh (Chinese only) or zh-en "
                                           "(Chinese with English beside)")] = "zh-en",
) -> None:
    """Write the gap report of a run: CSV and XLSX for Excel, GeoJSON and GeoPackage for GIS, and a printable
    one-page summary (HTML, PDF) with a map, the headline figures, the top gaps and the units. With --month: the
    monthly return (月报) instead, stored and written as XLSX and PDF."""
    from yizhan.reports.run_report import load_report
    from yizhan.reports.summary import check_lang
    from yizhan.reports.writer import parse_formats, write_report

    if month is not None:
        _monthly_return(month, run=run, area=area, fmt=fmt, out_path=out_path, osm=osm, union=union,
                        preparer=preparer, reviewer=reviewer, replace=replace, lang=lang)
        return
    formats = parse_formats(fmt)
    check_lang(lang)
    streets = None
    if osm is not None:
        from yizhan.geo.osm import named_streets_from_extract

        streets = named_streets_from_extract(osm)
    data = load_report(engine(), run, area=area, streets=streets, streets_source=osm.name if osm else None,
                       timezone=get_settings().timezone, remembered_streets=True)
    paths = write_report(data, out_path or get_settings().out_dir, formats, lang=lang)
    for kind, p in paths.items():
        common.out.print(f"{kind}: {p}")


def _monthly_return(month: str, *, run: int | None, area: str | None, fmt: list[str] | None, out_path: Path | None,
                    osm: Path | None, union: str | None, preparer: str | None, reviewer: str | None, replace: bool,
                    lang: str) -> None:
    from yizhan.reports.summary import check_lang
    from yizhan.returns.files import parse_return_formats, write_return
    from yizhan.returns.store import Signers, make_return

    settings = get_settings()
    formats = parse_return_formats(fmt)
    check_lang(lang)
    streets = None
    if osm is not None:
        from yizhan.geo.osm import named_streets_from_extract

        streets = named_streets_from_extract(osm)
    with status(f"monthly return {month}"):
        ret = make_return(engine(), month, area=area, run_id=run, signers=Signers(union, preparer, reviewer),
                          replace=replace, streets=streets, streets_source=osm.name if osm else None,
                          settings=settings)
    paths = write_return(ret, out_path or settings.out_dir, formats, lang=lang)
    c = ret.changes
    common.out.print(f"月报 return {ret.period.label} of {ret.area.label}: "
                     + ("首份月报，无上月可比 first return, nothing earlier to compare with" if ret.previous is None
                        else f"开通 opened {len(c.opened)}, 关闭 closed {len(c.closed)}, 变更 changed {len(c.changed)} "
                             f"since {ret.previous.period.label}"))
    for zh, en in ret.notes():
        common.err.print(f"注意 / note: {zh} / {en}", markup=False)
    for kind, p in paths.items():
        common.out.print(f"{kind}: {p}")
