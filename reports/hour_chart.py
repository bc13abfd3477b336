"""The picture of a run's covered share by hour of the week for the printed summary: a 24 x 7 heat map (hours of
the day down, 周一…周日 across) on fixed colour classes, drawn with matplotlib's object-oriented API inside
``drawing.drawing`` (the project's CJK font handling)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from yizhan.coverage.runs import RunData
from yizhan.maps.style import SHARE_SCALE
from yizhan.reports.by_hour import share_table
from yizhan.reports.drawing import drawing
from yizhan.weekly.week import DAYS_EN, DAYS_ZH

SHARE_CLASS_BREAKS: tuple[float, ...] = (0.5, 0.7, 0.85, 0.95)
"""Upper bounds of the first four classes of an hour's covered share (0–1); the fifth is 95 % and above. Fixed,
so a colour means the same share in every report."""
NO_DEMAND_COLOUR = "#d9d9d9"


def share_classes() -> list[tuple[float, float, str]]:
    """The fixed classes of an hour's covered share: ``(low, high, colour)`` on :data:`SHARE_CLASS_BREAKS`, red
    (under 50 %) to green (95 % and above)."""
    bounds = [0.0, *SHARE_CLASS_BREAKS, math.inf]
    return [(bounds[i], bounds[i + 1], colour) for i, colour in enumerate(SHARE_SCALE)]


def class_label(low: float, high: float) -> str:
    """``"< 50%"``, ``"50–70%"`` … ``"≥ 95%"``."""
    if low <= 0:
        return f"< {high:.0%}"
    return f"≥ {low:.0%}" if not math.isfinite(high) else f"{low:.0%}–{high:.0%}".replace("%–", "–")


def draw_share_grid(ax: Axes, table: pd.DataFrame, *, legend: bool = True, lang: str = "zh-en") -> None:
    """The 24 x 7 covered share as a heat map on ``ax`` (call inside ``drawing``): one square per hour and
    weekday coloured by its fixed class (:func:`share_classes`; grey without demand), the share in whole percent
    written in it, weekdays across the top, hours of the day down; the classes as a legend below."""
    classes = share_classes()
    values = table.to_numpy(dtype=float)
    index = np.full(values.shape, 0, dtype=int)  # 0: no demand
    finite = np.isfinite(values)
    index[finite] = 1 + np.searchsorted(np.array(SHARE_CLASS_BREAKS), values[finite], side="right")
    cmap = ListedColormap([NO_DEMAND_COLOUR, *[c for _, _, c in classes]])
    ax.imshow(index, cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, len(classes) + 1.5), cmap.N), aspect="auto",
              interpolation="nearest")
    for (r, c), v in np.ndenumerate(values):
        if math.isfinite(v):
            ax.text(c, r, f"{v * 100:.0f}", ha="center", va="center", fontsize=5.2,
                    color="white" if v < SHARE_CLASS_BREAKS[0] else "#1a1a1a")
    days = [d if lang == "zh" else f"{d} {e}" for d, e in zip(DAYS_ZH, DAYS_EN, strict=True)]
    ax.set_xticks(range(7), days, fontsize=6.5)
    ax.xaxis.tick_top()
    ax.set_yticks(range(24), [f"{h:02d}时" for h in range(24)], fontsize=5.8)
    ax.tick_params(length=0, pad=1.5)
    ax.set_xticks(np.arange(-0.5, 7), minor=True)
    ax.set_yticks(np.arange(-0.5, 24), minor=True)
    ax.grid(which="minor", color="white", lw=0.6)
    ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if legend:
        handles = [Patch(fc=colour, ec="none", label=class_label(lo, hi)) for lo, hi, colour in classes]
        handles.append(Patch(fc=NO_DEMAND_COLOUR, ec="none", label="无需求" if lang == "zh" else "无需求 no demand"))
        rows = [handles[i] for i in (0, 3, 1, 4, 2, 5)]  # matplotlib fills columns first: read across, low to high
        ax.legend(handles=rows, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=3, fontsize=6,
                  frameon=False, handlelength=1.2, columnspacing=1.0, labelspacing=0.3,
                  title="覆盖率（每格：%）" if lang == "zh" else "覆盖率 covered share (% in each square)",
                  title_fontsize=6.5)


def share_grid_png(run: RunData, *, width_in: float = 3.6, dpi: int = 160, lang: str = "zh-en") -> bytes | None:
    """The heat map of :func:`draw_share_grid` with its legend as PNG bytes; None for a run without hours."""
    table = share_table(run)
    if table is None:
        return None
    height = width_in * 1.35
    with drawing():
        fig = Figure(figsize=(width_in, height), dpi=dpi)
        ax = fig.add_axes((0.14, 0.15, 0.84, 0.8))
        draw_share_grid(ax, table, lang=lang)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


