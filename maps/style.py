"""The map's palette and labels, shared by the interactive map (``maps``) and the printed report maps (``reports``).

Colours are CSS hex strings; scales run from low to high (:func:`scale_colour` picks a colour on one).
"""

from __future__ import annotations

import math

SITE_COLOUR = "#d4145a"
HOURS_COLOUR = "#e07b00"
"""A station whose hours a recommendation extends (or opens round the clock)."""
STREET_COLOUR = "#9a9a9a"

KIND_COLOURS: dict[str, str] = {"large": "#1f4e9d", "small": "#1b8a5a", "mobile": "#7b3294"}
"""Fill colour of active station markers (and their rings) by kind code."""
OTHER_KIND_COLOUR = "#3a3a3a"
CLOSED_COLOUR = "#8a8a8a"
AREA_COLOUR = "#444444"
GAP_SCALE: tuple[str, ...] = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
"""Sequential colour scale (ColorBrewer YlOrRd, 5 classes) for unmet demand of gaps, low to high."""
GAP_CLASS_BREAKS: tuple[float, ...] = (50.0, 200.0, 500.0, 1000.0)
"""Upper bounds of the first four classes of a gap's unmet demand (orders); the fifth is everything above. The
classes are absolute, so a gap's colour means the same demand on the map of every run of every area."""
SHARE_SCALE: tuple[str, ...] = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
"""Diverging colour scale (ColorBrewer RdYlGn, 5 classes) for the covered share of townships, 0 % to 100 %."""

PROFILE_LABELS: dict[str, str] = {"walk": "步行", "bike": "骑行"}
SERVICE_AREA_COLOUR = "#1b9e77"
BAND_GAP_COLOUR = "#1d91c0"
"""Cells that are gaps in the hour band chosen on the map."""
NIGHT_GAP_COLOUR = "#5e3c99"
"""Night gaps: cells covered by day and not at night."""
CROWDED_COLOUR = "#d7301f"
"""The ring of a crowded station."""


def scale_colour(value: float, lo: float, hi: float, scale: tuple[str, ...] = GAP_SCALE) -> str:
    """Colour of ``value`` on ``scale`` stretched over [lo, hi], linearly interpolated in RGB."""
    if not math.isfinite(value):
        return scale[0]
    t = 1.0 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
    pos = t * (len(scale) - 1)
    i = min(int(pos), len(scale) - 2)
    f = pos - i
    a, b = (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in scale[i : i + 2])
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def gap_class(demand: float) -> int:
    """The class (0–4, index into :data:`GAP_SCALE`) of a gap of ``demand`` unmet orders on the fixed
    :data:`GAP_CLASS_BREAKS`; class 0 when not finite."""
    if not math.isfinite(demand):
        return 0
    return sum(demand >= b for b in GAP_CLASS_BREAKS)


def gap_colour(demand: float) -> str:
    """Fill colour of a gap of ``demand`` unmet orders: its fixed class's colour on :data:`GAP_SCALE`."""
    return GAP_SCALE[gap_class(demand)]


def gap_classes(lowest: float) -> list[tuple[float, float, str]]:
    """The gap classes a map can show when no gap has less than ``lowest`` orders: ``(low, high, colour)`` from
    the class holding ``lowest`` upwards, the first starting at ``lowest``, the last with ``high`` infinite."""
    bounds = [0.0, *GAP_CLASS_BREAKS, math.inf]
    out = []
    for i, colour in enumerate(GAP_SCALE):
        low, high = bounds[i], bounds[i + 1]
        if high <= lowest:
            continue
        out.append((max(low, lowest), high, colour))
    return out


def share_colour(share: float) -> str:
    """Colour of a covered share (0–1) on :data:`SHARE_SCALE`; grey when unknown."""
    if not math.isfinite(share):
        return "#bbbbbb"
    return scale_colour(min(max(share, 0.0), 1.0), 0.0, 1.0, SHARE_SCALE)
