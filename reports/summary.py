"""The printable one-page summary of a run: its content (shared by the HTML and the PDF, so both say the same) and
the HTML page (self-contained: inline CSS and the map as an embedded PNG)."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from yizhan.coverage.runs import UNASSIGNED
from yizhan.errors import InvalidInput
from yizhan.reports.by_hour import CROWDED_SHOWN, crowded_table, hour_figures, worst_hours
from yizhan.reports.drawing import map_png
from yizhan.reports.hour_chart import share_grid_png
from yizhan.reports.run_report import (
    OSM_ATTRIBUTION,
    STREET_NEAR_M,
    RunReport,
    gaps_table,
    headline,
    units_report_table,
)

TOP_GAPS = 10
"""Gaps listed on the page (the full list is in the CSV/XLSX/GeoJSON/GPKG)."""
MAX_UNITS = 12
"""Units listed on the page before the rest is summed up in one line."""
GAP_TEXT_COLUMNS = frozenset({3, 4})
"""Columns of the gap table holding text (location, station); the others are numbers, aligned right."""
PROFILE_LABELS = {"walk": "步行 walk", "bike": "骑行 bike"}
LANGS = ("zh", "zh-en")
"""Languages of a printed page: ``zh`` Chinese only (asked with ``--lang zh``); ``zh-en`` Chinese with English
beside, the default, as every message of the project is."""


def check_lang(lang: str) -> str:
    """``lang`` if it is one of :data:`LANGS`; InvalidInput naming it otherwise."""
    if lang not in LANGS:
        raise InvalidInput(f"--lang {lang!r}: 应为 zh 或 zh-en / expected zh (Chinese only) or zh-en (Chinese with "
                           "English beside)")
    return lang


def say(zh: str, en: str, lang: str) -> str:
    """``zh`` alone in ``lang`` ``zh``, else ``zh`` with ``en`` beside."""
    return zh if lang == "zh" else f"{zh} {en}"


def zh_part(label: str, lang: str) -> str:
    """A "中文 English" label in ``lang``: its Chinese part alone for ``zh``."""
    return label.split(" ", 1)[0] if lang == "zh" else label


def pct(x: float | None) -> str:
    """A share 0–1 as a percentage with one decimal ("45.6%")."""
    return "—" if x is None or not math.isfinite(x) else f"{x:.1%}"


def num(x: float | None, decimals: int = 1) -> str:
    """A number with thousands separators ("1,234.5")."""
    return "—" if x is None or not math.isfinite(x) else f"{x:,.{decimals}f}"


def metres(x: float | None) -> str:
    """A distance in whole metres ("1,234 米")."""
    return "—" if x is None or not math.isfinite(x) else f"{x:,.0f} 米"


def local_time(t: datetime, tz: str) -> str:
    """``t`` in the IANA time zone ``tz``, e.g. "2025-06-04 12:00 UTC+08:00"."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    lt = t.astimezone(zone)
    off = lt.strftime("%z")
    return f"{lt:%Y-%m-%d %H:%M} UTC{off[:3]}:{off[3:]}" if off else f"{lt:%Y-%m-%d %H:%M}"


def _cut(s: Any, n: int) -> str:
    t = "" if s is None or (isinstance(s, float) and math.isnan(s)) else str(s)
    return t if len(t) <= n else t[: n - 1] + "…"


@dataclass
class SummaryPage:
    """What the one-page summary shows, as display strings."""

    title: str
    subtitle: str
    figures: list[tuple[str, str, str]]  # (Chinese label, English label, value)
    gap_header: list[str]
    gap_rows: list[list[str]]
    gaps_more: int
    unit_header: list[str]
    unit_rows: list[list[str]]
    unit_total: list[str]
    units_more: int
    notes: list[str] = field(default_factory=list)
    attribution: str | None = None
    lang: str = "zh-en"
    hours: bool = False
    """The run has figures by hour of the week: the 24 x 7 picture and the figures below are shown."""
    hour_figures: list[tuple[str, str, str]] = field(default_factory=list)  # (Chinese label, English label, value)
    worst_header: list[str] = field(default_factory=list)
    worst_rows: list[list[str]] = field(default_factory=list)
    crowded_header: list[str] = field(default_factory=list)
    crowded_rows: list[list[str]] = field(default_factory=list)
    crowded_more: int = 0
    capacity: bool = False
    """The run has stations' loads: the crowded stations are listed (or said to be none)."""

    def say(self, zh: str, en: str) -> str:
        """``zh`` in the page's language (with ``en`` beside unless Chinese only)."""
        return say(zh, en, self.lang)


def summary_page(report: RunReport, *, top: int = TOP_GAPS, max_units: int = MAX_UNITS,
                 now: datetime | None = None, lang: str = "zh-en") -> SummaryPage:
    """The summary's content from the stored run (:func:`headline`, :func:`gaps_table`, :func:`units_report_table`),
    in ``lang`` (:data:`LANGS`)."""
    check_lang(lang)
    h = headline(report)
    net = report.network
    if net:
        profile = zh_part(PROFILE_LABELS.get(h["profile"], h["profile"]), lang)
        mode = say(f"沿路网（{profile}）", "along the streets", lang)
    else:
        mode = say("直线距离", "straight line", lang)
    figures = [
        ("覆盖率", "covered share", pct(h["covered_share"])),
        ("已覆盖 / 总需求", "covered / total demand", f"{num(h['demand_covered'])} / {num(h['demand_total'])}"),
        ("未覆盖需求", "unmet demand", num(h["demand_unmet"])),
        *([("其中在缺口内", "of it in gaps", num(h["gap_demand"]))]
          if h["measured"] == "points" and abs(h["gap_demand"] - h["demand_unmet"]) > 1e-3 else []),
        ("覆盖缺口", "gaps", f"{h['gaps']:,}"),
        ("运营驿站", "active stations", f"{h['stations']:,}"),
        ("服务半径", "radius", metres(h["radius_m"])),
        ("距离算法", "mode", mode),
    ]
    if net:
        figures.insert(1, ("直线覆盖率", "straight-line share", pct(h["covered_share_straight"])))
    figures.append(("覆盖面积", "covered area", f"{num(h['covered_area_km2'], 2)} 平方公里"))

    g = gaps_table(report)
    gap_header = ["排名", "未覆盖需求", "面积(km²)", say("位置", "location", lang), "最近驿站", "距离"]
    if net:
        gap_header.append("直线距离")
    limit = h.get("search_limit_m")
    gap_rows = []
    for r in g.head(top).itertuples(index=False):
        far = f"> {metres(limit)}" if net and limit else "—"
        street = getattr(r, "street", None)
        where = f"{street}附近" if lang == "zh" and isinstance(street, str) and street else r.location
        row = [str(r.rank), num(r.demand), num(r.area_km2, 3), _cut(where, 30),
               _cut(r.nearest_station, 16) if isinstance(r.nearest_station, str) else "—",
               metres(r.nearest_distance_m) if np.isfinite(r.nearest_distance_m) else far]
        if net:
            row.append(metres(r.straight_distance_m))
        gap_rows.append(row)

    u = units_report_table(report)
    unit_header = [say("乡镇街道/片区", "unit", lang), "驿站", "需求", "已覆盖", "未覆盖", "覆盖率"]
    if net:
        unit_header.append("直线覆盖率")

    def unit_row(name: str, stations: int, demand: float, covered: float, straight: float | None) -> list[str]:
        share = covered / demand if demand > 0 else 0.0
        row = [_cut(name, 22), f"{stations:,}", num(demand), num(covered), num(demand - covered), pct(share)]
        if net:
            row.append(pct((straight or 0.0) / demand if demand > 0 else 0.0))
        return row

    straight_col = u["demand_covered_straight"] if net else u["demand_covered"]
    rows = [unit_row(r.name, r.stations, r.demand, r.demand_covered, s)
            for r, s in zip(u.itertuples(index=False), straight_col, strict=True)]
    more = max(0, len(rows) - max_units)
    if more:
        rest = u.iloc[max_units - 1:]
        others = unit_row(say(f"其余 {len(rest)} 个单元", "others", lang), int(rest["stations"].sum()),
                          float(rest["demand"].sum()), float(rest["demand_covered"].sum()),
                          float(straight_col.iloc[max_units - 1:].sum()))
        rows = [*rows[: max_units - 1], others]
    total = unit_row(say("合计", "total", lang), int(u["stations"].sum()) if len(u) else h["stations"],
                     float(h["demand_total"]), float(h["demand_covered"]),
                     float(h["covered_share_straight"] or 0) * float(h["demand_total"]) if net else None)

    if lang == "zh":
        notes = [f"距离：沿{profile}路网，门到门（米）" if net else "距离：直线（米）"]
    else:
        notes = [f"距离：{h['distance']}" if h.get("distance") else ""]
    if report.streets is not None:
        notes.append(f"位置：{STREET_NEAR_M:g} 米内最近的有名道路（{report.streets_source or 'OSM'}），"
                     "否则为缺口内一点的经纬度 (WGS 84)。")
    else:
        notes.append("位置：缺口内一点的经纬度 (WGS 84 lon, lat)；最近驿站的地址见 CSV/XLSX。")
    if any(n == UNASSIGNED for n in u.get("name", [])):
        notes.append("（未划入单元）：中心不在任何单元内的需求网格。")
    if net and h.get("stations_off_network"):
        notes.append(f"{h['stations_off_network']} 个驿站离街道过远，沿路网不服务任何需求。")
    if report.stations_changed:
        notes.append(f"本次运行后登记册有 {report.stations_changed} 个驿站新增或修改；驿站表为当前登记。")
    notes.append(f"完整缺口表（{h['gaps']} 个）见 CSV / XLSX / GeoJSON / GeoPackage。"
                 f"生成于 {local_time(now or datetime.now().astimezone(), report.timezone)}。")
    page_hours = _hours_part(report, lang)
    return SummaryPage(
        **page_hours,
        title=f"驿站覆盖缺口报告 · {report.run.area.label}",
        subtitle=f"{say('运行', 'run', lang)} #{h['run_id']} · "
                 f"{local_time(datetime.fromisoformat(h['created_at']), report.timezone)} · {mode} · "
                 f"半径 {metres(h['radius_m'])} · {h['cells']:,} 个需求网格"
                 + (f"（{h['cell_size_m']:g} 米）" if h.get("cell_size_m") else ""),
        figures=figures, gap_header=gap_header, gap_rows=gap_rows, gaps_more=max(0, len(g) - top),
        unit_header=unit_header, unit_rows=rows, unit_total=total, units_more=more,
        notes=[n for n in notes if n], attribution=OSM_ATTRIBUTION if report.uses_osm else None, lang=lang)


def _hours_part(report: RunReport, lang: str) -> dict[str, Any]:
    """The :class:`SummaryPage` fields of a run by hour of the week and with capacity (none for other runs)."""
    run = report.run
    out: dict[str, Any] = {"hours": run.hours is not None, "capacity": run.loads is not None}
    figures = []
    for zh, en, value, unit in hour_figures(run):
        if unit == "%":
            text = pct(value)
        elif isinstance(value, float):
            text = f"{num(value)} {zh_part(unit, lang)}".strip()
        elif isinstance(value, int):
            text = f"{value:,} {unit}".strip()
        else:
            text = zh_part(str(value), lang)
        figures.append((zh, en, text))
    out["hour_figures"] = figures
    worst = worst_hours(run)
    if worst:
        out["worst_header"] = [say("时段", "hour", lang), say("需求", "demand", lang), say("已覆盖", "covered", lang),
                               say("覆盖率", "share", lang)]
        out["worst_rows"] = [[w["label"] if lang != "zh" else w["label"].rsplit(" ", 1)[0], num(w["demand"]),
                              num(w["covered"]), pct(w["share"])] for w in worst]
    crowded = crowded_table(run)
    if crowded is not None:
        out["crowded_header"] = [say("驿站", "station", lang), say("座位", "seats", lang),
                                 say("高峰时段", "peak hour", lang), say("高峰需求(单/时)", "orders/h at peak", lang),
                                 say("每座每小时订单", "orders per seat/h", lang)]
        out["crowded_rows"] = [
            [_cut(r.name if isinstance(r.name, str) else r.station_id, 22),
             f"{int(r.seats):,}" if math.isfinite(r.seats) else "—",
             r.peak_hour if lang != "zh" or not r.peak_hour else r.peak_hour.rsplit(" ", 1)[0],
             num(r.peak_demand), num(r.per_seat, 2)]
            for r in crowded.head(CROWDED_SHOWN).itertuples(index=False)]
        out["crowded_more"] = max(0, len(crowded) - CROWDED_SHOWN)
    return out


_CSS = """
@page { size: A4 portrait; margin: 10mm; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", sans-serif;
       color: #222; margin: 0 auto; max-width: 190mm; font-size: 9pt; }
h1 { font-size: 15pt; margin: 0 0 1mm; font-weight: 600; }
.sub { color: #666; margin-bottom: 3mm; }
.top { display: flex; gap: 4mm; align-items: flex-start; }
.top img { width: 118mm; border: 1px solid #bbb; }
.figs { flex: 1; }
.fig { margin-bottom: 2.2mm; }
.fig .l { color: #666; font-size: 7.5pt; }
.fig .v { font-size: 12pt; }
h2 { font-size: 10pt; margin: 3mm 0 1mm; }
table { border-collapse: collapse; width: 100%; font-size: 7.5pt; }
th { background: #ddebf7; text-align: left; font-weight: 600; }
th, td { padding: 0.6mm 1.5mm; border-bottom: 1px solid #e2e2e2; }
td.n, th.n { text-align: right; white-space: nowrap; }
tr.total td { border-top: 1px solid #888; font-weight: 600; }
.more { color: #666; font-size: 7pt; }
.notes { color: #555; font-size: 6.8pt; margin-top: 2mm; }
.notes p { margin: 0.4mm 0; }
.hours { display: flex; gap: 4mm; align-items: flex-start; break-before: page; }
.hours img { width: 80mm; }
@media print { body { max-width: none; } }
"""


def _table(header: list[str], rows: list[list[str]], total: list[str] | None = None,
           text: frozenset[int] = frozenset({0})) -> str:
    def cls(j: int) -> str:
        return "" if j in text else ' class="n"'

    head = "".join(f"<th{cls(j)}>{html.escape(h)}</th>" for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(j)}>{html.escape(v)}</td>" for j, v in enumerate(r)) + "</tr>"
                   for r in rows)
    if total:
        body += '<tr class="total">' + "".join(f"<td{cls(j)}>{html.escape(v)}</td>"
                                                for j, v in enumerate(total)) + "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(report: RunReport, *, page: SummaryPage | None = None, lang: str = "zh-en") -> str:
    """The one-page summary as a self-contained HTML document (print it, or open it offline), in ``lang``."""
    p = page or summary_page(report, lang=lang)
    img = base64.b64encode(map_png(report, width_in=6.0, max_height_in=6.0, dpi=160)).decode("ascii")
    figs = "".join(f'<div class="fig"><div class="l">{html.escape(p.say(zh, en))}</div>'
                   f'<div class="v">{html.escape(v)}</div></div>' for zh, en, v in p.figures)
    gap_table = (_table(p.gap_header, p.gap_rows, text=GAP_TEXT_COLUMNS) if p.gap_rows
                 else f"<p>{p.say('没有覆盖缺口。', 'No gaps.')}</p>")
    more_text = p.say(f"另有 {p.gaps_more} 个缺口见数据文件。", f"{p.gaps_more} more gaps in the data files.")
    more = f'<p class="more">{html.escape(more_text)}</p>' if p.gaps_more else ""
    units_more = f'<p class="more">{p.units_more + 1} 个单元合为一行；分单元明细见 XLSX。</p>' if p.units_more else ""
    hours = _hours_html(report, p)
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in p.notes)
    if p.attribution:
        notes += f"<p>{p.say('地图数据', 'Map data')} {html.escape(p.attribution)}</p>"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(p.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{html.escape(p.title)}</h1>
<div class="sub">{html.escape(p.subtitle)}</div>
<div class="top"><img alt="地图 map" src="data:image/png;base64,{img}"><div class="figs">{figs}</div></div>
<h2>{html.escape(p.say(f"前 {len(p.gap_rows)} 个缺口", "Top gaps"))}</h2>
{gap_table}{more}
<h2>{html.escape(p.say("分单元", "By township / unit"))}</h2>
{_table(p.unit_header, p.unit_rows, p.unit_total)}{units_more}
{hours}
<div class="notes">{notes}</div>
</body></html>
"""



def _hours_html(report: RunReport, p: SummaryPage) -> str:
    """The part of the HTML page on the hours of the week (the 24 x 7 picture, the figures by hour, the worst
    hours) and on capacity (the crowded stations); empty for a run without them."""
    out = ""
    if p.hours:
        png = share_grid_png(report.run, lang=p.lang)
        img = (f'<img alt="{html.escape(p.say("分时覆盖率", "covered share by hour"))}" '
               f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">' if png else "")
        figs = "".join(f'<div class="fig"><div class="l">{html.escape(p.say(zh, en))}</div>'
                       f'<div class="v">{html.escape(v)}</div></div>' for zh, en, v in p.hour_figures)
        worst = ""
        if p.worst_rows:
            worst = (f"<h2>{html.escape(p.say('最差时段', 'Worst hours'))}</h2>"
                     + _table(p.worst_header, p.worst_rows))
        out += (f"<h2>{html.escape(p.say('分时段覆盖率（当地时间）', 'Covered share by hour of the week, local time'))}"
                f'</h2><div class="hours">{img}<div class="figs">{figs}{worst}</div></div>')
    elif p.hour_figures:
        out += "".join(f'<div class="fig"><div class="l">{html.escape(p.say(zh, en))}</div>'
                       f'<div class="v">{html.escape(v)}</div></div>' for zh, en, v in p.hour_figures)
    if p.capacity:
        out += f"<h2>{html.escape(p.say('拥挤驿站', 'Crowded stations'))}</h2>"
        out += (_table(p.crowded_header, p.crowded_rows) if p.crowded_rows
                else f"<p>{html.escape(p.say('没有拥挤的驿站。', 'No crowded station.'))}</p>")
        if p.crowded_more:
            more = p.say(f"另有 {p.crowded_more} 个见 XLSX。", f"{p.crowded_more} more in the XLSX.")
            out += f'<p class="more">{html.escape(more)}</p>'
    return out
