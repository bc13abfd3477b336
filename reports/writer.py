"""Every report format of a run, written as files or rendered to bytes (the CLI's and the API's entry point)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from yizhan.coverage.runs import RunData
from yizhan.errors import InvalidInput
from yizhan.outputs import replacing
from yizhan.reports.pdf import summary_pdf
from yizhan.reports.run_report import (
    DEFAULT_FORMATS,
    FORMATS,
    RunReport,
    as_report,
    gaps_csv,
    gaps_geojson,
    gaps_gpkg,
    gaps_xlsx,
)
from yizhan.reports.summary import check_lang, summary_html


def parse_formats(values: Iterable[str] | None, *, formats: tuple[str, ...] = FORMATS,
                  default: tuple[str, ...] = DEFAULT_FORMATS) -> tuple[str, ...]:
    """Formats from ``--format`` values (repeated and/or comma-separated; ``all``), in the order of ``formats``
    (those of a run's report unless given); ``default`` when none is asked."""
    asked = {v.strip().lower().lstrip(".") for raw in (values or []) for v in raw.split(",") if v.strip()}
    if not asked:
        return default
    if "all" in asked:
        return formats
    unknown = sorted(asked - set(formats))
    if unknown:
        raise InvalidInput(f"format {', '.join(unknown)}: 不支持的格式 / expected any of {', '.join(formats)} or all")
    return tuple(f for f in formats if f in asked)


def file_name(run_id: int, fmt: str) -> str:
    """``gaps_run<ID>.<ext>`` for the data formats, ``report_run<ID>.<ext>`` for the printable summary."""
    return f"{'report' if fmt in ('html', 'pdf') else 'gaps'}_run{run_id}.{fmt}"


def render(report: RunReport, fmt: str, *, lang: str = "zh-en") -> bytes:
    """One format as the bytes of its file (the CSV with a BOM so Excel reads the Chinese headers); the printed
    summary (HTML, PDF) in ``lang`` (``zh`` Chinese only, ``zh-en`` with English beside)."""
    if fmt == "csv":
        return ("\ufeff" + gaps_csv(report)).encode("utf-8")
    if fmt == "geojson":
        return json.dumps(gaps_geojson(report), ensure_ascii=False).encode("utf-8")
    if fmt == "xlsx":
        return gaps_xlsx(report)
    if fmt == "gpkg":
        return gaps_gpkg(report)
    if fmt == "html":
        return summary_html(report, lang=lang).encode("utf-8")
    if fmt == "pdf":
        return summary_pdf(report, lang=lang)
    raise InvalidInput(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def write_report(report: RunReport, out: Path, formats: Iterable[str] = DEFAULT_FORMATS, *,
                 lang: str = "zh-en") -> dict[str, Path]:
    """Write ``formats`` of the report (the printed summary in ``lang``). ``out`` is a folder (created; files named
    by :func:`file_name`), or a file path when a single format is asked and ``out`` ends in its extension.

    Each file is rendered first, then written under a temporary name and renamed: a folder that cannot take it
    (full, read-only, not a folder) raises ``OSError`` naming the file, keeps any earlier file of that name and
    leaves no temporary file; the files written before it stay.
    """
    check_lang(lang)
    return write_formats(out, formats, lambda f: file_name(report.run_id, f), lambda f: render(report, f, lang=lang))


def write_formats(out: Path, formats: Iterable[str], name: Callable[[str], str],
                  make: Callable[[str], bytes]) -> dict[str, Path]:
    """Write each of ``formats`` as the file ``out / name(fmt)`` holding ``make(fmt)``, or to ``out`` itself when
    one format is asked and ``out`` ends with its suffix; each file whole or not at all (``outputs.replacing``).
    Returns the paths by format."""
    fmts = list(formats)
    if len(fmts) == 1 and out.suffix.lower() == f".{fmts[0]}":
        targets = {fmts[0]: out}
    else:
        targets = {f: out / name(f) for f in fmts}
    paths = {}
    for fmt, path in targets.items():
        data = make(fmt)
        with replacing(path) as tmp:
            tmp.write_bytes(data)
        paths[fmt] = path
    return paths


def write_gap_report(run: RunData | RunReport, out_dir: Path) -> dict[str, Path]:
    """Write ``gaps_run<ID>.csv`` (UTF-8 with BOM for Excel) and ``gaps_run<ID>.geojson`` into ``out_dir``."""
    return write_report(as_report(run), out_dir, DEFAULT_FORMATS)
