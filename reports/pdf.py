"""The one-page summary as a PDF (A4 portrait), laid out and written by matplotlib.

Same content as the HTML (:func:`yizhan.reports.summary.summary_page`); the map is drawn as vector
graphics. Text uses an installed CJK font (see :func:`yizhan.reports.drawing.cjk_font`), embedded as
TrueType so it can be searched and copied.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from yizhan.reports.by_hour import share_table
from yizhan.reports.drawing import LEGEND_IN, draw_map, drawing, fit_map
from yizhan.reports.hour_chart import draw_share_grid
from yizhan.reports.run_report import RunReport
from yizhan.reports.summary import GAP_TEXT_COLUMNS, SummaryPage, summary_page

if TYPE_CHECKING:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

PAGE_W, PAGE_H = 8.27, 11.69  # A4, inches
MARGIN = 0.45
ROW_H = 0.155  # table row height, inches
GREY = "#666666"


class Page:
    """Place text on an A4 page (``PAGE_W`` x ``PAGE_H`` inches) by inches from the top left."""

    def __init__(self, fig: Figure) -> None:
        self.fig = fig

    def text(self, x: float, y: float, s: str, **kw: object) -> None:
        self.fig.text(x / PAGE_W, 1 - y / PAGE_H, s, va="baseline", parse_math=False, **kw)  # type: ignore[arg-type]

    def rule(self, y: float, x0: float = MARGIN, x1: float = PAGE_W - MARGIN, **kw: object) -> None:
        self.fig.add_artist(_line(x0, x1, y, **kw))

    def table(self, y: float, header: list[str], rows: list[list[str]], widths: list[float],
              text: frozenset[int], total: list[str] | None = None, size: float = 7.0, x0: float = MARGIN) -> float:
        """Draw a table whose top is at ``y`` and left side at ``x0``; numbers right-aligned. Returns the y below
        it."""
        xs = [x0]
        for w in widths[:-1]:
            xs.append(xs[-1] + w)

        def draw(cells: list[str], y_row: float, **kw: object) -> None:
            for j, (x, w, s) in enumerate(zip(xs, widths, cells, strict=True)):
                if j in text:
                    self.text(x + 0.03, y_row, s, fontsize=size, ha="left", **kw)
                else:
                    self.text(x + w - 0.05, y_row, s, fontsize=size, ha="right", **kw)

        self.fig.add_artist(_band(x0, sum(widths), y, ROW_H + 0.02))
        draw(header, y + ROW_H - 0.04, color="#1a1a1a")
        y += ROW_H + 0.02
        for row in rows:
            draw(row, y + ROW_H - 0.04)
            y += ROW_H
            self.rule(y, x0, x0 + sum(widths), color="#e2e2e2", lw=0.4)
        if total:
            self.rule(y, x0, x0 + sum(widths), color="#888888", lw=0.7)
            draw(total, y + ROW_H - 0.04)
            y += ROW_H
        return y


def _line(x0: float, x1: float, y: float, **kw: object) -> Line2D:
    from matplotlib.lines import Line2D

    return Line2D([x0 / PAGE_W, x1 / PAGE_W], [1 - y / PAGE_H] * 2, **kw)  # type: ignore[arg-type]


def _band(x: float, w: float, y: float, h: float) -> Rectangle:
    from matplotlib.patches import Rectangle

    return Rectangle((x / PAGE_W, 1 - (y + h) / PAGE_H), w / PAGE_W, h / PAGE_H, facecolor="#ddebf7",
                     edgecolor="none")


def scaled(widths: list[float], total: float) -> list[float]:
    """``widths`` scaled to add up to ``total`` (inches)."""
    s = sum(widths)
    return [w * total / s for w in widths]


def summary_pdf(report: RunReport, *, page: SummaryPage | None = None, lang: str = "zh-en") -> bytes:
    """The one-page summary (map, headline figures, top gaps, units, notes) as PDF bytes, in ``lang``
    (``summary.LANGS``: ``zh`` Chinese only, ``zh-en`` with English beside). A run by hour of the week or with
    capacity gets a second page (:func:`hours_page`)."""
    p = page or summary_page(report, lang=lang)
    inner = PAGE_W - 2 * MARGIN
    buf = io.BytesIO()
    with drawing() as font:
        fig = Figure(figsize=(PAGE_W, PAGE_H))
        pg = Page(fig)
        pg.text(MARGIN, 0.62, p.title, fontsize=15)
        pg.text(MARGIN, 0.86, p.subtitle, fontsize=7.5, color=GREY)
        box_w, top = 4.75, 1.05
        map_w, map_h = fit_map(report, box_w, 4.1)
        ax = fig.add_axes(((MARGIN + (box_w - map_w) / 2) / PAGE_W, 1 - (top + map_h) / PAGE_H, map_w / PAGE_W,
                           map_h / PAGE_H))
        draw_map(ax, report)
        x = MARGIN + box_w + 0.25
        y = top + 0.1
        for zh, en, value in p.figures:
            pg.text(x, y, p.say(zh, en), fontsize=7, color=GREY)
            pg.text(x, y + 0.22, value, fontsize=12 if len(value) <= 22 else 8.5)
            y += 0.45
        y = max(top + map_h + LEGEND_IN, y) + 0.3
        pg.text(MARGIN, y, p.say(f"前 {len(p.gap_rows)} 个缺口", "Top gaps") if p.gap_rows
                else p.say("没有覆盖缺口", "No gaps"), fontsize=10)
        y += 0.1
        if p.gap_rows:
            widths = scaled([0.45, 0.85, 0.75, 2.6, 1.5, 0.8] + ([0.8] if len(p.gap_header) > 6 else []), inner)
            y = pg.table(y, p.gap_header, p.gap_rows, widths, GAP_TEXT_COLUMNS)
            if p.gaps_more:
                more = p.say(f"另有 {p.gaps_more} 个缺口见数据文件。", f"{p.gaps_more} more gaps in the data files.")
                pg.text(MARGIN, y + 0.16, more, fontsize=6.5, color=GREY)
                y += 0.16
        y += 0.35
        pg.text(MARGIN, y, p.say("分单元", "By township / unit"), fontsize=10)
        y += 0.1
        widths = scaled([2.2, 0.6, 1.0, 1.0, 1.0, 0.8] + ([0.9] if len(p.unit_header) > 6 else []), inner)
        y = pg.table(y, p.unit_header, p.unit_rows, widths, frozenset({0}), p.unit_total)
        if p.units_more:
            pg.text(MARGIN, y + 0.16, f"{p.units_more + 1} 个单元合为一行；分单元明细见 XLSX。", fontsize=6.5,
                    color=GREY)
            y += 0.16
        notes = list(p.notes)
        if p.attribution:
            notes.append(f"{p.say('地图数据', 'Map data')} {p.attribution}")
        if font is None:
            notes.append("No CJK font installed (e.g. Debian fonts-noto-cjk): Chinese text cannot be shown.")
        y += 0.3
        for n in notes:
            pg.text(MARGIN, y, n, fontsize=6.3, color="#555555")
            y += 0.14
        with PdfPages(buf, metadata={"Title": p.title, "Subject": p.subtitle, "Creator": "yizhan",
                                     "CreationDate": datetime.now().astimezone()}) as pdf:
            pdf.savefig(fig)
            if p.hours or p.capacity:
                pdf.savefig(hours_page(report, p))
    return buf.getvalue()


def hours_page(report: RunReport, p: SummaryPage) -> Figure:
    """The second page of a run by hour of the week or with capacity (call inside ``drawing``): the 24 x 7 heat map
    of covered share (``hour_chart.draw_share_grid``) with the figures by hour and the worst hours beside it, then
    the crowded stations."""
    fig = Figure(figsize=(PAGE_W, PAGE_H))
    pg = Page(fig)
    inner = PAGE_W - 2 * MARGIN
    title = p.say("分时段覆盖与驿站负荷", "Hours of the week and capacity")
    pg.text(MARGIN, 0.62, f"{title} · {report.run.area.label}", fontsize=13)
    pg.text(MARGIN, 0.86, p.subtitle, fontsize=7.5, color=GREY)
    y = 1.1
    table = share_table(report.run)
    if table is not None:
        pg.text(MARGIN, y + 0.05, p.say("覆盖率：小时 × 星期（当地时间）", "covered share, hour x weekday, local time"),
                fontsize=10)
        grid_w, grid_h = 3.3, 5.6
        ax = fig.add_axes(((MARGIN + 0.45) / PAGE_W, 1 - (y + 0.45 + grid_h) / PAGE_H, grid_w / PAGE_W,
                           grid_h / PAGE_H))
        draw_share_grid(ax, table, lang=p.lang)
        x = MARGIN + grid_w + 0.9
        fy = y + 0.45
        for zh, en, value in p.hour_figures:
            pg.text(x, fy, p.say(zh, en), fontsize=7, color=GREY)
            pg.text(x, fy + 0.22, value, fontsize=11)
            fy += 0.45
        if p.worst_rows:
            fy += 0.1
            pg.text(x, fy, p.say("最差时段", "Worst hours"), fontsize=10)
            fy = pg.table(fy + 0.1, p.worst_header, p.worst_rows, scaled([1.6, 0.7, 0.7, 0.6], PAGE_W - MARGIN - x),
                          frozenset({0}), x0=x)
        y = max(y + 0.45 + grid_h + 0.9, fy + 0.3)
    elif p.hour_figures:
        for zh, en, value in p.hour_figures:
            pg.text(MARGIN, y, f"{p.say(zh, en)}: {value}", fontsize=8)
            y += 0.22
        y += 0.2
    if p.capacity:
        pg.text(MARGIN, y, p.say("拥挤驿站", "Crowded stations"), fontsize=10)
        y += 0.1
        if p.crowded_rows:
            y = pg.table(y, p.crowded_header, p.crowded_rows, scaled([2.6, 0.6, 1.9, 1.1, 0.8], inner),
                         frozenset({0, 2}))
            if p.crowded_more:
                more = p.say(f"另有 {p.crowded_more} 个见 XLSX。", f"{p.crowded_more} more in the XLSX.")
                pg.text(MARGIN, y + 0.16, more, fontsize=6.5, color=GREY)
        else:
            pg.text(MARGIN, y + 0.2, p.say("没有拥挤的驿站。", "No crowded station."), fontsize=8)
    return fig
