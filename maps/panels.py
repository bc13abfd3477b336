"""The map's panels, as HTML: the run summary (top left), the legend (bottom left), the township table (beside the
map on a desktop) and, for a recommendation, the list of new sites with the solver's proof folded away.

All panels sit in one drawer (``#yz-drawer``): on a desktop the drawer is invisible and each panel keeps its own
place; on a phone the panels fold into it, opened and closed by one button (面板 Panels). Their styles are in
``static/yizhan/map.css``; the page script opens the drawer, sorts the township table and writes the active
coordinate system into ``#yz-crs``. Radii are metres, demand is orders, times are local.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd

from yizhan.maps.basemaps import SYSTEM_LABELS
from yizhan.maps.formatting import (
    clean_text,
    distance_text,
    esc,
    how_measured,
    is_missing,
    local_time_text,
    number_text,
    optional_int,
)
from yizhan.maps.layers import COMPACT_THRESHOLD, host_text, hour_action_title
from yizhan.maps.style import (
    HOURS_COLOUR,
    KIND_COLOURS,
    PROFILE_LABELS,
    SERVICE_AREA_COLOUR,
    SHARE_SCALE,
    SITE_COLOUR,
    gap_classes,
)
from yizhan.stations.vocab import KINDS


@dataclass(frozen=True)
class LeftOut:
    """Gaps not drawn or listed because their unmet demand is below the minimum: how many and their demand
    (orders), and the minimum itself (orders)."""

    minimum: float
    count: int = 0
    demand: float = 0.0


def orders_text(value: float) -> str:
    """A class bound or threshold in orders: ``"5"``, ``"1,000"``, ``"2.5"`` (no trailing zero)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,g}"


def class_text(low: float, high: float) -> str:
    """A gap class as ``"50–200"`` or, for the last one, ``"≥ 1,000"`` (orders)."""
    return f"≥ {orders_text(low)}" if not math.isfinite(high) else f"{orders_text(low)}–{orders_text(high)}"


def legend_html(*, radius_m: float, left_out: LeftOut, network: bool = False, units: bool = False,
                rings: bool = True, sites: bool = False, week: bool = False, night: bool = False,
                crowded: bool = False, hours: bool = False) -> str:
    """The legend: station kinds, closed stations, a line for each optional layer that is drawn, and the fixed
    gap classes from ``left_out.minimum`` up, with how many gaps below it were left out.

    ``network`` adds the area reached along the streets, ``units`` the township ramp, ``sites`` the recommended
    sites; without ``rings`` (national scale) a note says why no service rings are drawn. A run by hour of the
    week adds the gaps of the chosen hours (``week``, with the rule that makes a cell one), the night gaps
    (``night``) and the crowded stations (``crowded``). An hours recommendation adds its stations with longer
    hours (``hours``).
    """
    kinds = "".join(
        f'<span class="yz-kind"><span class="yz-dot" style="background:{KIND_COLOURS[code]}"></span>{name} {code}'
        "</span>"
        for code, name in KINDS.items()
        if code in KIND_COLOURS
    )
    swatches = "".join(
        f'<div class="yz-class"><span class="yz-swatch" style="background:{colour}"></span>{class_text(lo, hi)}'
        "</div>"
        for lo, hi, colour in gap_classes(left_out.minimum)
    )
    minimum = orders_text(left_out.minimum)
    dropped = (f'<div class="yz-note">另有 {left_out.count} 处缺口未满 {minimum} 单，未绘出'
               f'（共 {number_text(left_out.demand)} 单）{left_out.count} gap(s) under {minimum} orders not drawn '
               f'({number_text(left_out.demand)} orders)</div>' if left_out.count else "")
    radius = distance_text(radius_m)
    service = (f'<div><span class="yz-dot" style="background:{SERVICE_AREA_COLOUR};border-radius:2px"></span>'
               f'{radius} 沿路网服务范围（{how_measured(True)}）reached</div>' if network else "")
    ring = (f'<div><span class="yz-ring-sample"></span>{radius} 服务半径（{how_measured(False)}）radius</div>'
            if rings else f'<div class="yz-note">驿站过多（&gt;{COMPACT_THRESHOLD:,}），未绘制服务半径 '
                          'rings not drawn at this scale</div>')
    site_line = (f'<div><span class="yz-dot" style="background:{SITE_COLOUR};border-radius:3px"></span>'
                 f'推荐新址 recommended site（虚线：{radius} 半径，直线 dashed: straight radius）</div>'
                 if sites else "")
    if hours:
        site_line += (f'<div><span class="yz-dot" style="background:{HOURS_COLOUR}"></span>'
                      "延长营业或全天24小时的驿站 station with longer hours or open 24 h</div>")
    by_hour = ""
    if week:
        by_hour += ('<div><span class="yz-band-sample"></span>时段缺口：所选时段内有覆盖的小时不足一半的网格 '
                    "gaps in the hours chosen: cells covered in fewer than half of those hours</div>")
    if night:
        by_hour += ('<div><span class="yz-night-sample"></span>夜间缺口：白天有覆盖、夜间无 '
                    "night gaps: covered by day, not at night</div>")
    if crowded:
        by_hour += ('<div><span class="yz-crowded-sample"></span>拥挤驿站（高峰时段每座订单过多）'
                    "crowded stations: too many orders per seat at the peak hour</div>")
    share_gradient = ", ".join(SHARE_SCALE)
    unit_scale = (
        '<div class="yz-sub">乡镇街道覆盖率 Townships: covered share</div>'
        f'<div class="yz-ramp yz-ramp-share" style="background:linear-gradient(to right, {share_gradient})"></div>'
        '<div class="yz-ramp-labels"><span>0%</span><span>100%</span></div>'
        if units else ""
    )
    return f"""
<div id="yz-legend" class="yz-panel">
  <div class="yz-title">图例 Legend</div>
  <div class="yz-kinds">{kinds}<span class="yz-kind"><span class="yz-dot yz-dot-closed"></span>已关闭 closed</span>
  </div>
  {site_line}
  {ring}
  {service}
  <div><span class="yz-heat-sample"></span>配送需求热力 demand heat</div>
  <div class="yz-sub">缺口：未覆盖订单（固定分级）Gaps: unmet orders, fixed classes</div>
  <div class="yz-classes">{swatches}</div>
  {dropped}
  {by_hour}
  {unit_scale}
  <div><span class="yz-area-sample"></span>研究区 study area</div>
  <div class="yz-sub">坐标系 CRS: <span id="yz-crs">{SYSTEM_LABELS["wgs84"]}</span></div>
</div>"""


def summary_html(summary: Mapping[str, Any], *, timezone: str, gaps_shown: int, left_out: LeftOut,
                 sites: gpd.GeoDataFrame | None = None, hour_rows: list[tuple[str, str]] | None = None,
                 actions: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The summary panel of a coverage run, or of a recommendation when ``summary`` has ``covered_share_before``.

    The title is the area's display name (``area_name``, else ``area``); the time is local in ``timezone``; the
    radius says how distances were measured. A recommendation lists its ``sites`` (name, address, host in
    Chinese, the demand each adds and the covered share after it) and folds the solver's proof (``method``,
    ``bound``, ``gap``, ``candidates``, ``seconds``) into a details element. ``hour_rows`` (label, HTML value)
    follow the covered share: a run's figures by hour of the week (:func:`hour_rows`). An hours recommendation
    (``problem`` "hours") gives its ranked ``actions`` (``siting.runs.HourAction``) instead of the sites, with
    ``extend_to`` in the summary; its shares and demand are of demand-hours.
    """
    share = float(summary["covered_share"])
    mode = str(summary["mode"])
    network = mode == "network"
    before = summary.get("covered_share_before")
    profile = str(summary.get("profile") or "")
    radius = f"{distance_text(float(summary['radius_m']))}（{how_measured(network)}）"
    if network and profile:
        radius += f" {PROFILE_LABELS.get(profile, profile)} {profile}"
    left = (f"（另 {left_out.count} 处未满 {orders_text(left_out.minimum)} 单未列出 "
            f"{left_out.count} small not listed）" if left_out.count else "")
    rows = [
        ("覆盖率 Covered", f"<b>{share * 100:.1f}%</b>" if before is None else
         f"{float(before) * 100:.1f}% → <b>{share * 100:.1f}%</b>"),
        ("覆盖订单 Orders covered",
         f"{number_text(float(summary['demand_covered']))} / {number_text(float(summary['demand_total']))}"),
        ("驿站 Stations", esc(summary["stations"])),
        ("缺口 Gaps", f"{gaps_shown}{left}"),
        ("服务半径 Radius", esc(radius)),
        ("区域 Area", esc(summary["area"])),
        ("运行 Run", esc(summary["run_id"])),
        ("生成 Created", esc(local_time_text(summary["created_at"], timezone))),
    ]
    if summary.get("problem") == "hours":
        rows[0] = ("分时覆盖率 Covered, by hour", rows[0][1])
        rows[1] = ("覆盖需求小时 Demand-hours covered", rows[1][1])
    rows[1:1] = hour_rows or []
    area_name = esc(clean_text(summary.get("area_name")) or summary["area"])
    title = f"{area_name}<br>驿站覆盖 Coverage"
    head, listed, proof = rows[:1], "", ""
    if before is not None:  # the headline is the share before and after, then the sites; the rest below
        title = f"{area_name}<br>选址建议 Where to open next"
        head = [rows[0], ("新址 New sites", esc(summary.get("new_sites", "")))]
        listed = sites_html(sites) if sites is not None else ""
        if actions is not None:
            head = [rows[0], ("措施 Actions", esc(actions_count_text(actions)))]
            listed = actions_html(actions, extend_to=summary.get("extend_to"))
        proof = proof_html(summary)

    def table(part: list[tuple[str, str]]) -> str:
        return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in part) + "</table>"

    return f"""
<div id="yz-summary" class="yz-panel">
  <div class="yz-title">{title}</div>
  {table(head)}{listed}{table(rows[1:])}{proof}
</div>"""


def hour_rows(figures: Mapping[str, Any], week_share: float) -> list[tuple[str, str]]:
    """The summary's rows of a run by hour of the week: the covered share of the week's demand-hours (0–1), and
    from its ``figures`` (``RunHours.figures``) the uncovered demand-hours, the night-gap cells and whether the
    order points or the cell centres were measured."""
    rows = [("分时覆盖率 Covered, by hour", f"{week_share * 100:.1f}%" if math.isfinite(week_share) else "—")]
    if not is_missing(figures.get("uncovered_demand_hours")):
        rows.append(("未覆盖需求小时 Uncovered demand-hours", number_text(float(figures["uncovered_demand_hours"]))))
    if not is_missing(figures.get("night_gap_cells")):
        rows.append(("夜间缺口 Night gaps", f"{int(figures['night_gap_cells']):,} 网格 cells"))
    measured = figures.get("measured")
    if measured:
        what = "订单点 order points" if measured == "points" else "网格中心 cell centres"
        rows.append(("计算依据 Measured on", what))
    return rows


def sites_html(sites: gpd.GeoDataFrame) -> str:
    """The recommended sites in rank order: name, address, host type in Chinese, the orders each newly covers
    and the covered share once it and those above it are open."""
    items = []
    for row in sorted(sites.itertuples(index=False), key=lambda r: int(r.rank)):
        address = clean_text(getattr(row, "address", None)) or "未登记 not recorded"
        items.append(
            f'<li><b>{esc(clean_text(row.name) or row.external_id)}</b>'
            f'<div>地址 Address：{esc(address)}</div>'
            f'<div>承办 Host：{esc(host_text(row.host_type))}</div>'
            f'<div>新增覆盖 Adds <b>+{number_text(float(row.gain))}</b> 单 orders，'
            f'之后覆盖率 share after <b>{float(row.covered_share_after) * 100:.1f}%</b></div></li>'
        )
    if not items:
        return '<div class="yz-sub">无可推荐的新址 no site to recommend</div>'
    return ('<div class="yz-sub">推荐新址（按顺序开设）Sites, in the order to open them</div>'
            f'<ol class="yz-sites">{"".join(items)}</ol>')


def actions_count_text(actions: Sequence[Mapping[str, Any]]) -> str:
    """How many actions of each kind, Chinese first: ``3（延长营业 2 · 新址 1）``."""
    counts = [(str(a["kind_zh"]), str(a["kind"])) for a in actions]
    seen = list(dict.fromkeys(counts))
    parts = " · ".join(f"{zh} {sum(1 for c in counts if c == (zh, k))}" for zh, k in seen)
    return f"{len(actions)}（{parts}）" if parts else "0"


def actions_html(actions: Sequence[Mapping[str, Any]], *, extend_to: str | None) -> str:
    """An hours recommendation's actions in their one ranked order: the kind (Chinese, English), the station or
    site, the hours added (a week, and as a rule), the uncovered demand-hours removed after those above and the
    covered share of demand-hours then."""
    items = []
    for a in sorted(actions, key=lambda x: int(x["rank"])):
        kind = str(a["kind"])
        items.append(
            f'<li><span class="yz-action-kind yz-action-{kind.replace("24h", "allday")}">{esc(a["kind_zh"])} '
            f'{esc(a["kind_en"])}</span> <b>{esc(clean_text(a.get("name")) or a["id"])}</b>'
            f'<div>{esc(hour_action_title(kind, clean_text(a.get("hours_rule")), extend_to))}'
            f'（+{int(a["hours_added"])} 小时/周 h a week）</div>'
            f'<div>减少 Removes <b>{number_text(float(a["gain"]))}</b> 需求小时 demand-hours，'
            f'之后覆盖率 share after <b>{float(a["covered_share_after"]) * 100:.1f}%</b></div></li>'
        )
    if not items:
        return '<div class="yz-sub">无可推荐的措施 no action to recommend</div>'
    return ('<div class="yz-sub">推荐措施（按顺序实施）Actions, in the order to take them</div>'
            f'<ol class="yz-sites yz-actions">{"".join(items)}</ol>')


def proof_html(summary: Mapping[str, Any]) -> str:
    """The solver's proof of a recommendation, folded: method, the bound on the best achievable coverage, the
    relative gap to it, the candidates weighed and the time taken."""
    rows = [("方法 Method", esc(summary.get("method", "—")))]
    if not is_missing(summary.get("bound")):
        unit = "需求小时 demand-hours" if summary.get("problem") == "hours" else "单 orders"
        rows.append((f"上界 Bound（{unit}）", number_text(float(summary["bound"]))))
    rows.append(("与上界差距 Gap to bound", f"{float(summary.get('gap') or 0.0) * 100:.2f}%"))
    if not is_missing(summary.get("candidates")):
        rows.append(("候选场所 Candidates", esc(summary["candidates"])))
    if not is_missing(summary.get("seconds")):
        rows.append(("用时 Time", f"{float(summary['seconds']):.1f} 秒 s"))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return ('<details class="yz-proof"><summary>求解依据 How good is this answer</summary>'
            f"<table>{body}</table></details>")


def townships_html(units: gpd.GeoDataFrame) -> str:
    """The townships as a table sortable by each column (the page script sorts on a header click): name, covered
    share, demand (orders) and stations; lowest covered share first, unknown shares last."""

    def share_of(v: Any) -> float:
        return float(v) if not is_missing(v) else math.nan

    rows = sorted(units.itertuples(index=False),
                  key=lambda r: (math.isnan(share_of(r.covered_share)), share_of(r.covered_share), str(r.name)))
    body = []
    for r in rows:
        share = share_of(r.covered_share)
        demand = float(r.demand) if not is_missing(r.demand) else math.nan
        stations = optional_int(r.stations)
        body.append(
            f'<tr><td data-v="{esc(clean_text(r.name))}">{esc(clean_text(r.name) or "—")}</td>'
            f'<td data-v="{share if math.isfinite(share) else -1:.6f}">'
            f'{f"{share * 100:.1f}%" if math.isfinite(share) else "—"}</td>'
            f'<td data-v="{demand if math.isfinite(demand) else -1:.3f}">'
            f'{number_text(demand) if math.isfinite(demand) else "—"}</td>'
            f'<td data-v="{stations if stations is not None else -1}">{stations if stations is not None else "—"}'
            "</td></tr>"
        )
    head = "".join(
        f'<th data-type="{kind}" aria-sort="{sort}"><button type="button">{text}</button></th>'
        for text, kind, sort in (("乡镇街道 Township", "text", "none"), ("覆盖率 Covered", "num", "ascending"),
                                 ("订单 Orders", "num", "none"), ("驿站 Stations", "num", "none"))
    )
    return f"""
<div id="yz-townships" class="yz-panel">
  <div class="yz-title">乡镇街道覆盖率 Covered share by township</div>
  <table class="yz-sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
</div>"""


def drawer_html(*panels: str) -> str:
    """The panels in one drawer with its button (面板 Panels): closed on a phone until the button is pressed; on a
    desktop the button is hidden and the panels stand in their places."""
    return f"""
<button id="yz-drawer-toggle" type="button" aria-controls="yz-drawer" aria-expanded="false">面板 Panels</button>
<div id="yz-drawer" class="yz-drawer">{"".join(panels)}
</div>"""
