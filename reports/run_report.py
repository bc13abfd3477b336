"""Gap reports of a stored run: CSV and XLSX (Excel, Chinese headers), GeoJSON (RFC 7946) and GeoPackage (GIS),
and the tables and figures of the printable one-page summary (HTML, PDF: ``summary`` and ``pdf``; all formats
are written by ``writer``).

Every format is built from the same tables (:func:`gaps_table`, :func:`units_report_table`,
:func:`stations_report_table`) and headline figures (:func:`headline`), all read from the stored run, so the
figures agree across formats. Coordinates are WGS 84 lon/lat (EPSG:4326); distances are metres.

No text of a station, unit or area becomes a live formula: CSV text cells that a spreadsheet would run get a
leading apostrophe (OWASP), XLSX text cells are text cells (``stations.cells``). The workbook is set up for printing
(``reports.workbook``: A4, fit to width, header rows repeated, totals rows); its times are Excel dates in local time.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import Engine, text

from yizhan.areas import remembered_extract, sector_units, units_frame
from yizhan.coverage.runs import RunData, load_run, units_table
from yizhan.reports.by_hour import (
    CROWDED_COLUMNS,
    CROWDED_FORMATS,
    CROWDED_SHEET,
    HOUR_SHEET,
    crowded_table,
    hour_figures,
    share_table,
    worst_hours,
    write_hour_sheet,
)
from yizhan.reports.workbook import (
    DATE_FORMAT,
    TOTAL_LABEL,
    display_width,
    local_naive,
    plain,
    workbook_bytes,
    write_table,
)
from yizhan.settings import DEFAULT_TIMEZONE
from yizhan.stations import vocab
from yizhan.stations.cells import csv_text

FORMATS = ("csv", "xlsx", "geojson", "gpkg", "html", "pdf")
"""Every report format, in the order they are written."""
DEFAULT_FORMATS = ("csv", "geojson")
"""What ``yizhan report`` writes when no format is given (as before the other formats existed)."""
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
STREET_NEAR_M = 500.0
"""A gap is described by a named street only when one passes within this many metres of its interior point."""
OSM_ATTRIBUTION = "© OpenStreetMap contributors"

GAP_COLUMNS = {
    "rank": "排名 rank",
    "demand": "未覆盖需求 unmet_demand",
    "area_km2": "面积(平方公里) area_km2",
    "cells": "网格数 cells",
    "lon": "中心经度 lon",
    "lat": "中心纬度 lat",
    "nearest_station_id": "最近驿站编号 nearest_station_id",
    "nearest_station": "最近驿站 nearest_station",
    "nearest_distance_m": "最近距离(米) nearest_distance_m",
    "straight_distance_m": "直线距离(米) straight_distance_m",
    "nearest_station_address": "最近驿站地址 nearest_station_address",
    "location": "位置 location",
    "street": "附近道路 street",
    "street_distance_m": "距道路(米) street_distance_m",
}
UNIT_COLUMNS = {
    "name": "乡镇街道/片区 unit",
    "stations": "驿站数 stations",
    "demand": "需求 demand",
    "demand_covered": "已覆盖需求 covered_demand",
    "demand_unmet": "未覆盖需求 unmet_demand",
    "covered_share": "覆盖率 covered_share",
    "demand_covered_straight": "直线已覆盖需求 covered_demand_straight",
    "covered_share_straight": "直线覆盖率 covered_share_straight",
}
STATION_COLUMNS = {
    "id": "驿站编号 id",
    "name": "名称 name",
    "kind": "类型 kind",
    "status": "状态 status",
    "host": "依托单位 host",
    "host_name": "承办单位 host name",
    "phone": "联系电话 phone",
    "address": "地址 address",
    "township": "乡镇街道 township",
    "lon": "经度 lon",
    "lat": "纬度 lat",
    "seats": "座位 seats",
    "amenities": "服务设施 amenities",
    "hours": "开放时间 hours",
    "demand_served": "服务需求 demand_served",
}
SUMMARY_COLUMNS = {"item": "项目 item", "value": "数值 value", "unit": "单位 unit"}
SHEETS = {"summary": "概况 summary", "gaps": "缺口 gaps", "units": "乡镇街道 units", "stations": "驿站 stations"}
# Excel number formats by column key; the cells hold full values, the format only changes the display
_NUMBER_FORMATS = {
    "rank": "0", "cells": "0", "stations": "0", "seats": "0",
    "demand": "#,##0.0", "demand_covered": "#,##0.0", "demand_unmet": "#,##0.0", "demand_covered_straight": "#,##0.0",
    "demand_served": "#,##0.0",
    "area_km2": "0.000", "lon": "0.000000", "lat": "0.000000",
    "nearest_distance_m": "#,##0", "straight_distance_m": "#,##0", "street_distance_m": "#,##0",
    "covered_share": "0.0%", "covered_share_straight": "0.0%",
}


@dataclass
class RunReport:
    """A stored run with what its reports need beyond :class:`RunData`.

    ``units`` is :func:`units_table` with the units' polygons (None where unknown); ``served`` the covered demand
    and cells per station id (database key); ``streets`` optional named streets (EPSG:4326) to describe where
    gaps are.
    """

    run: RunData
    units: gpd.GeoDataFrame = field(default_factory=lambda: gpd.GeoDataFrame(geometry=[], crs=4326))
    served: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"station_id": [], "demand": [], "cells": []}))
    area_source: str | None = None
    stations_changed: int = 0
    streets: gpd.GeoDataFrame | None = None
    streets_source: str | None = None
    timezone: str = DEFAULT_TIMEZONE  # the IANA zone the printed report's times are shown in

    @property
    def run_id(self) -> int:
        """The run's id."""
        return int(self.run.summary["run_id"])

    @property
    def network(self) -> bool:
        """Whether the run measured along a street network."""
        return self.run.summary["mode"] == "network"

    @property
    def uses_osm(self) -> bool:
        """Whether the report shows OpenStreetMap-derived data (area, street network or street names)."""
        src = (self.area_source or "").lower()
        return (self.network or self.streets is not None or "openstreetmap" in src
                or src.endswith((".osm", ".pbf", ".osm.bz2")))


def load_report(engine: Engine, run_id: int | None = None, *, area: str | None = None,
                streets: gpd.GeoDataFrame | None = None, streets_source: str | None = None,
                timezone: str = DEFAULT_TIMEZONE, remembered_streets: bool = False) -> RunReport:
    """Load run ``run_id`` (default: the latest, of ``area`` when given) with its units and served demand.

    Parameters
    ----------
    engine
        The database.
    run_id, area
        Which run.
    streets, streets_source
        Optional named streets (``name``, LineString geometry, any CRS), e.g. from
        :func:`yizhan.geo.osm.named_streets_from_extract`, and where they come from (shown in the report).
    timezone
        IANA time zone of the times printed in the report (``Settings.timezone``).
    remembered_streets
        Without ``streets``: read the named streets from the extract the area's street network was built from
        (``areas.remembered_extract``), when one was recorded and the file is still there.
    """
    run = load_run(engine, run_id, area=area)
    rid = int(run.summary["run_id"])
    with engine.connect() as conn:
        units = units_table(conn, rid)
        shapes = units_frame(conn, run.area.id)
        source = conn.execute(text("SELECT source FROM areas WHERE id = :a"), {"a": run.area.id}).scalar()
        # a cell's covered orders (its points' when measured on points) go to the station nearest its centre
        served = pd.read_sql(text("SELECT nearest_station_id AS station_id, sum(coalesce(covered_weight, "
                                  "CASE WHEN covered THEN weight ELSE 0 END)) AS demand, "
                                  "count(*) FILTER (WHERE covered) AS cells FROM run_cells_in_layer "
                                  "WHERE run_id = :r AND nearest_station_id IS NOT NULL "
                                  "AND (covered OR covered_weight > 0) GROUP BY nearest_station_id"), conn,
                             params={"r": rid})
        changed = conn.execute(text("SELECT count(*) FROM stations WHERE area_id = :a AND updated_at > "
                                    "(SELECT created_at FROM coverage_runs WHERE id = :r)"),
                               {"a": run.area.id, "r": rid}).scalar_one()
        extract = remembered_extract(conn, run.area.id) if streets is None and remembered_streets else None
    if shapes.empty and run.area.boundary is not None:
        shapes = sector_units(run.area.boundary)  # what run_coverage used for an area without units
    geo = dict(zip(shapes["name"], shapes.geometry, strict=True))
    units_gdf = gpd.GeoDataFrame(units, geometry=[_multi(geo.get(n)) for n in units["name"]], crs=4326)
    if extract is not None and extract.is_file():
        from yizhan.geo.osm import named_streets_from_extract

        streets, streets_source = named_streets_from_extract(extract), extract.name
    if streets is not None:
        streets = streets[streets["name"].fillna("").str.len() > 0]
    return RunReport(run, units_gdf, served, source, int(changed), streets, streets_source, timezone)


def _multi(g: Any) -> MultiPolygon | None:
    if g is None or g.is_empty:
        return None
    if isinstance(g, Polygon):
        return MultiPolygon([g])
    if isinstance(g, MultiPolygon):
        return g
    parts = [p for p in shapely.get_parts(g) if isinstance(p, Polygon)]
    return MultiPolygon(parts) if parts else None


def as_report(run: RunData | RunReport) -> RunReport:
    return run if isinstance(run, RunReport) else RunReport(run)


# -- tables --------------------------------------------------------------------------------------------------------
def _nearest_streets(report: RunReport) -> tuple[list[str | None], np.ndarray]:
    """Name of and distance (m) to the nearest named street within ``STREET_NEAR_M`` of each gap's point."""
    g = report.run.gaps
    names: list[str | None] = [None] * len(g)
    dist = np.full(len(g), np.nan)
    streets = report.streets
    if streets is None or streets.empty or not len(g):
        return names, dist
    crs = report.run.area.crs_epsg
    lines = streets.to_crs(crs).geometry.to_numpy()
    pts = gpd.GeoSeries(gpd.points_from_xy(g["lon"], g["lat"]), crs=4326).to_crs(crs).to_numpy()
    pt_i, line_i = shapely.STRtree(lines).query_nearest(pts, max_distance=STREET_NEAR_M, all_matches=False)
    for p, li in zip(pt_i, line_i, strict=True):
        names[p] = str(streets["name"].iloc[li])
        dist[p] = float(shapely.distance(pts[p], lines[li]))
    return names, dist


def gaps_table(run: RunData | RunReport) -> pd.DataFrame:
    """One row per gap, by rank.

    ``lon``/``lat`` (WGS 84) is a point inside the gap; distances are metres from the gap's closest cell to the
    nearest station, in the run's metric (network or straight) and in a straight line (NaN: no station within
    the network search limit). ``location`` names the nearest street when named streets were given (``street``,
    ``street_distance_m`` then appear too), else it is the point's "lon, lat".
    """
    report = as_report(run)
    g = report.run.gaps
    st = report.run.stations
    address = dict(zip(st["external_id"], st["address"], strict=True))
    out = pd.DataFrame({
        "rank": g["rank"].astype(int),
        "demand": g["demand"].round(3),
        "area_km2": (g["area_m2"] / 1e6).round(4),
        "cells": g["cells"].astype(int),
        "lon": g["lon"].round(6),
        "lat": g["lat"].round(6),
        "nearest_station_id": g["nearest_station_id"],
        "nearest_station": g["nearest_station"],
        "nearest_distance_m": g["nearest_distance_m"].round(1),
        "straight_distance_m": g["straight_distance_m"].round(1),
        "nearest_station_address": [address.get(s) if isinstance(s, str) else None for s in g["nearest_station_id"]],
    })
    lonlat = [f"{x:.6f}, {y:.6f}" for x, y in zip(out["lon"], out["lat"], strict=True)]
    if report.streets is None:
        out["location"] = lonlat
        return out
    names, dist = _nearest_streets(report)
    out["location"] = [f"{n}附近 near {n}" if n else ll for n, ll in zip(names, lonlat, strict=True)]
    out["street"] = names
    out["street_distance_m"] = np.round(dist, 0)
    return out


def units_report_table(report: RunReport) -> pd.DataFrame:
    """Per unit (township, sector; the unassigned rest last): stations, demand, covered and unmet demand and the
    covered share (network runs add the straight-line figures)."""
    u = report.units
    out = pd.DataFrame({
        "name": u["name"].astype(str),
        "stations": u["stations"].astype(int),
        "demand": u["demand"].round(3),
        "demand_covered": u["demand_covered"].round(3),
        "demand_unmet": (u["demand"] - u["demand_covered"]).round(3),
        "covered_share": u["covered_share"].round(6),
    }) if len(u) else pd.DataFrame({k: [] for k in list(UNIT_COLUMNS)[:6]})
    if report.network:
        out["demand_covered_straight"] = (u["demand_covered_straight"].round(3) if len(u) else [])
        out["covered_share_straight"] = (u["covered_share_straight"].round(6) if len(u) else [])
    return out


def stations_report_table(report: RunReport) -> pd.DataFrame:
    """The area's stations as registered now (Chinese labels for kind, status, host type and amenities; the hours
    as written or said in Chinese: :func:`hours_label`), with the demand the run counted as covered by each (its
    cells' nearest station; 0 for a station nearest to no covered cell)."""
    st = report.run.stations
    served = dict(zip(report.served["station_id"].astype(int), report.served["demand"], strict=True))
    return pd.DataFrame({
        "id": st["external_id"],
        "name": st["name"],
        "kind": [vocab.label("kind", k) for k in st["kind"]],
        "status": [vocab.label("status", s) for s in st["status"]],
        "host": [vocab.label("host", h) if isinstance(h, str) else None for h in st["host"]],
        "host_name": st.get("host_name"),
        "phone": st.get("phone"),
        "address": st["address"],
        "township": st["township"],
        "lon": st.geometry.x.round(6),
        "lat": st.geometry.y.round(6),
        "seats": st["seats"],
        "amenities": [amenity_labels(a) for a in st["amenities"]],
        "hours": hours_text(st),
        "demand_served": [round(float(served.get(int(i), 0.0)), 3) for i in st["station_id"]],
    })


def amenity_labels(codes: Any) -> str:
    """A station's amenities as their Chinese labels, separated by "、" (饮水、充电); empty when it has none."""
    return "、".join(vocab.label("amenity", str(c)) for c in (codes if isinstance(codes, (list, tuple)) else []))


def hours_label(rule: Any, written: Any = None) -> str | None:
    """A station's opening hours for a printed sheet: as written in the registry (``opening_hours_text``, e.g.
    周一至周五 9点-18点) where it kept that, else the OSM rule said in Chinese (``Mo-Fr 09:00-18:00`` -> 周一至周五
    09:00–18:00, ``stations.hours_zh``); None when unknown."""
    from yizhan.stations.hours_zh import hours_zh

    if isinstance(written, str) and written.strip():
        return written.strip()
    if isinstance(rule, str) and rule.strip():
        return hours_zh(rule)
    return None


def hours_text(stations: pd.DataFrame) -> list[str | None]:
    """:func:`hours_label` of each station of a frame with ``opening_hours`` (and ``opening_hours_text``)."""
    none = pd.Series([None] * len(stations), index=stations.index)
    rule = stations.get("opening_hours", none)
    written = stations.get("opening_hours_text", none)
    return [hours_label(r, w) for r, w in zip(rule, written, strict=True)]


def headline(run: RunData | RunReport) -> dict[str, Any]:
    """The run's headline figures (from the stored summary) plus the unmet demand and the gaps' demand."""
    report = as_report(run)
    s = report.run.summary
    p = report.run.params
    out: dict[str, Any] = {k: s[k] for k in ("run_id", "area", "mode", "radius_m", "stations", "cells", "demand_total",
                             "demand_covered", "covered_share", "covered_area_km2", "gaps", "created_at")}
    out["demand_unmet"] = round(s["demand_total"] - s["demand_covered"], 3)
    out["gap_demand"] = round(float(report.run.gaps["demand"].sum()), 3)
    out["measured"] = s.get("measured", "cells")
    out["cell_size_m"] = p.get("cell_size_m")
    out["distance"] = p.get("distance")
    if report.network:
        out["profile"] = s.get("profile")
        out["covered_share_straight"] = s.get("covered_share_straight")
        out["search_limit_m"] = p.get("search_limit_m")
        out["stations_off_network"] = p.get("stations_off_network", 0)
    return out


# -- CSV and GeoJSON -----------------------------------------------------------------------------------------------
def gaps_csv(run: RunData | RunReport) -> str:
    """The gap table as CSV text with bilingual headers, preceded by no BOM (add one when writing a file); text
    cells beginning with a formula character get a leading apostrophe (``stations.cells.csv_text``)."""
    return csv_text(gaps_table(run).rename(columns=GAP_COLUMNS))


def gaps_geojson(run: RunData | RunReport) -> dict[str, Any]:
    """Gap polygons as an RFC 7946 FeatureCollection (WGS 84 lon/lat, exterior rings counter-clockwise) with the
    run's summary as the foreign member ``run``."""
    report = as_report(run)
    table = gaps_table(report)
    geoms = shapely.orient_polygons(report.run.gaps.geometry.to_numpy(), exterior_cw=False)
    features = []
    for rec, geom in zip(table.to_dict("records"), geoms, strict=True):
        props = {k: plain(v) for k, v in rec.items()}
        features.append({"type": "Feature", "geometry": geom.__geo_interface__, "properties": props})
    return {"type": "FeatureCollection", "run": report.run.summary, "features": features}


# -- XLSX ----------------------------------------------------------------------------------------------------------
def summary_rows(report: RunReport) -> list[tuple[str, Any, str]]:
    """Headline figures as (label, value, unit) rows for the XLSX summary sheet."""
    h = headline(report)
    mode = "沿路网 along the street network" if report.network else "直线距离 straight line"
    if report.network:
        mode += f" ({h['profile']})"
    rows: list[tuple[str, Any, str]] = [
        ("运行编号 run id", h["run_id"], ""),
        ("研究区 area", report.run.area.label, ""),
        ("运行时间 created at", local_naive(h["created_at"], report.timezone), report.timezone),
        ("距离算法 mode", mode, ""),
        ("服务半径 radius", h["radius_m"], "米 m"),
        ("运营驿站 active stations", h["stations"], "个"),
        ("需求网格 demand cells", h["cells"], "个"),
        ("总需求 total demand", h["demand_total"], ""),
        ("已覆盖需求 covered demand", h["demand_covered"], ""),
        ("未覆盖需求 unmet demand", h["demand_unmet"], ""),
    ]
    if h["measured"] == "points" and abs(h["gap_demand"] - h["demand_unmet"]) > 1e-3:  # some in mostly covered cells
        rows.append(("其中在缺口内 of it in gaps", h["gap_demand"], "（其余在大部分已覆盖的网格中 the rest in mostly "
                                                               "covered cells）"))
    rows += [
        ("覆盖率 covered share", h["covered_share"], ""),
    ]
    if report.network:
        rows.append(("直线覆盖率 straight-line covered share", h["covered_share_straight"], ""))
    rows += [("覆盖面积 covered area", h["covered_area_km2"], "平方公里 km²"),
             ("覆盖缺口 gaps", h["gaps"], "个")]
    for zh, en, value, unit in hour_figures(report.run):
        rows.append((f"{zh} {en}", value, "" if unit == "%" else unit))
    worst = worst_hours(report.run)
    if worst:
        rows.append(("最差时段 worst hours", "；".join(f"{w['label']} {w['share']:.1%}" for w in worst), ""))
    rows.append(("生成时间 made at", local_naive(datetime.now().astimezone(), report.timezone), report.timezone))
    return rows


_SUMMARY_FORMATS = {"服务半径 radius": "#,##0", "总需求 total demand": "#,##0.0",
                    "已覆盖需求 covered demand": "#,##0.0", "未覆盖需求 unmet demand": "#,##0.0",
                    "覆盖率 covered share": "0.0%", "直线覆盖率 straight-line covered share": "0.0%",
                    "覆盖面积 covered area": "0.000", "运行时间 created at": DATE_FORMAT,
                    "生成时间 made at": DATE_FORMAT,
                    "全周分时覆盖率 covered share of the week's demand-hours": "0.0%",
                    "未覆盖需求小时 uncovered demand-hours": "#,##0.0", "夜间缺口需求 night-gap demand": "#,##0.0"}


def gaps_totals(table: pd.DataFrame) -> dict[str, Any]:
    """The totals row of the gap table: how many gaps, their unmet demand, area (km²) and cells."""
    return {"rank": f"{TOTAL_LABEL} ({len(table)})", "demand": round(float(table["demand"].sum()), 3),
            "area_km2": round(float(table["area_km2"].sum()), 4), "cells": int(table["cells"].sum())}


def units_totals(table: pd.DataFrame) -> dict[str, Any]:
    """The totals row of the units table: sums, and the covered shares of the sums (not a mean of shares)."""
    demand = float(table["demand"].sum())
    out: dict[str, Any] = {"stations": int(table["stations"].sum()), "demand": round(demand, 3),
                           "demand_covered": round(float(table["demand_covered"].sum()), 3),
                           "demand_unmet": round(float(table["demand_unmet"].sum()), 3)}
    out["covered_share"] = round(out["demand_covered"] / demand, 6) if demand > 0 else None
    if "demand_covered_straight" in table:
        out["demand_covered_straight"] = round(float(table["demand_covered_straight"].sum()), 3)
        out["covered_share_straight"] = round(out["demand_covered_straight"] / demand, 6) if demand > 0 else None
    return out


def stations_totals(table: pd.DataFrame) -> dict[str, Any]:
    """The totals row of the stations table: how many (how many active), their seats and the demand they serve."""
    active = int((table["status"] == vocab.label("status", "active")).sum())
    return {"name": f"{len(table)} 个驿站 stations, 运营 {active} active",
            "seats": int(pd.to_numeric(table["seats"], errors="coerce").fillna(0).sum()),
            "demand_served": round(float(table["demand_served"].sum()), 3)}


def _summary_sheet(ws: Any, rows: list[tuple[str, Any, str]], formats: dict[str, str]) -> None:
    from openpyxl.styles import Font, PatternFill

    ws.append(list(SUMMARY_COLUMNS.values()))
    for label, value, unit in rows:
        ws.append([label, plain(value), unit])
        fmt = formats.get(label) or (DATE_FORMAT if isinstance(value, datetime) else None)
        if fmt:
            ws.cell(ws.max_row, 2).number_format = fmt
    for cell in ws[1]:
        cell.font, cell.fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = max([34] + [display_width(v) + 2 for _, v, _ in rows if isinstance(v, str)])
    ws.column_dimensions["C"].width = 16
    ws.freeze_panes = "A2"


def gaps_xlsx(report: RunReport) -> bytes:
    """The report as an Excel workbook: sheets 概况 summary, 缺口 gaps, 乡镇街道 units, 驿站 stations; Chinese
    (and English) headers, frozen header row, number formats (shares as %, distances without decimals), a totals
    row under each table, times as Excel dates in the report's time zone, the stations' amenities (Chinese
    labels) and hours. A run by hour of the week adds the sheet 分时覆盖率 by hour (the 24 x 7 covered share,
    ``by_hour.write_hour_sheet``) and its figures to the summary; a run with capacity the sheet 拥挤驿站 crowded.
    Every sheet prints on A4, fit to the page width, its header row on every page. Every text is a text cell,
    never a formula."""
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

    wb = Workbook()
    ws = cast(Worksheet, wb.active)  # a new workbook's one sheet
    ws.title = SHEETS["summary"]
    _summary_sheet(ws, summary_rows(report), _SUMMARY_FORMATS)
    gaps, units, stations = gaps_table(report), units_report_table(report), stations_report_table(report)
    write_table(wb.create_sheet(SHEETS["gaps"]), gaps, GAP_COLUMNS, _NUMBER_FORMATS, totals=gaps_totals(gaps))
    write_table(wb.create_sheet(SHEETS["units"]), units, UNIT_COLUMNS, _NUMBER_FORMATS, totals=units_totals(units))
    write_table(wb.create_sheet(SHEETS["stations"]), stations, STATION_COLUMNS, _NUMBER_FORMATS,
                totals=stations_totals(stations))
    shares = share_table(report.run)
    if shares is not None:
        write_hour_sheet(wb.create_sheet(HOUR_SHEET), shares)
    crowded = crowded_table(report.run)
    if crowded is not None:
        write_table(wb.create_sheet(CROWDED_SHEET), crowded, CROWDED_COLUMNS, CROWDED_FORMATS)
    title = f"驿站覆盖缺口报告 gap report · {report.run.area.label} · 运行 run #{report.run_id}"
    return workbook_bytes(wb, title=title, portrait=SHEETS["summary"])


# -- GeoPackage ----------------------------------------------------------------------------------------------------
GPKG_LAYERS = ("gaps", "units", "stations", "study_area", "service_area")


def gaps_gpkg(report: RunReport) -> bytes:
    """The report as a GeoPackage (EPSG:4326): layers ``gaps`` and ``units`` (MultiPolygon), ``stations`` (Point),
    ``study_area`` and ``service_area`` (MultiPolygon; empty when unknown); a run with capacity adds
    ``crowded_stations`` (Point, ``by_hour.crowded_table``), a run by hour of the week ``night_gaps`` (its
    night-gap cells, MultiPolygon, with each cell's demand over the week). Field names are the English keys."""
    run = report.run
    gaps = gpd.GeoDataFrame(gaps_table(report), geometry=[_multi(g) for g in run.gaps.geometry], crs=4326)
    units = gpd.GeoDataFrame(units_report_table(report), geometry=list(report.units.geometry), crs=4326)
    st = stations_report_table(report).assign(seats=lambda d: d["seats"].astype("float64"))
    stations = gpd.GeoDataFrame(st, geometry=list(run.stations.geometry), crs=4326)
    area = gpd.GeoDataFrame({"name": [run.area.name]} if run.area.boundary is not None else {"name": []},
                            geometry=[_multi(run.area.boundary)] if run.area.boundary is not None else [], crs=4326)
    h = headline(report)
    service = gpd.GeoDataFrame(
        {"run_id": [h["run_id"]], "mode": [h["mode"]], "radius_m": [h["radius_m"]],
         "covered_share": [h["covered_share"]]} if run.covered_geom is not None else
        {"run_id": [], "mode": [], "radius_m": [], "covered_share": []},
        geometry=[_multi(run.covered_geom)] if run.covered_geom is not None else [], crs=4326)
    layers = {"gaps": (gaps, "MultiPolygon"), "units": (units, "MultiPolygon"), "stations": (stations, "Point"),
              "study_area": (area, "MultiPolygon"), "service_area": (service, "MultiPolygon")}
    crowded = crowded_table(report.run)
    if crowded is not None:
        layers["crowded_stations"] = (gpd.GeoDataFrame(
            crowded, geometry=gpd.points_from_xy(crowded["lon"], crowded["lat"]), crs=4326), "Point")
    if "night_gap" in run.cells and run.hours is not None:
        night = run.cells[run.cells["night_gap"].fillna(False).astype(bool).to_numpy()]
        layers["night_gaps"] = (gpd.GeoDataFrame(
            {"cell_key": night["cell_key"].astype(str).to_numpy(),
             "cell_demand": night["weight"].astype(float).to_numpy()},
            geometry=[_multi(g) for g in night.geometry], crs=4326), "MultiPolygon")
    with tempfile.TemporaryDirectory(prefix="yizhan-gpkg-") as tmp:
        path = Path(tmp) / f"gaps_run{report.run_id}.gpkg"
        for name, (gdf, gtype) in layers.items():
            gdf.to_file(path, layer=name, driver="GPKG", geometry_type=gtype, engine="pyogrio")
        return path.read_bytes()
