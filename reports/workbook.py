"""Excel sheets a union office prints: a table with its header row, number formats, a totals row, frozen header,
and the print set-up (A4, fit to the page width, the header row repeated on every printed page, a page header and
page numbers). Times go in as real Excel dates in local time.

Shared by the gap report (``run_report.gaps_xlsx``) and the monthly return (``yizhan.returns``). Every text cell
stays a text cell (``workbook_bytes`` applies ``stations.cells.keep_text`` once a workbook is complete).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from yizhan.stations.cells import keep_text

DATE_FORMAT = "yyyy-mm-dd hh:mm"
"""How dates with a time of day are shown (the cell holds the full date and time)."""
DAY_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = 'yyyy"年"m"月"'
TOTAL_LABEL = "合计 total"
"""The first cell of a totals row."""
LANDSCAPE_WIDTH = 110
"""Sheets whose columns are wider than this (Excel character widths, summed) print in landscape."""
HEADER_FILL = "DDEBF7"


def local_naive(t: datetime | str | None, tz: str) -> datetime | None:
    """``t`` (aware, or ISO 8601 text with an offset) as the naive wall-clock time of the IANA zone ``tz``: what an
    Excel date cell holds (Excel dates carry no zone). A naive ``t`` is taken as already local. None stays None."""
    if t is None:
        return None
    when = datetime.fromisoformat(t) if isinstance(t, str) else t
    if when.tzinfo is None:
        return when
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return when.astimezone(zone).replace(tzinfo=None)


def plain(v: Any) -> Any:
    """A cell value openpyxl takes: numpy scalars as Python ones, NaN/NA/NaT as an empty cell."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


def display_width(value: Any) -> int:
    """Width of a value in Excel characters (a CJK character counts two)."""
    s = str(value) if value is not None else ""
    return sum(2 if ord(c) > 0x2E7F else 1 for c in s)


def write_table(ws: Any, table: pd.DataFrame, labels: Mapping[str, str], formats: Mapping[str, str], *,
                totals: Mapping[str, Any] | None = None, start_row: int = 1, max_width: int = 48) -> int:
    """Write ``table`` on the openpyxl sheet ``ws`` from ``start_row``: its header (``labels`` by column key,
    bold on a blue band, wrapped), one row per record, then a bold totals row when ``totals`` is given (values by
    column key; the first column says :data:`TOTAL_LABEL` unless given). ``formats`` are Excel number formats by
    column key. The header is frozen and gets an auto filter over the data rows (not the totals). Returns the
    number of the last row written."""
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    keys = list(table.columns)
    head = start_row
    for j, key in enumerate(keys, start=1):
        ws.cell(head, j, labels.get(key, key))
    for i, rec in enumerate(table.itertuples(index=False), start=head + 1):
        for j, v in enumerate(rec, start=1):
            ws.cell(i, j, plain(v))
    last = head + len(table)
    if totals is not None:
        last += 1
        row = {keys[0]: TOTAL_LABEL, **totals} if keys else {}
        for j, key in enumerate(keys, start=1):
            cell = ws.cell(last, j, plain(row.get(key)))
            cell.font = Font(bold=True)
            cell.border = Border(top=Side(style="thin", color="888888"))
    bold, fill = Font(bold=True), PatternFill("solid", fgColor=HEADER_FILL)
    for j in range(1, len(keys) + 1):
        cell = ws.cell(head, j)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for j, key in enumerate(keys, start=1):
        letter = get_column_letter(j)
        fmt = formats.get(key)
        if fmt:
            for (cell,) in ws.iter_rows(min_row=head + 1, max_row=last, min_col=j, max_col=j):
                cell.number_format = fmt
        longest = max([display_width(v) for v in table[key].head(500)] + [8])
        header = max(display_width(part) for part in labels.get(key, key).split(" "))
        ws.column_dimensions[letter].width = min(max(longest, header) + 2, max_width)
    ws.row_dimensions[head].height = 32
    ws.freeze_panes = f"A{head + 1}"
    if len(table) and keys:
        ws.auto_filter.ref = f"A{head}:{get_column_letter(len(keys))}{head + len(table)}"
    return last


def print_setup(ws: Any, *, title: str | None = None, header_rows: tuple[int, int] = (1, 1),
                landscape: bool | None = None) -> None:
    """Set the sheet up for printing: A4, landscape when its columns are wider than :data:`LANDSCAPE_WIDTH` (or as
    ``landscape`` says), scaled to the page width (as many pages down as needed), rows ``header_rows`` (first,
    last) repeated at the top of every page, ``title`` in the page header and "第 N 页 / 共 M 页" in the footer."""
    from openpyxl.worksheet.page import PageMargins

    if landscape is None:
        widths = [d.width or 8.43 for d in ws.column_dimensions.values()]
        landscape = sum(widths) > LANDSCAPE_WIDTH
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as the rows need
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.7, bottom=0.6, header=0.3, footer=0.3)
    ws.print_options.horizontalCentered = True
    first, last = header_rows
    ws.print_title_rows = f"{first}:{last}"
    if title:
        ws.oddHeader.center.text = title.replace("&", "&&")
        ws.oddHeader.center.size = 9
    ws.oddFooter.center.text = "第 &P 页 / 共 &N 页  page &P of &N"
    ws.oddFooter.center.size = 8


def workbook_bytes(wb: Any, *, title: str, portrait: str) -> bytes:
    """The bytes of the .xlsx file of ``wb`` (an openpyxl Workbook), every sheet set up for printing
    (``print_setup`` with ``title``; the sheet named ``portrait`` upright, the others as wide as they are) and no
    text cell a live formula (``stations.cells.keep_text``)."""
    for sheet in wb.worksheets:
        print_setup(sheet, title=title, landscape=False if sheet.title == portrait else None)
        keep_text(sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
