"""Workbooks for the import tests, made with openpyxl as a spreadsheet program saves them."""

from __future__ import annotations

import io

from openpyxl import Workbook


def workbook_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """A workbook with these sheets (title: rows), as the bytes of an .xlsx file."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
