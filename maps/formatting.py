"""Text shown on the interactive map: missing values, HTML escaping, CSS class tokens, numbers, distances and
times.

Every function returns a plain string (or ``None``); distances are metres, written in Chinese units (米, 公里);
times are written in the local time zone given (an IANA name such as ``Asia/Shanghai``).
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

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
    """A distance in metres as ``"850 米"`` or ``"1.2 公里"`` (one decimal at most); ``"—"`` when not finite."""
    if not math.isfinite(metres):
        return "—"
    whole = round(metres)
    if whole < 1000:
        return f"{whole} 米"
    km = f"{whole / 1000:,.1f}".removesuffix(".0")
    return f"{km} 公里"


STRAIGHT = "直线 straight"
ALONG_STREETS = "沿街道 along the streets"


def how_measured(along_streets: bool) -> str:
    """How a distance was measured: ``"沿街道 along the streets"`` or ``"直线 straight"``."""
    return ALONG_STREETS if along_streets else STRAIGHT


def measured_distance_text(metres: float, *, along_streets: bool) -> str:
    """A distance with how it was measured: ``"850 米（直线 straight）"``, ``"1.2 公里（沿街道 along the streets）"``;
    ``"—"`` when not finite."""
    text = distance_text(metres)
    return text if text == "—" else f"{text}（{how_measured(along_streets)}）"


def local_time_text(value: str | datetime, timezone: str) -> str:
    """An instant (ISO 8601 text or an aware datetime) as local time in ``timezone`` to the minute, with its UTC
    offset: ``"2026-12-02 11:57（UTC+8）"``. A naive time is taken as UTC; text that is not ISO 8601 is returned
    as it is."""
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo("UTC"))
    local = at.astimezone(ZoneInfo(timezone))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    zone = f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{local:%Y-%m-%d %H:%M}（{zone}）"
