"""Static map of a run for the printable summary, drawn with matplotlib (no tiles: works offline).

Layers: study area, units (outlines), the area within reach (discs, or the service area along the streets with
the straight-line rings as outlines), gaps coloured by rank (the top ones numbered as in the tables) and
stations by kind. Drawn in the area's metric CRS, so the scale bar is true. Only the object-oriented matplotlib
API is used (no pyplot), so maps can be drawn in server threads.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from shapely.geometry.base import BaseGeometry

from yizhan.maps.style import AREA_COLOUR, CLOSED_COLOUR, GAP_SCALE, KIND_COLOURS, OTHER_KIND_COLOUR
from yizhan.maps.style import SERVICE_AREA_COLOUR as SERVICE_COLOUR
from yizhan.reports.run_report import OSM_ATTRIBUTION, RunReport
from yizhan.stations.vocab import KINDS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei")
"""Fonts with Chinese glyphs, in order of preference (Debian: fonts-noto-cjk or fonts-wqy-zenhei)."""
RANK_LABELS = 10
"""Gaps ranked 1..RANK_LABELS get their rank drawn on the map (the summary tables list the same gaps)."""
RANK_CLASSES = ("1", "2–3", "4–7", "8–15", "≥16")
"""Gap colour classes by rank, darkest first (GAP_SCALE reversed)."""
KIND_MARKERS = {"large": "s", "small": "o", "mobile": "^"}
_LOCK = threading.RLock()


@lru_cache(maxsize=1)
def cjk_font() -> tuple[str, int | str] | None:
    """(family name, weight) of an installed font with Chinese glyphs, or None when there is none."""
    from matplotlib import font_manager

    fonts = {f.name: f for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in fonts:
            return name, fonts[name].weight
    return None


@contextmanager
def drawing() -> Iterator[str | None]:
    """matplotlib settings for the report (CJK font first, DejaVu Sans as the fallback; TrueType embedded in PDF,
    so the text can be searched and copied). Yields the CJK family used, or None when no CJK font is installed
    (Chinese text then shows as empty boxes; the missing-glyph warnings are silenced)."""
    found = cjk_font()
    rc: dict[RcKeyType, Any] = {"font.family": "sans-serif", "pdf.fonttype": 42, "svg.fonttype": "none",
                                "font.sans-serif": [found[0], "DejaVu Sans"] if found else ["DejaVu Sans"],
                                "axes.unicode_minus": False}
    if found:
        rc["font.weight"] = found[1]  # e.g. 500 for WenQuanYi: matplotlib would otherwise warn on each look-up
    # rcParams and warning filters are process-wide: one drawing at a time, or a server thread could restore the
    # defaults (no CJK font) while another is still drawing
    with _LOCK, rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        warnings.filterwarnings("ignore", message="findfont")
        yield found[0] if found else None


def _path(geom: BaseGeometry) -> MplPath | None:
    """A compound path of a (Multi)Polygon's rings (holes included) for a PathPatch."""
    paths = []
    for poly in shapely.get_parts(geom):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            codes = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
            codes[0], codes[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            paths.append(MplPath(xy, codes))
    return MplPath.make_compound_path(*paths) if paths else None


def _patch(ax: Axes, geom: BaseGeometry | None, **style: Any) -> None:
    if geom is None or geom.is_empty:
        return
    path = _path(geom)
    if path is not None:
        ax.add_patch(PathPatch(path, **style))


def rank_class(rank: int) -> int:
    """0 for rank 1, 1 for 2–3, 2 for 4–7, 3 for 8–15, 4 for 16 and beyond (index into :data:`RANK_CLASSES`)."""
    return min(4, int(math.log2(max(int(rank), 1))))


def _rank_colour(rank: int) -> str:
    return GAP_SCALE[::-1][rank_class(rank)]


def _scale_bar(ax: Axes, width_m: float) -> None:
    """A bar of a round length (1, 2 or 5 × 10^n m) at the lower left."""
    target = width_m / 5
    exp = 10 ** math.floor(math.log10(target))
    length = max(m * exp for m in (1, 2, 5) if m * exp <= target)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    x, y = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
    ax.plot([x, x + length], [y, y], color="black", lw=2.5, solid_capstyle="butt", zorder=20)
    ax.text(x + length / 2, y + 0.012 * (y1 - y0), f"{length:g} 米" if length < 1000 else f"{length / 1000:g} 公里",
            ha="center", va="bottom", fontsize=7, zorder=20,
            bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5})
    ax.annotate("N", xy=(x1 - 0.05 * (x1 - x0), y1 - 0.05 * (y1 - y0)),
                xytext=(x1 - 0.05 * (x1 - x0), y1 - 0.14 * (y1 - y0)), ha="center", va="center", fontsize=8,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1}, zorder=20)


def _layer_geoms(report: RunReport) -> list[Any]:
    run = report.run
    geoms = [run.area.boundary, run.covered_geom, *run.gaps.geometry, *run.stations.geometry]
    return [g for g in geoms if g is not None and not g.is_empty]


def map_aspect(report: RunReport) -> float:
    """Height / width of the map's extent in the area's metric CRS (1 when there is nothing to draw)."""
    geoms = _layer_geoms(report)
    if not geoms:
        return 1.0
    w, s, e, n = gpd.GeoSeries(geoms, crs=4326).to_crs(report.run.area.crs_epsg).total_bounds
    return float(max(n - s, 1.0) / max(e - w, 1.0))


def draw_map(ax: Axes, report: RunReport, *, labels: int = RANK_LABELS, legend: str | None = "below") -> None:
    """Draw the run's layers on ``ax`` in the area's metric CRS (call inside :func:`drawing`); the legend goes
    ``"below"`` the axes (leave room for it), ``"inside"`` (upper left) or nowhere (None)."""
    run = report.run
    crs = run.area.crs_epsg

    def proj(geom: BaseGeometry | None) -> BaseGeometry | None:
        return None if geom is None else gpd.GeoSeries([geom], crs=4326).to_crs(crs).iloc[0]

    boundary = proj(run.area.boundary)
    _patch(ax, boundary, facecolor="#f4f4f2", edgecolor="none", zorder=0)
    covered = proj(run.covered_geom)
    _patch(ax, covered, facecolor=SERVICE_COLOUR, alpha=0.22, edgecolor="none", zorder=1)
    stations = run.stations.to_crs(crs)
    active = stations[stations["status"] == "active"]
    if report.network:  # the straight-line rings, for comparison with the area reached along the streets
        for kind, geom in zip(active["kind"], active.geometry, strict=True):
            ring = geom.buffer(float(run.summary["radius_m"]), quad_segs=32).exterior
            x, y = ring.xy
            ax.plot(x, y, color=KIND_COLOURS.get(kind, OTHER_KIND_COLOUR), lw=0.5, ls=(0, (3, 2)), alpha=0.6, zorder=2)
    units = report.units
    named_units = units[units.geometry.notna()] if len(units) else units
    for name, geom in zip(named_units.get("name", []), named_units.geometry, strict=True):
        g = proj(geom)
        _patch(ax, g, facecolor="none", edgecolor="#9a9a9a", lw=0.6, ls=(0, (4, 2)), zorder=3)
        if len(named_units) <= 30 and g is not None:
            p = g.representative_point()
            ax.text(p.x, p.y, str(name), fontsize=6.5, color="#4a4a4a", ha="center", va="center", zorder=6,
                    alpha=0.9)
    gaps = run.gaps.to_crs(crs)
    for rank, geom in zip(gaps["rank"], gaps.geometry, strict=True):
        _patch(ax, geom, facecolor=_rank_colour(rank), edgecolor="#7a0019", lw=0.4, alpha=0.85, zorder=4)
    _patch(ax, boundary, facecolor="none", edgecolor=AREA_COLOUR, lw=1.2, zorder=5)
    for kind, marker in KIND_MARKERS.items():
        sel = active[active["kind"] == kind]
        if len(sel):
            ax.scatter(sel.geometry.x, sel.geometry.y, s=16, marker=marker, color=KIND_COLOURS[kind],
                       edgecolors="white", linewidths=0.5, zorder=7)
    other = active[~active["kind"].isin(list(KIND_MARKERS))]
    if len(other):
        ax.scatter(other.geometry.x, other.geometry.y, s=14, color=OTHER_KIND_COLOUR, zorder=7)
    closed = stations[stations["status"] != "active"]
    if len(closed):
        ax.scatter(closed.geometry.x, closed.geometry.y, s=14, facecolors="none", edgecolors=CLOSED_COLOUR,
                   linewidths=0.8, zorder=6)
    if labels and len(gaps):
        pts = gpd.GeoSeries(gpd.points_from_xy(run.gaps["lon"], run.gaps["lat"]), crs=4326).to_crs(crs)
        for rank, p in list(zip(gaps["rank"], pts, strict=True))[:labels]:
            ax.text(p.x, p.y, str(int(rank)), fontsize=7, ha="center", va="center", color="black", zorder=8,
                    bbox={"boxstyle": "circle,pad=0.18", "fc": "white", "ec": "#7a0019", "lw": 0.6})
    _frame(ax, [proj(g) for g in _layer_geoms(report)])
    if legend:
        _legend(ax, report, active, closed, covered is not None, below=legend == "below")
    if report.uses_osm:
        ax.text(0.99, 0.01, OSM_ATTRIBUTION, transform=ax.transAxes, ha="right", va="bottom", fontsize=6,
                color="#333333", bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1}, zorder=21)


def _frame(ax: Axes, geoms: list[Any]) -> None:
    present = [g for g in geoms if g is not None and not g.is_empty]
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#999999")
        side.set_linewidth(0.6)
    if not present:
        return
    w, s, e, n = shapely.total_bounds(np.array(present, dtype=object))
    pad = 0.04 * max(e - w, n - s, 1.0)
    ax.set_xlim(w - pad, e + pad)
    ax.set_ylim(s - pad, n + pad)
    _scale_bar(ax, e - w + 2 * pad)


def _legend(ax: Axes, report: RunReport, active: gpd.GeoDataFrame, closed: gpd.GeoDataFrame, covered: bool,
            *, below: bool) -> None:
    handles: list[Any] = []
    for kind, marker in KIND_MARKERS.items():
        if (active["kind"] == kind).any():
            handles.append(Line2D([], [], ls="", marker=marker, color=KIND_COLOURS[kind], markersize=5,
                                  label=KINDS[kind]))
    if len(closed):
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec=CLOSED_COLOUR, markersize=5,
                              label="已关闭驿站"))
    if covered:
        label = "沿路网服务范围" if report.network else "服务半径范围"
        handles.append(Patch(fc=SERVICE_COLOUR, alpha=0.3, label=label))
    if report.network:
        handles.append(Line2D([], [], color="#555555", lw=0.6, ls=(0, (3, 2)), label="直线半径"))
    ranks = sorted({rank_class(r) for r in report.run.gaps["rank"]})
    for c in ranks:
        handles.append(Patch(fc=GAP_SCALE[::-1][c], ec="#7a0019", lw=0.4, label=f"缺口排名 {RANK_CLASSES[c]}"))
    if handles and below:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=min(len(handles), 4),
                  fontsize=6.5, frameon=False, handlelength=1.2, columnspacing=1.2, labelspacing=0.3)
    elif handles:
        ax.legend(handles=handles, loc="upper left", fontsize=6, frameon=True, framealpha=0.85, borderpad=0.4,
                  handlelength=1.2, labelspacing=0.3)


LEGEND_IN = 0.45
"""Room below the map for its legend, inches."""


def fit_map(report: RunReport, max_w: float, max_h: float) -> tuple[float, float]:
    """(width, height) in inches of the largest map box of the extent's shape within ``max_w`` × ``max_h``."""
    aspect = map_aspect(report)
    return (max_w, max_w * aspect) if max_w * aspect <= max_h else (max_h / aspect, max_h)


def map_png(report: RunReport, *, width_in: float = 7.0, max_height_in: float = 7.0, dpi: int = 150) -> bytes:
    """The map (legend below it) as PNG bytes, ``width_in`` wide and as high as the extent's shape needs."""
    w, h = fit_map(report, width_in - 0.1, max_height_in)
    with drawing():
        fig = Figure(figsize=(width_in, h + 0.1 + LEGEND_IN), dpi=dpi)
        total = h + 0.1 + LEGEND_IN
        ax = fig.add_axes(((width_in - w) / 2 / width_in, (LEGEND_IN + 0.05) / total, w / width_in, h / total))
        draw_map(ax, report)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()
