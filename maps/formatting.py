"""Text shown on the interactive map: missing values, HTML escaping, CSS class tokens, numbers and distances.

Every function returns a plain string (or ``None``); distances are metres.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd


def is_missing(value: Any) -> bool:
    """Whether ``value`` is None, NaN, ``pd.NA`` or ``pd.NaT`` (a list or array is never missing)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(value != value)  # NaN (float, numpy)
    except (TypeError, ValueError):  # a comparison whose truth is not a bool (an array, another NA-like)
        return False


def clean_text(value: Any) -> str:
    """``value`` as stripped text; ``""`` when missing."""
    return "" if is_missing(value) else str(value).strip()


def optional_int(value: Any) -> int | None:
    """``value`` as an int; None when missing (None, NaN, ``pd.NA``)."""
    return None if is_missing(value) else int(value)


def esc(value: Any) -> str:
    """HTML-escape, also neutralising backticks and ``$`` because folium embeds popups in JS template literals."""
    return html.escape(str(value)).replace("`", "&#96;").replace("$", "&#36;")


def css_token(code: Any) -> str:
    """``code`` reduced to a CSS class-name token (letters, digits, ``-``, ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(code)) or "unknown"


def number_text(value: float) -> str:
    """A demand figure: thousands separators, one decimal below 100."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def distance_text(metres: float) -> str:
    """A distance in metres as ``"850 m"`` or ``"1.5 km"``; ``"—"`` when not finite."""
    if not math.isfinite(metres):
        return "—"
    return f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:.0f} m"
