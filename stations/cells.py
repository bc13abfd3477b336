"""Spreadsheet cells that stay data: no text a station's keeper typed becomes a live formula in a CSV or XLSX file
yizhan writes (OWASP "CSV injection").

A spreadsheet reads a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula.
In CSV, where a cell has no type, such a text cell is written with one leading apostrophe (``'=1+1``), which
Excel and LibreOffice show as text; :func:`restore_text` takes that apostrophe off again when the file is read
back, so an export imports as the values it was written from. In XLSX a cell has a type: text cells are written
as text (never as formulas) and the risky ones also carry Excel's quote prefix, so editing them keeps them text.
Numbers are not text and are written as they are (``-12.5`` in a numeric column stays a number).

The marking is reversible for every text: a text that already begins with apostrophes followed by a formula
character (``'=x``) gets one more, so the apostrophe it began with survives the round trip.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""
QUOTE = "'"
"""The apostrophe that keeps a CSV cell text."""


def needs_quote(text: str) -> bool:
    """Whether ``text`` gets a leading apostrophe in CSV: it starts, after any apostrophes, with a formula
    character."""
    return text.lstrip(QUOTE)[:1] in FORMULA_STARTS


def neutralise(value: Any) -> Any:
    """``value`` as a CSV cell: a text that needs it (:func:`needs_quote`) with one apostrophe in front; anything
    else (numbers, dates, missing values, other text) unchanged."""
    if isinstance(value, str) and needs_quote(value):
        return QUOTE + value
    return value


def restore_text(text: str) -> str:
    """The text :func:`neutralise` was given, from a CSV cell it wrote: one leading apostrophe less where it added
    one; any other text unchanged."""
    if text.startswith(QUOTE) and needs_quote(text):
        return text[1:]
    return text


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` ready for ``to_csv``: every text cell through :func:`neutralise`; numeric columns as
    they are."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col])):
            out[col] = out[col].map(neutralise)
    return out


def csv_text(df: pd.DataFrame) -> str:
    """``df`` (without its index) as CSV text, every text cell through :func:`neutralise`; no BOM. Lines end in
    CRLF (RFC 4180), so a value holding a carriage return or a line feed is quoted and stays one cell."""
    text: str = neutralise_frame(df).to_csv(index=False, lineterminator="\r\n")
    return text


def keep_text(ws: Any) -> None:
    """Make every text cell of the openpyxl worksheet ``ws`` a text cell (openpyxl turns a text beginning with
    ``=`` into a formula), the risky ones (:func:`needs_quote`) with the quote prefix too. Numbers stay
    numbers."""
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if needs_quote(cell.value):
                    cell.quotePrefix = True
