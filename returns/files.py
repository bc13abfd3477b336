"""A return's files: ``return_<area>_<YYYY-MM>.xlsx`` and ``.pdf``, each written whole or not at all."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from yizhan.errors import InvalidInput
from yizhan.reports.summary import check_lang
from yizhan.reports.writer import parse_formats, write_formats
from yizhan.returns.document import return_pdf
from yizhan.returns.store import MonthReturn
from yizhan.returns.workbook import return_xlsx

FORMATS = ("xlsx", "pdf")
"""The formats of a return, in the order they are written (both by default)."""


def parse_return_formats(values: Iterable[str] | None) -> tuple[str, ...]:
    """Formats from ``--format`` values (repeated and/or comma-separated; ``all``) for a return: both by default."""
    return parse_formats(values, formats=FORMATS, default=FORMATS)


def file_name(ret: MonthReturn, fmt: str) -> str:
    """``return_<area code name>_<YYYY-MM>.<fmt>``."""
    return f"return_{ret.area.name}_{ret.period.label}.{fmt}"


def render_return(ret: MonthReturn, fmt: str, *, lang: str = "zh-en") -> bytes:
    """One format of the return as the bytes of its file."""
    if fmt == "xlsx":
        return return_xlsx(ret)
    if fmt == "pdf":
        return return_pdf(ret, lang=lang)
    raise InvalidInput(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def write_return(ret: MonthReturn, out: Path, formats: Iterable[str] = FORMATS, *, lang: str = "zh-en"
                 ) -> dict[str, Path]:
    """Write ``formats`` of the return into the folder ``out`` (created), or to the file ``out`` when one format
    is asked and ``out`` ends in its extension. Each file is rendered first, then written under a temporary name
    and renamed (``outputs.replacing``)."""
    check_lang(lang)
    return write_formats(out, formats, lambda f: file_name(ret, f), lambda f: render_return(ret, f, lang=lang))
