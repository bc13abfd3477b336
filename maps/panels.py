"""The map's fixed panels: the legend (bottom left) and the run summary (top left), as HTML.

Their styles are in ``static/yizhan/map.css``; the page script writes the active coordinate system into
``#yz-crs``. Radii are metres.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd

from yizhan.maps.basemaps import SYSTEM_LABELS
from yizhan.maps.formatting import distance_text, esc, number_text
from yizhan.maps.layers import COMPACT_THRESHOLD, demand_range
from yizhan.maps.style import GAP_SCALE, KIND_COLOURS, MODE_LABELS, SERVICE_AREA_COLOUR, SHARE_SCALE, SITE_COLOUR
from yizhan.stations.vocab import KINDS


def legend_html(gaps: gpd.GeoDataFrame, radius_m: float, *, network: bool = False, units: bool = False,
                rings: bool = True, sites: bool = False) -> str:
    """The legend: station kinds, closed stations, and a line for each optional layer that is drawn.

    ``network`` adds the area reached along the streets, ``units`` the township ramp, ``sites`` the recommended
    sites; without ``rings`` (national scale) a note says why no service rings are drawn.
    """
    kinds = "".join(
        f'<div><span class="yz-dot" style="background:{KIND_COLOURS[code]}"></span>{name} {code}</div>'
        for code, name in KINDS.items()
        if code in KIND_COLOURS
    )
    lo, hi = demand_range(gaps)
    gradient = ", ".join(GAP_SCALE)
    scale = (
        f'<div class="yz-ramp" style="background:linear-gradient(to right, {gradient})"></div>'
        f'<div class="yz-ramp-labels"><span>{number_text(lo)}</span><span>{number_text(hi)}</span></div>'
        if len(gaps)
        else "<div>无缺口 none</div>"
    )
    radius = distance_text(radius_m)
    service = (f'<div><span class="yz-dot" style="background:{SERVICE_AREA_COLOUR};border-radius:2px"></span>'
               f'{radius} 沿路网服务范围 reached along the streets</div>' if network else "")
    ring = (f'<div><span class="yz-ring-sample"></span>{radius} 服务半径（直线）service radius</div>'
            if rings else f'<div class="yz-note">驿站过多（&gt;{COMPACT_THRESHOLD:,}），未绘制服务半径 '
                          'rings not drawn at this scale</div>')
    site_line = (f'<div><span class="yz-dot" style="background:{SITE_COLOUR};border-radius:3px"></span>'
                 f'推荐新址 recommended site（虚线：直线 {radius} 半径 dashed: straight-line '
                 'radius）</div>' if sites else "")
    share_gradient = ", ".join(SHARE_SCALE)
    unit_scale = (
        '<div class="yz-sub">街道覆盖率 Townships: covered share</div>'
        f'<div class="yz-ramp yz-ramp-share" style="background:linear-gradient(to right, {share_gradient})"></div>'
        '<div class="yz-ramp-labels"><span>0%</span><span>100%</span></div>'
        if units else ""
    )
    return f"""
<div id="yz-legend" class="yz-panel">
  <div class="yz-title">图例 Legend</div>
  {kinds}
  <div><span class="yz-dot yz-dot-closed"></span>已关闭 closed</div>
  {site_line}
  {ring}
  {service}
  <div><span class="yz-heat-sample"></span>配送需求热力 demand heat</div>
  <div class="yz-sub">覆盖缺口：未覆盖需求 Gaps: unmet demand</div>
  {scale}
  {unit_scale}
  <div><span class="yz-area-sample"></span>研究区 study area</div>
  <div class="yz-sub">坐标系 CRS: <span id="yz-crs">{SYSTEM_LABELS["wgs84"]}</span></div>
</div>"""


def summary_html(summary: Mapping[str, Any]) -> str:
    """The summary panel of a coverage run, or of a recommendation when ``summary`` has ``covered_share_before``
    (then also ``new_sites``, ``method`` and ``gap``, the relative gap to the solver's bound)."""
    share = float(summary["covered_share"])
    mode = str(summary["mode"])
    before = summary.get("covered_share_before")
    rows = [
        ("覆盖率 Covered", f"<b>{share * 100:.1f}%</b>" if before is None else
         f"{float(before) * 100:.1f}% → <b>{share * 100:.1f}%</b>"),
        ("覆盖需求 Demand",
         f"{number_text(float(summary['demand_covered']))} / {number_text(float(summary['demand_total']))}"),
        ("驿站 Stations", esc(summary["stations"])),
        ("缺口 Gaps", esc(summary["gaps"])),
        ("服务半径 Radius", distance_text(float(summary["radius_m"]))),
        ("距离 Mode", esc(MODE_LABELS.get(mode, mode))),
        ("区域 Area", esc(summary["area"])),
        ("运行 Run", esc(summary["run_id"])),
        ("生成 Created", esc(summary["created_at"])),
    ]
    title = "驿站 1 km 覆盖 Coverage summary"
    if before is not None:
        title = "选址建议 Where to open next"
        rows[2:2] = [("新址 New sites", esc(summary.get("new_sites", ""))),
                     ("方法 Method", esc(summary.get("method", ""))),
                     ("最优差距 Gap to bound", f"{float(summary.get('gap', 0.0)) * 100:.2f}%")]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"""
<div id="yz-summary" class="yz-panel">
  <div class="yz-title">{title}</div>
  <table>{body}</table>
</div>"""
